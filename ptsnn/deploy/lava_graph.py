"""The chip part of a bundle as one Lava process graph.

What netx can express (the chain in ``netx/chip_prefix.net``) is built by ``lava.lib.dl.netx.hdf5.Network``;
the rest of the chip IR is built from Lava's own processes, one builder per node type (registries
:data:`NODE_BUILDERS` and :func:`_connect`): ``LIF`` for CUBA populations (``du = iDecay - 1``, ``dv``,
``vth``, ``bias_mant`` with ``bias_exp = 6``, exactly netx's mapping), ``LIF`` + a diagonal ``Dense``
self-connection for fire-once (TTFS) populations, ``Sigma`` for accumulators; ``Dense``/``DelayDense`` per
dense synapse group (several groups into one population are several connections into its ``a_in``, which
Lava sums) and ``Conv`` per convolution group (the IR's flat (C, H, W) populations reach Lava's (W, H, C)
ports through reshape/transpose ports). Every host input is a ``RingBuffer`` source; every population and
accumulator gets a ``RingBuffer`` sink, so every layer can be compared, and LIF voltages are read after the run.

The bundle's Loihi 2 script (``ptsnn/convert/run_loihi2.py``, no ptsnn inside) builds the same processes
from the chip IR on its own: keep the two in step (``tests/test_loihi2_script.py`` compares their readouts).

Run it only inside a child process (``ptsnn.deploy.lava_runner``): Lava's runtime forks processes of its own.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ptsnn.chip.ir import Accumulator, ConvSynapses, CubaPopulation, FireOncePopulation


def build(bundle_dir: str | Path, payload, steps: int):
    """Build the processes of a bundle for one utterance. ``payload``: ``[input size, steps]`` int payloads
    for the first host input, or ``{input name: [size, steps]}`` for every host input.

    Returns ``(runners, sinks, lifs)``: run each of ``runners`` (one source per connected part of the graph)
    to run the whole graph; ``sinks`` maps each
    population/accumulator name to its RingBuffer sink (``[size, steps]`` after the run), ``lifs`` each LIF
    population to its process (its ``v`` is the voltage readout)."""
    from ptsnn.chip.ir import ChipGraph

    bundle_dir = Path(bundle_dir)
    graph = ChipGraph.from_dir(bundle_dir)  # validated: a malformed file is one IRError line
    manifest_path = bundle_dir / "manifest.json"
    manifest = {}
    if manifest_path.is_file():
        from ptsnn.deploy.bundle_io import read_manifest_json  # the reader load_bundle uses for the same file

        manifest = read_manifest_json(manifest_path, expect_object=True)
    netx = manifest.get("netx") or {}
    netx_file = bundle_dir / netx["file"] if netx.get("file") else None
    return build_chip(graph, payload, steps, netx_file, netx.get("layers") or [], netx.get("input_message_bits", 0))


def build_chip(graph, payload, steps: int, netx_file: Path | None = None, netx_layers: list[str] = (),
               input_message_bits: int = 0):
    """The chip IR ``graph`` as Lava processes (see the module docstring); ``netx_layers``: the populations
    that ``netx_file`` (a chain from the first host input) builds instead."""
    from ptsnn import compat

    compat.apply()
    from lava.lib.dl.netx import hdf5
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source

    if not isinstance(payload, dict):
        payload = {graph.inputs[0].name: payload}
    out_ports, in_ports, lifs, sources = {}, {}, {}, []
    for host in graph.inputs:
        if host.name not in payload:
            raise ValueError(f"no payload for host input {host.name}")
        src = Source(data=np.asarray(payload[host.name], np.int32).reshape(host.size, steps))
        out_ports[host.name] = src.s_out
        sources.append(src)
    if netx_layers:
        net = hdf5.Network(net_config=str(netx_file), input_message_bits=input_message_bits)
        out_ports[graph.inputs[0].name].connect(net.inp)
        for layer, name in zip(net.layers, netx_layers):
            out_ports[name] = layer.out
    for node in [*graph.populations, *graph.accumulators]:
        if node.name in netx_layers:
            continue
        try:
            make = NODE_BUILDERS[type(node)]
        except KeyError:
            raise ValueError(f"Lava graph: no Lava realisation for {type(node).__name__} '{node.name}' yet") from None
        proc, out_ports[node.name], in_ports[node.name] = make(node)
        if proc is not None:
            lifs[node.name] = proc
    for edge in graph.synapses:
        if edge.target in netx_layers:
            continue  # inside the netx network
        _connect(edge, graph.message_bits(edge.source), out_ports[edge.source], in_ports[edge.target])
    sinks = {}
    for node in [*graph.populations, *graph.accumulators]:
        sink = Sink(shape=(node.size,), buffer=steps)
        out_ports[node.name].connect(sink.a_in)
        sinks[node.name] = sink
    return _one_per_component(graph, sources), sinks, lifs


def _one_per_component(graph, sources: list) -> list:
    """Lava runs the processes connected to the one it is asked to run: one host source per connected
    component of the graph (a graph with two independent parts needs two runs)."""
    parent = {n: n for n in graph.nodes()}

    def root(n):
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    for e in graph.synapses:
        parent[root(e.source)] = root(e.target)
    seen, runners = set(), []
    for host, src in zip(graph.inputs, sources):
        if root(host.name) not in seen:
            seen.add(root(host.name))
            runners.append(src)
    return runners


# --------------------------------------------------------------------------------------- node builders
def _lif(pop):
    from lava.proc.lif.process import LIF

    lif = LIF(shape=(pop.size,), du=pop.i_decay - 1, dv=pop.v_decay, vth=pop.vth,
              bias_mant=pop.bias.astype(np.int32), bias_exp=6, name=pop.name)
    return lif, lif.s_out, lif.a_in


def _fire_once(pop):
    """LIF (du = i_decay - 1: -1 is no current decay) + a diagonal Dense self-connection: the spike comes
    back into the neuron's own current one step later (``FireOncePopulation``)."""
    from lava.proc.dense.process import Dense

    lif, s_out, a_in = _lif(pop)
    inhibit = Dense(weights=np.diag(np.full(pop.size, pop.inhibit_weight, np.int32)), weight_exp=pop.inhibit_exp,
                    name=f"{pop.name}.fire_once")
    s_out.connect(inhibit.s_in)
    inhibit.a_out.connect(a_in)
    return lif, s_out, a_in


