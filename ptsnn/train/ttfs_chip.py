"""The TTFS grid network as a chip IR graph (``ptsnn.chip.ir``): what the simulator and Lava run.

Built directly from :class:`~ptsnn.train.ttfs_integer.IntegerTTFS` (no file in between), so the IR holds
exactly the integers of the grid form and ``simulate`` equals ``run_ttfs_reference`` spike step for spike
step (``tests/test_ttfs_chip.py``). The mapping (docs/ttfs.md, "On the chip"):

* ``input``: a binary :class:`HostInput` of ``C*H*W`` neurons; neuron j spikes once, at step ``K - q0_j``;
* ``timing``: a binary :class:`HostInput` with one channel per timing source of every layer (alpha,
  hold_on/off, release_on/off, force; the readout's alpha); each channel spikes once, at a step fixed by the
  architecture, so the host sends the same spike pattern for every inference (:func:`timing_payload`);
* a spiking layer: a :class:`FireOncePopulation` (``vth``, no decays, self-inhibition ``-R``) fed by a
  :class:`ConvSynapses` group (conv stages) or a dense :class:`Synapses` group (stages whose kernel covers
  the whole input map, flattened C, H, W) and by dense timing :class:`Synapses` from ``timing``, one group
  per (layer, exponent) so every per-neuron mantissa keeps its own exponent exactly; a dense group whose odd
  mixed-sign mantissas Lava's Dense would truncate is split by sign (:func:`dense_groups`);
* a max-pool layer: a :class:`FireOncePopulation` with ``vth = 0`` fed by :func:`sum_pool` (earliest spike wins);
* the readout: a :class:`CubaPopulation` (``i_decay = v_decay = 0``, ``vth = 2**17 - 1``: never fires) whose
  voltage ``>> 6`` at the read step is the logit numerator; ``graph.meta["readout"]`` says where to read it.

One inference is ``final_step + 1`` steps of payload (``flush_steps = 0``): the read step is the last one.
"""

from __future__ import annotations

import numpy as np

from ptsnn.chip.ir import (
    ChipGraph,
    ConvSynapses,
    CubaPopulation,
    FireOncePopulation,
    HostInput,
    Synapses,
    sum_pool,
)
from ptsnn.errors import InputError
from ptsnn.numerics import loihi

INPUT = "input"
TIMING = "timing"
MODEL_KIND = "ttfs"


def _is_dense(layer) -> bool:
    """A stage whose kernel is its whole (unpadded) input map: a dense layer, flattened C, H, W."""
    _, h, w = layer.source_shape
    return tuple(layer.shape[1:]) == (1, 1) and layer.padding == 0 and tuple(layer.weight_mant.shape[2:]) == (h, w)


def _lava_exact(w: np.ndarray) -> bool:
    """Lava's bit-accurate Dense keeps these weights as they are (or netx's lossless exponent form does)."""
    if np.array_equal(loihi.lava_synapse_weights(w), w):
        return True
    sw = loihi.netx_dense_weights(w)
    return np.array_equal(loihi.lava_synapse_weights(sw.weights), sw.weights)


def dense_groups(name: str, source: str, target: str, w: np.ndarray, exp: int) -> list[Synapses]:
    """One dense group, or (when Lava's Dense would truncate odd mixed-sign mantissas that netx's exponent
    form cannot rescue, e.g. 249 next to -27) its positive and negative parts as separate groups into the
    same target: single-sign Dense keeps 8-bit magnitudes, and the target sums its inputs, so the split is
    exact. -256 (which an inhibitory Dense clips to -255) leaves its -1 to a third group."""
    w = np.asarray(w, np.int64)
    if _lava_exact(w):
        return [Synapses(name, source, target, w, np.zeros_like(w), exp)]
    neg = np.minimum(w, 0)
    parts = {"pos": np.maximum(w, 0), "neg": np.maximum(neg, -255), "neg256": neg - np.maximum(neg, -255)}
    return [Synapses(f"{name}.{k}", source, target, part, np.zeros_like(part), exp)
            for k, part in parts.items() if part.any()]


def _feed(layer) -> list[Synapses | ConvSynapses]:
    """The synapse group from the layer's source (exact integers: the IR weight is ``mant << exp``)."""
    name = f"{layer.source}->{layer.name}"
    if layer.kind == "maxpool":
        return [sum_pool(name, layer.source, layer.name, tuple(layer.source_shape), int(layer.pool_size))]
    if _is_dense(layer):
        w = layer.weight_mant.reshape(layer.weight_mant.shape[0], -1)
        return dense_groups(name, layer.source, layer.name, w, int(layer.weight_exp))
    # Lava's fixed_pt Conv ignores weight_exp: the exponent must be folded into the (8-bit) mantissas
    w = layer.weight_mant.astype(np.int64) << int(layer.weight_exp)
    s, p = int(layer.stride), int(layer.padding)
    return [ConvSynapses(name, layer.source, layer.name, w, tuple(layer.source_shape), tuple(layer.shape),
                         (s, s), (p, p))]


def _population(layer, size: int):
    zeros = np.zeros(size, np.int64)
    if layer.kind == "readout":
        return CubaPopulation(layer.name, size, 0, 0, int(layer.vth), zeros, role="ttfs_readout")
    mant, exp = layer.inhibit
    return FireOncePopulation(layer.name, size, 0, 0, int(layer.vth), zeros, inhibit_weight=-int(mant),
                              inhibit_exp=int(exp))


