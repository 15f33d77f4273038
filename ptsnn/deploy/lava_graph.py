"""The chip part of a bundle as one Lava process graph.

What netx can express (the chain in ``netx/chip_prefix.net``) is built by ``lava.lib.dl.netx.hdf5.Network``;
the rest of the chip IR is built from Lava's own processes: ``LIF`` (CUBA, ``du = iDecay - 1``, ``dv``,
``vth``, ``bias_mant`` with ``bias_exp = 6``, exactly netx's mapping), ``Dense`` or ``DelayDense`` per
synapse edge (several edges into one population are several connections into its ``a_in``, which Lava
sums), and ``Sigma`` for the accumulator readout. The host boundary is a ``RingBuffer`` source (graded
payloads) and one ``RingBuffer`` sink per population/accumulator, so every layer can be compared.

Run it only inside a child process (``ptsnn.deploy.lava_runner``): Lava's runtime forks processes of its own.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def build(bundle_dir: str | Path, payload: np.ndarray, steps: int):
    """Build the processes for one utterance. ``payload``: ``[input size, steps]`` int graded payloads.

    Returns ``(source, sinks)``: run ``source`` to run the whole connected graph; ``sinks`` maps each
    population/accumulator name to its RingBuffer sink (``[size, steps]`` after the run)."""
    from ptsnn import compat

    compat.apply()
    from lava.lib.dl.netx import hdf5
    from lava.proc.dense.process import DelayDense, Dense
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source
    from lava.proc.lif.process import LIF
    from lava.proc.sdn.process import Sigma

    from ptsnn.chip.ir import ChipGraph

    bundle_dir = Path(bundle_dir)
    graph = ChipGraph.from_dir(bundle_dir)
    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    host = graph.inputs[0]
    source = Source(data=np.asarray(payload, np.int32).reshape(host.size, steps))
    out_ports = {host.name: source.s_out}
    in_ports = {}
    netx_layers = manifest["netx"]["layers"] if manifest["netx"]["file"] else []
    if netx_layers:
        net = hdf5.Network(net_config=str(bundle_dir / manifest["netx"]["file"]),
                           input_message_bits=manifest["netx"]["input_message_bits"])
        source.s_out.connect(net.inp)
        for layer, name in zip(net.layers, netx_layers):
            out_ports[name] = layer.out
    for pop in graph.populations:
        if pop.name in netx_layers:
            continue
        lif = LIF(shape=(pop.size,), du=pop.i_decay - 1, dv=pop.v_decay, vth=pop.vth,
                  bias_mant=pop.bias.astype(np.int32), bias_exp=6, name=pop.name)
        out_ports[pop.name], in_ports[pop.name] = lif.s_out, lif.a_in
    for acc in graph.accumulators:
        sigma = Sigma(shape=(acc.size,))
        out_ports[acc.name], in_ports[acc.name] = sigma.s_out, sigma.a_in
    for edge in graph.synapses:
        if edge.target in netx_layers:
            continue  # inside the netx network
        bits = graph.message_bits(edge.source)
        if edge.delay.any():
            syn = DelayDense(weights=edge.weight.astype(np.int32), delays=edge.delay.astype(int),  # Lava wants int
                             max_delay=int(edge.delay.max()), num_message_bits=bits, name=edge.name)
        else:
            syn = Dense(weights=edge.weight.astype(np.int32), num_message_bits=bits, name=edge.name)
        out_ports[edge.source].connect(syn.s_in)
        syn.a_out.connect(in_ports[edge.target])
    sinks = {}
    for node in [*graph.populations, *graph.accumulators]:
        sink = Sink(shape=(node.size,), buffer=steps)
        out_ports[node.name].connect(sink.a_in)
        sinks[node.name] = sink
    return source, sinks


def run_utterance(bundle_dir: str | Path, payload: np.ndarray, steps: int) -> dict[str, np.ndarray]:
    """Build, run ``steps`` steps with ``Loihi2SimCfg(select_tag='fixed_pt')``, read every sink, always stop."""
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg

    source, sinks = build(bundle_dir, payload, steps)
    try:
        source.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        return {name: sink.data.get().astype(np.int64) for name, sink in sinks.items()}
    finally:
        source.stop()