def _sigma(acc):
    from lava.proc.sdn.process import Sigma

    sigma = Sigma(shape=(acc.size,))
    return None, sigma.s_out, sigma.a_in


NODE_BUILDERS = {CubaPopulation: _lif, FireOncePopulation: _fire_once, Accumulator: _sigma}
"""Node type -> builder(node) -> (LIF process or None, out port, in port)."""


# ------------------------------------------------------------------------------------ synapse builders
def _dense_parts(edge) -> list[tuple[np.ndarray, int]]:
    """``(weights, weight_exp)`` of the hand-built Dense processes that together compute ``edge`` exactly.

    Lava's 8-bit Dense clips and truncates by sign mode (mixed-sign matrices lose their low bit, inhibitory ones
    stop at -255). Weights it leaves alone go as they are. Otherwise, with a non-negative exponent, the matrix is
    split into an excitatory part, an inhibitory part (>= -255) and the rest (-1 where a weight was -256): each
    is held exactly and Lava sums their outputs in the target's int32 port, which equals the sum of one
    matrix. (With a negative exponent the parts' floor shifts would not add up: netx's lossless form is used,
    exact while the mantissas fit it, which ``_check_exact`` verifies.)"""
    from ptsnn.numerics import loihi

    w = edge.weight.astype(np.int64)
    exp = int(edge.weight_exp)
    if np.array_equal(loihi.lava_synapse_weights(w), w):
        return [(w, exp)]
    if exp >= 0:
        neg = np.minimum(w, 0)
        parts = [np.maximum(w, 0), np.maximum(neg, -255), neg - np.maximum(neg, -255)]
        return [(p, exp) for p in parts if p.any()]
    sw = loihi.netx_dense_weights(w)
    if not np.array_equal(sw.weights >> -sw.weight_exp if sw.weight_exp < 0 else sw.weights, w):
        raise ValueError(f"synapses {edge.name}: odd mixed-sign weights above 127 with a negative exponent have no "
                         "exact Lava Dense form (split the group by sign)")
    return [(sw.weights, exp + int(sw.weight_exp))]


def _connect(edge, bits: int, src_port, dst_port) -> None:
    from lava.proc.dense.process import DelayDense, Dense

    if isinstance(edge, ConvSynapses):
        from lava.proc.conv.process import Conv

        c, h, w = edge.in_shape
        # Lava's Conv convolves (it flips the kernel; the IR, like PyTorch and netx, cross-correlates) and takes
        # weights as (out, kW, kH, in/groups)
        lava_w = edge.weight[:, :, ::-1, ::-1].transpose(0, 3, 2, 1)
        conv = Conv(weight=np.ascontiguousarray(lava_w).astype(np.int32),
                    input_shape=(w, h, c), padding=edge.padding[::-1], stride=edge.stride[::-1],
                    dilation=edge.dilation[::-1], groups=edge.groups, num_message_bits=bits, name=edge.name)
        # the IR's populations are flat in (C, H, W) order; Lava's Conv ports are (W, H, C)
        src_port.reshape((c, h, w)).transpose([2, 1, 0]).connect(conv.s_in)
        conv.a_out.transpose([2, 1, 0]).reshape((int(np.prod(edge.out_shape)),)).connect(dst_port)
        return
    for k, (weights, exp) in enumerate(_dense_parts(edge)):
        name = edge.name if k == 0 else f"{edge.name}.part{k}"
        if edge.max_delay > 0:
            syn = DelayDense(weights=weights.astype(np.int32), weight_exp=exp, delays=edge.delay.astype(int),
                             max_delay=edge.max_delay, num_message_bits=bits, name=name)  # Lava wants int delays
        else:
            syn = Dense(weights=weights.astype(np.int32), weight_exp=exp, num_message_bits=bits, name=name)
        src_port.connect(syn.s_in)
        syn.a_out.connect(dst_port)


def run_utterance(bundle_dir: str | Path, payload, steps: int) -> dict[str, np.ndarray]:
    """Build, run ``steps`` steps with ``Loihi2SimCfg(select_tag='fixed_pt')``, read every sink and every LIF
    population's final voltage (``v_final/<name>``), always stop."""
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg

    runners, sinks, lifs = build(bundle_dir, payload, steps)
    started = []
    try:
        for runner in runners:
            started.append(runner)
            runner.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        out = {name: sink.data.get().astype(np.int64) for name, sink in sinks.items()}
        for name, lif in lifs.items():  # Var.get() gives a scalar for a uniform Var never written by the model
            out[f"v_final/{name}"] = np.broadcast_to(np.asarray(lif.v.get(), np.int64), lif.v.shape).copy()
        return out
    finally:
        for runner in started:
            runner.stop()