def chip_graph(model) -> ChipGraph:
    """The chip IR of an :class:`~ptsnn.train.ttfs_integer.IntegerTTFS` (see the module docstring)."""
    k = int(model.k)
    final_step = int(model.layers[-1].window_start)
    inputs_size = int(np.prod(model.input_shape))
    channels: list[dict] = []  # one per timing source: which layer, which source, its spike step
    pops, syns = [], []
    # timing groups: (layer, exp) -> {channel: per-neuron mantissas}
    for layer in model.layers:
        size = int(np.prod(layer.shape))
        pops.append(_population(layer, size))
        syns.extend(_feed(layer))
        by_exp: dict[int, list[tuple[int, np.ndarray]]] = {}
        for ev in layer.timing:
            mant = np.broadcast_to(np.asarray(ev.mant, np.int64).reshape(-1) if np.ndim(ev.mant) else
                                   np.asarray(ev.mant, np.int64), (size,))
            if not np.any(mant):
                continue  # a source of weight 0 delivers nothing: no channel, no synapses
            channels.append(dict(layer=layer.name, source=ev.name, step=int(ev.step)))
            by_exp.setdefault(int(ev.exp), []).append((len(channels) - 1, mant))
        for exp, cols in sorted(by_exp.items()):
            syns.append((layer.name, exp, cols))
    n_ch = max(len(channels), 1)
    edges = []
    for s in syns:
        if not isinstance(s, tuple):
            edges.append(s)
            continue
        name, exp, cols = s
        size = int(np.prod(next(l.shape for l in model.layers if l.name == name)))
        w = np.zeros((size, n_ch), np.int64)
        for ch, mant in cols:
            w[:, ch] = mant
        edges.extend(dense_groups(f"{TIMING}->{name}.e{exp}", TIMING, name, w, exp))
    readout = model.layers[-1]
    if readout.kind != "readout":
        raise InputError("ttfs chip graph: the last layer must be the readout")
    meta = dict(
        model_kind=MODEL_KIND,
        steps_per_window=k,
        input_max=float(model.input_max),
        input_shape=[int(x) for x in model.input_shape],
        input=INPUT,
        timing_input=TIMING,
        steps=final_step + 1,
        timing=channels,
        layers=[dict(name=l.name, kind=l.kind, shape=[int(x) for x in l.shape], source=l.source,
                     window_start=int(l.window_start)) for l in model.layers],
        readout=dict(kind="voltage", population=readout.name, step=final_step, scale=float(readout.scale),
                     activation_shift=int(loihi.ACTIVATION_SHIFT)),
    )
    return ChipGraph([HostInput(INPUT, inputs_size, 0), HostInput(TIMING, n_ch, 0)], pops, [], edges,
                     flush_steps=0, meta=meta)


# ------------------------------------------------------------------------------------------------ payloads
def _ttfs_meta(graph: ChipGraph) -> dict:
    meta = graph.meta
    if meta.get("model_kind") != MODEL_KIND:
        raise InputError(f"chip graph meta.model_kind is {meta.get('model_kind')!r}, not a TTFS graph")
    return meta


def timing_payload(graph: ChipGraph, batch: int) -> np.ndarray:
    """The timing input's spikes ``[batch, steps, channels]`` (the same for every inference)."""
    meta = _ttfs_meta(graph)
    steps = int(meta["steps"])
    n_ch = next(i.size for i in graph.inputs if i.name == meta["timing_input"])
    one = np.zeros((steps, n_ch), np.int64)
    for ch, c in enumerate(meta["timing"]):
        one[int(c["step"]), ch] = 1
    return np.broadcast_to(one, (int(batch), steps, n_ch)).copy()


def input_payload(graph: ChipGraph, q0: np.ndarray) -> np.ndarray:
    """The input's spikes ``[B, steps, C*H*W]`` for grid inputs ``q0`` ``[B, C, H, W]`` in ``0..K``."""
    meta = _ttfs_meta(graph)
    k, steps = int(meta["steps_per_window"]), int(meta["steps"])
    q0 = np.asarray(q0)
    if q0.ndim < 2 or q0.shape[1:] != tuple(meta["input_shape"]):
        raise InputError(f"ttfs input: expected [B, {', '.join(map(str, meta['input_shape']))}], got {q0.shape}")
    q = q0.reshape(q0.shape[0], -1).astype(np.int64)
    if q.size and (q.min() < 0 or q.max() > k):
        raise InputError(f"ttfs input: grid values must lie in 0..{k}")
    return (np.arange(steps)[None, :, None] == (k - q)[:, None, :]).astype(np.int64)


def payloads(graph: ChipGraph, q0: np.ndarray) -> dict[str, np.ndarray]:
    """``{input name: [B, steps, size]}`` for ``simulate`` (and the Lava runner)."""
    meta = _ttfs_meta(graph)
    x = input_payload(graph, q0)
    return {meta["input"]: x, meta["timing_input"]: timing_payload(graph, x.shape[0])}


def readout_potential(graph: ChipGraph, voltages: dict[str, np.ndarray]) -> np.ndarray:
    """The logit numerators ``[B, classes]`` (``v >> 6`` of the readout at its read step) from recorded
    voltages ``{population: [B, T, N]}``; logits = this / ``meta["readout"]["scale"]``."""
    r = _ttfs_meta(graph)["readout"]
    v = np.asarray(voltages[r["population"]], np.int64)
    return v[:, int(r["step"])] >> int(r["activation_shift"])


def first_spike_steps(spikes: np.ndarray) -> np.ndarray:
    """First spike step per neuron ``[B, N]`` (-1: never) of a ``[B, T, N]`` spike train."""
    s = np.asarray(spikes) != 0
    return np.where(s.any(1), s.argmax(1), -1)
