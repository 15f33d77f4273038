"""Chip IR -> a delay-free NIR graph that norse 1.1 (``norse.torch.from_nir``) and snnTorch 1.0
(``snntorch.import_nir.import_from_nir``) load and run: the bundle's ``model.consumer.nir``.

Why a second file (docs/convert_nir.md): ``model.nir`` is the exact NIR form of the chip graph (``nir.Delay``
for synaptic delays, ``nir.I`` for the readout accumulator) and round-trips into ptsnn. Neither norse nor
snnTorch maps ``nir.Delay`` or ``nir.I``: snnTorch's ``nirtorch.nir_to_torch`` stops with "Unknown node
type", and norse goes through nirtorch 2.6's deprecated ``nirtorch.load``, whose ``TorchGraph`` keys its
node table by module object: every node norse cannot map becomes ``None``, all those ``None`` entries
collapse into one dictionary key, and the first edge naming a lost node fails with ``KeyError:
'in_proj->enc_0_delay'`` (a graph with a single unmapped node loads, then runs it as nothing). Both also
read only part of NIR's LIF: norse ignores ``r``; snnTorch fixes ``dt = 1e-4`` s.

The consumer shape avoids all of it, exactly (not approximately) for the arithmetic in real numbers:

* **Delays become lags.** Node ``n@k`` is node ``n`` running ``k`` steps late. An edge that needs its source
  ``d`` steps earlier reads the source's copy at lag ``k + d``; copies are made only where needed, and
  lags reaching the input become a wider input: the host feeds a tapped delay line
  ``[x(t - k) for k in input_lags]`` (metadata ``ptsnn_input_lags``; see :func:`tapped_input`). A copy of
  a neuron with a non-zero bias starts integrating it ``k`` steps early (the only warm-up difference).
* **LIF with r = 1.** ``tau = dt / a_m`` and the gain ``r = tau/dt`` folded into the incoming weights and
  bias, which is the same NIR equation and what both consumers compute. ``dt`` defaults to 1e-4 s so
  snnTorch's fixed ``dt`` is right; give norse ``from_nir(graph, dt=1e-4)``.
* **Readout as an output current.** The accumulator's per-step input goes to a ``nir.Output``; the
  consumer sums it over the utterance (what Lava's Sigma does), ptsnn then divides by ``2**scale_exponent``.

Only populations without synaptic current (``i_decay == 4096``) and with a leak are supported (every
PTS-SNN population); others raise :class:`~ptsnn.errors.InputError`.
"""

from __future__ import annotations

import os
from pathlib import Path

import nir
import numpy as np

from ptsnn.chip.ir import ChipGraph, CubaPopulation, Synapses
from ptsnn.convert.nir_export import _atomic_nir_write, _latencies
from ptsnn.errors import InputError
from ptsnn.numerics import loihi

CONSUMER_DT = 1e-4  # snnTorch 1.0's import_from_nir assumes this dt


def _name(node: str, lag: int) -> str:
    return node if lag == 0 else f"{node}@{lag}"


def _lags_needed(graph: ChipGraph, extra: dict[str, np.ndarray]) -> dict[str, set[int]]:
    need: dict[str, set[int]] = {n: set() for n in graph.nodes()}
    sources = {s.source for s in graph.synapses}
    for node in [*graph.populations, *graph.accumulators]:
        if node.name not in sources:
            need[node.name].add(0)  # sinks are read now
    for node in reversed([*graph.populations, *graph.accumulators]):
        for k in sorted(need[node.name]):
            for s in graph.incoming(node.name):
                live = s.weight != 0
                for v in np.unique(extra[s.name][live]) if live.any() else [0]:
                    need[s.source].add(k + int(v))
    return need


def _in_size(node) -> int:
    return int(np.asarray(node.input_type["input"]).reshape(-1)[0])


def _out_size(node) -> int:
    return int(np.asarray(node.output_type["output"]).reshape(-1)[0])


def _order_chain(nodes: dict, order: list[str]) -> list[tuple[str, str]]:
    """Zero-weight ``nir.Linear`` links ``order[i] -> order[i+1]``, listed first: nirtorch 2.6's legacy
    executor (norse's ``from_nir``) runs nodes in depth-first pre-order from the input, which on a graph
    with joins can run a node before one of its inputs (that input then arrives a step late) and returns
    the last node run as the output. Along this chain the depth-first order is ``order`` itself, a
    topological order ending at the output. The links add zeros only (snnTorch computes the same)."""
    chain = []
    for i, (a, b) in enumerate(zip(order, order[1:])):
        link = f"order_{i}"
        nodes[link] = nir.Linear(weight=np.zeros((_in_size(nodes[b]), _out_size(nodes[a]))))
        chain += [(a, link), (link, b)]
    return chain


def export_consumer_nir(graph: ChipGraph, path: str | os.PathLike, dt: float = CONSUMER_DT) -> dict:
    """Write the consumer shape of ``graph`` to ``path``; returns a small report (lags, node counts)."""
    if len(graph.inputs) != 1:
        raise InputError("NIR consumer export: norse/snnTorch graphs take exactly one input")
    for e in graph.synapses:
        if not isinstance(e, Synapses):
            raise InputError(f"NIR consumer export: synapses '{e.name}' are {type(e).__name__} (dense synapses only)")
    for p in graph.populations:
        if type(p) is not CubaPopulation:
            raise InputError(f"NIR consumer export: population '{p.name}' is a {type(p).__name__} "
                             "(only LIF populations map to norse and snnTorch the same way)")
        if p.i_decay != loihi.DECAY_UNITY or p.v_decay == 0:
            raise InputError(f"NIR consumer export: population '{p.name}' has a synaptic current or no leak "
                             "(only LIF populations map to norse and snnTorch the same way)")
    lat = _latencies(graph)
    extra = {s.name: s.delay + lat[s.source] + 1 - lat[s.target] for s in graph.synapses}
    need = _lags_needed(graph, extra)
    inp = graph.inputs[0]
    input_lags = sorted(need[inp.name]) or [0]
    block = {k: i for i, k in enumerate(input_lags)}
    f = inp.size
    in_level = float(inp.levels) if inp.message_bits else 1.0

    nodes: dict = {"input": nir.Input(np.array([f * len(input_lags)]), metadata=dict(
        ptsnn_input_lags=list(input_lags), ptsnn_features=int(f), ptsnn_levels=int(inp.levels),
        ptsnn_message_bits=int(inp.message_bits)))}
    edges: list[tuple[str, str]] = []
    order = ["input"]  # a topological order, made nirtorch.load's execution order by the chain below
    scale, gain = {}, {}
    for p in graph.populations:
        c = 2.0 ** -(p.scale_exponent or 0)
        a_m = p.v_decay / loihi.DECAY_UNITY
        scale[p.name], gain[p.name] = c, 1.0 / a_m
        for k in sorted(need[p.name]):
            nodes[_name(p.name, k)] = nir.LIF(tau=np.full(p.size, dt / a_m), r=np.ones(p.size),
                                              v_leak=np.zeros(p.size), v_threshold=np.full(p.size, p.vth * c),
                                              v_reset=np.zeros(p.size), metadata=dict(ptsnn_node=p.name, ptsnn_lag=k))
    for a in graph.accumulators:
        scale[a.name], gain[a.name] = 2.0 ** -a.scale_exponent, 1.0
        nodes[f"output_{a.name}"] = nir.Output(np.array([a.size]))
    for node in [*graph.populations, *graph.accumulators]:
        for k in sorted(need[node.name]):
            target = f"output_{node.name}" if node in graph.accumulators else _name(node.name, k)
            bias = getattr(node, "bias", None)
            bias = None if bias is None or not np.any(bias) else bias * scale[node.name] * gain[node.name]
            for s in graph.incoming(node.name):
                w = s.weight.astype(np.float64) * 2.0 ** s.weight_exp * scale[node.name] * gain[node.name]
                live = s.weight != 0
                for v in (np.unique(extra[s.name][live]) if live.any() else [0]):
                    wv = np.where(live & (extra[s.name] == v), w, 0.0)
                    if s.source == inp.name:
                        full = np.zeros((wv.shape[0], f * len(input_lags)))
                        j = block[k + int(v)]
                        full[:, j * f: (j + 1) * f] = wv * in_level
                        src, wv = "input", full
                    else:
                        src = _name(s.source, k + int(v))
                    ename = f"{s.name}@{k}+{int(v)}"
                    nodes[ename] = nir.Affine(weight=wv, bias=bias) if bias is not None else nir.Linear(weight=wv)
                    bias = None  # once per target copy
                    edges += [(src, ename), (ename, target)]
                    order.append(ename)
            order.append(target)
    # the Output node stays off the chain: nirtorch.nir_to_torch (snnTorch) returns each input of an Output
    # separately; the legacy executor still runs it last (it is the last chain node's only successor)
    edges = _order_chain(nodes, [n for n in order if not isinstance(nodes[n], nir.Output)]) + edges
    meta = dict(ptsnn_format="ptsnn chip IR, consumer shape (delay-free)", ptsnn_dt=float(dt),
                ptsnn_input_lags=list(input_lags), ptsnn_flush_steps=int(graph.flush_steps))
    try:
        g = nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta, type_check=True)
    except Exception as exc:
        raise InputError(f"NIR consumer export: the NIR graph does not type-check: {exc}") from exc
    _atomic_nir_write(Path(path), g)
    return dict(path=str(path), dt=float(dt), input_lags=list(input_lags), nodes=len(nodes), edges=len(edges),
                copies={n: len(v) for n, v in need.items() if len(v) > 1})


def tapped_input(x: np.ndarray, input_lags: list[int]) -> np.ndarray:
    """``[B, T, F]`` chip input -> ``[B, T, F * len(lags)]`` with block ``i`` = ``x`` delayed by ``lags[i]``
    steps (zeros before the start): the host side of the consumer graph's input. Input values are the
    real-valued payload ``payload / levels`` (graded input) or spikes."""
    x = np.asarray(x)
    out = np.zeros((*x.shape[:2], x.shape[2] * len(input_lags)), x.dtype)
    f = x.shape[2]
    for i, k in enumerate(input_lags):
        if k < x.shape[1]:
            out[:, k:, i * f: (i + 1) * f] = x[:, : x.shape[1] - k]
    return out
