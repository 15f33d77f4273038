"""Chip IR -> NIR (Neuromorphic Intermediate Representation, ``nir`` 1.0.8), with a report of what NIR loses.

NIR describes neurons as continuous-time ODEs; the chip runs integer difference equations at a fixed step
``dt``. The mapping below is chosen so that NIR's forward-Euler discretisation at the same ``dt`` (the
convention snnTorch and norse's importer use) reproduces the chip's update in real arithmetic; only the
integer rounding, register limits and host-side steps are lost, and the report lists them.

Units. On the chip a weight mantissa ``w`` adds ``w << 6`` to ``u`` and a neuron spikes when ``v > vth << 6``,
so in units of 64 LSB ("weight units") ``u += w·x`` and the threshold is ``vth``. Exported values are weight
units divided by ``2**scale_exponent`` of the target population (the model's float values; exact in
float64), or plain weight units with ``descale=False``. Graded host input is exported in the model's real
units: an input value ``x`` in [-1, 1] is the payload divided by ``levels``, so its weights carry ``levels``.

Per population (``a_s = i_decay/4096``, ``a_m = v_decay/4096``, ``c = 2**-scale_exponent``):

* ``i_decay == 4096`` (no synaptic current state) and ``v_decay > 0`` -> ``nir.LIF(tau = dt/a_m,
  r = tau/dt, v_leak = 0, v_threshold = vth·c)``; Euler: ``v = (1-a_m)·v + I``. The bias goes into the
  ``nir.Affine`` bias of the population's first incoming edge (it enters ``v`` unfiltered, as on chip).
* ``i_decay == 4096`` and ``v_decay == 0`` -> ``nir.IF(r = 1, v_threshold = vth·c)``, bias as above.
* ``i_decay < 4096`` -> ``nir.CubaLIF(tau_syn = dt/a_s, tau_mem = dt/a_m, w_in = tau_syn/dt,
  r = tau_mem/dt, v_leak = bias·c/a_m, v_threshold = vth·c)``; Euler: ``I = (1-a_s)·I + W·x``,
  ``v = (1-a_m)·v + I + bias``. ``v_decay == 0`` here needs ``tau_mem = 2**24·dt`` (reported).
* an :class:`Accumulator` (Lava ``Sigma``) -> ``nir.I(r = 1)`` read as ``v += r·input`` per step.
* each :class:`Synapses` edge -> ``nir.Linear``/``nir.Affine``; non-zero delays -> ``nir.Delay`` (seconds,
  ``steps·dt``) in front of it: one node with per-source-channel delays when the delays depend on the
  source neuron only, otherwise the edge is split into one ``Delay -> Linear`` branch per delay value.

Latency. Every chip synapse adds one step. NIR has no such latency, so it is folded into a per-node time
shift: node ``n`` runs ``L(n) = min over inputs (L(src) + 1)`` steps behind its NIR twin (host inputs at 0),
and an edge keeps ``delay + L(src) + 1 - L(n)`` steps as a ``nir.Delay`` (its own delay on balanced graphs).
``L`` is stored per node in the NIR metadata (``ptsnn_latency_steps``) and in the report.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ptsnn.chip.ir import ChipGraph, CubaPopulation
from ptsnn.errors import InputError
from ptsnn.numerics import loihi
from ptsnn.fileio import atomic_output

NO_LEAK_TAU_STEPS = 2.0**24  # tau_mem (in steps) standing in for "no membrane leak" in a CubaLIF


@dataclass
class NirExportReport:
    path: Path
    dt: float
    nodes: int  # NIR nodes written (Input/Output included)
    edges: int
    node_types: dict[str, int]
    latency: dict[str, int]  # chip node -> steps its chip output lags its NIR node
    unsupported: list[str] = field(default_factory=list)  # what the NIR file cannot carry
    approximations: list[str] = field(default_factory=list)  # what it carries only approximately
    notes: list[str] = field(default_factory=list)  # exact restructurings (latency folding, splits)

    def lines(self) -> list[str]:
        types = ", ".join(f"{k} {v}" for k, v in sorted(self.node_types.items()))
        out = [f"NIR: {self.path} ({self.nodes} nodes: {types}; {self.edges} edges; dt {self.dt:g} s)"]
        out += [f"unsupported: {u}" for u in self.unsupported]
        out += [f"approximation: {a}" for a in self.approximations]
        out += [f"note: {n}" for n in self.notes]
        return out


def _latencies(graph: ChipGraph) -> dict[str, int]:
    lat = {i.name: 0 for i in graph.inputs}
    for node in [*graph.populations, *graph.accumulators]:  # feed-forward order (validated by ChipGraph)
        lat[node.name] = min(lat[s.source] + 1 for s in graph.incoming(node.name))
    return lat


def _neuron_node(p: CubaPopulation, dt: float, c: float, lat: int, approximations: list[str]):
    import nir

    n = p.size
    ones = np.ones(n)
    a_s = p.i_decay / loihi.DECAY_UNITY
    a_m = p.v_decay / loihi.DECAY_UNITY
    vth = ones * (p.vth * c)
    meta = dict(ptsnn_kind="population", ptsnn_role=p.role, ptsnn_i_decay=int(p.i_decay),
                ptsnn_v_decay=int(p.v_decay), ptsnn_vth=int(p.vth), ptsnn_latency_steps=int(lat))
    meta["ptsnn_scale_exponent"] = int(round(-np.log2(c)))  # exported values = weight units / 2**this
    bias = p.bias.astype(np.float64) * c
    if p.i_decay == loihi.DECAY_UNITY:
        if p.v_decay > 0:
            tau = dt / a_m
            node = nir.LIF(tau=ones * tau, r=ones * (tau / dt), v_leak=0 * ones, v_threshold=vth, v_reset=0 * ones,
                           metadata=meta)
        else:
            node = nir.IF(r=ones.copy(), v_threshold=vth, v_reset=0 * ones, metadata=meta)
        return node, bias  # the bias travels in the first incoming nir.Affine
    if p.v_decay > 0:
        tau_mem_steps = 1.0 / a_m
    else:
        tau_mem_steps = NO_LEAK_TAU_STEPS
        approximations.append(f"population '{p.name}': no membrane leak (v_decay 0) with a synaptic current; "
                              f"NIR CubaLIF needs a finite tau_mem, exported as 2**24*dt (leak 6e-8 per step)")
    tau_syn_steps = 1.0 / a_s
    node = nir.CubaLIF(tau_syn=ones * (tau_syn_steps * dt), tau_mem=ones * (tau_mem_steps * dt),
                       r=ones * tau_mem_steps, v_leak=bias * tau_mem_steps, v_threshold=vth, v_reset=0 * ones,
                       w_in=ones * tau_syn_steps, metadata=meta)
    return node, np.zeros(n)


def export_nir(graph: ChipGraph, path: str | os.PathLike, dt: float = 1e-3, descale: bool = True) -> NirExportReport:
    """Write ``graph`` as a NIR HDF5 file at ``path`` (atomically, byte-stable) and report what NIR lost."""
    import nir

    if not (isinstance(dt, (int, float)) and np.isfinite(dt) and dt > 0):
        raise InputError(f"NIR export: dt must be a positive number of seconds, got {dt!r}")
    path = Path(path)
    lat = _latencies(graph)
    unsupported: list[str] = [
        "Loihi fixed-point arithmetic: decays of u and v round toward zero at 1/64 of a weight unit and "
        "weights/thresholds/biases are integers; NIR holds real numbers and no rounding rule",
        "register limits: the 24-bit current register wraps and the 24-bit voltage register saturates",
    ]
    approximations: list[str] = [
        f"decays become time constants tau = dt*4096/decay (dt = {dt:g} s): forward Euler at the same dt "
        "reproduces the chip's update in real arithmetic; other discretisations (exact exponential, other dt) "
        "do not",
    ]
    notes: list[str] = []
    nodes: dict = {}
    edges: list[tuple[str, str]] = []
    scale: dict[str, float] = {}  # per target: multiply weight units by this
    pending_bias: dict[str, np.ndarray] = {}

    for i in graph.inputs:
        meta = dict(ptsnn_kind="host_input", ptsnn_message_bits=int(i.message_bits), ptsnn_levels=int(i.levels),
                    ptsnn_steps_per_frame=int(i.steps_per_frame), ptsnn_latency_steps=0)
        nodes[i.name] = nir.Input(np.array([i.size]), metadata=meta)
        if i.message_bits:
            unsupported.append(f"host input '{i.name}': graded payloads are {i.message_bits}-bit signed integers "
                               f"(x*{i.levels} rounded); NIR input is real-valued, exported weights expect x in "
                               f"[-1, 1]")
        if i.steps_per_frame > 1:
            unsupported.append(f"host input '{i.name}': each feature frame is held for {i.steps_per_frame} steps "
                               "by the host (not in NIR)")
    for p in graph.populations:
        c = 2.0 ** -(p.scale_exponent or 0) if descale else 1.0
        scale[p.name] = c
        node, bias = _neuron_node(p, dt, c, lat[p.name], approximations)
        nodes[p.name] = node
        if np.any(bias):
            pending_bias[p.name] = bias
        if p.role != "plif":
            notes.append(f"population '{p.name}': role '{p.role}' kept as metadata only (same arithmetic)")
    for a in graph.accumulators:
        c = 2.0 ** -a.scale_exponent if descale else 1.0
        scale[a.name] = c
        nodes[a.name] = nir.I(r=np.ones(a.size), metadata=dict(
            ptsnn_kind="accumulator", ptsnn_scale_exponent=int(a.scale_exponent), ptsnn_latency_steps=int(lat[a.name])))
        unsupported.append(f"readout '{a.name}': Lava Sigma running sum exported as nir.I (v += r*input per step); "
                           f"the host-side readout (value / 2**{a.scale_exponent} / step count at the end of the "
                           "utterance) is not in NIR")
    if graph.flush_steps:
        unsupported.append(f"flush: the host appends {graph.flush_steps} zero steps after each utterance (not in NIR)")

    in_level = {i.name: float(i.levels) if i.message_bits else 1.0 for i in graph.inputs}
    for s in graph.synapses:
        w = s.weight.astype(np.float64) * in_level.get(s.source, 1.0) * scale[s.target]
        extra = s.delay + lat[s.source] + 1 - lat[s.target]
        live = s.weight != 0
        bias = pending_bias.pop(s.target, None)
        branches = _delay_branches(extra, live)
        if len(branches) > 1:
            notes.append(f"edge '{s.name}': delays vary per synapse, split into {len(branches)} Delay->Linear "
                         f"branches (one per delay value)")
        for k, (delay_row, mask) in enumerate(branches):
            name = s.name if len(branches) == 1 else f"{s.name}@{k}"
            wk = np.where(mask, w, 0.0) if mask is not None else w
            if bias is not None and k == 0:
                nodes[name] = nir.Affine(weight=wk, bias=bias)
            else:
                nodes[name] = nir.Linear(weight=wk)
            head = s.source
            if np.any(delay_row):
                nodes[f"{name}.delay"] = nir.Delay(delay=delay_row * dt)
                edges.append((s.source, f"{name}.delay"))
                head = f"{name}.delay"
            edges.append((head, name))
            edges.append((name, s.target))
    notes.append("synapse latency: each chip synapse adds one step; folded into per-node shifts (chip output of "
                 "node n at step t+L(n) equals its NIR output at step t), L stored as metadata "
                 "ptsnn_latency_steps" + (f"; max L = {max(lat.values())}" if lat else ""))
    if graph.accumulators:
        notes.append("nir.I is read with the discrete convention of norse/Sinabs (v += r*input each step), "
                     "not dt*r as a literal Euler step of dv/dt = R*I would give")

    sources = {s.source for s in graph.synapses}
    for node in [*graph.populations, *graph.accumulators]:
        if node.name not in sources:
            out = f"output_{node.name}"
            nodes[out] = nir.Output(np.array([node.size]))
            edges.append((node.name, out))

    meta = dict(ptsnn_format="ptsnn chip IR", ptsnn_dt=float(dt), ptsnn_descaled=int(bool(descale)),
                ptsnn_flush_steps=int(graph.flush_steps))
    try:
        nir_graph = nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta, type_check=True)
    except Exception as exc:  # a bug here, not a user error: keep the message on one line
        raise InputError(f"NIR export: the NIR graph does not type-check: {exc}") from exc
    _atomic_nir_write(path, nir_graph)
    try:
        back = nir.read(path)
    except Exception as exc:
        raise InputError(f"NIR export: {path} does not read back with nir.read: {exc}") from exc
    if set(back.nodes) != set(nodes) or len(back.edges) != len(edges):
        raise InputError(f"NIR export: {path} read back with {len(back.nodes)} nodes/{len(back.edges)} edges, "
                         f"wrote {len(nodes)}/{len(edges)}")
    types: dict[str, int] = {}
    for n in nodes.values():
        types[type(n).__name__] = types.get(type(n).__name__, 0) + 1
    return NirExportReport(path, float(dt), len(nodes), len(edges), types, dict(lat), unsupported, approximations,
                           notes)


def _delay_branches(extra: np.ndarray, live: np.ndarray) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """[(per-source delay row in steps, mask of synapses in this branch or None for all)]."""
    if not live.any():
        return [(np.zeros(extra.shape[1]), None)]
    col = np.where(live, extra, -1).max(axis=0)  # the delay of each source column (over its live synapses)
    if np.all(~live | (extra == col[None, :])):  # delays depend on the source neuron only
        return [(np.where(col < 0, 0, col).astype(np.float64), None)]
    values = np.unique(extra[live])
    return [(np.full(extra.shape[1], float(v)), live & (extra == v)) for v in values]


def _atomic_nir_write(path: Path, nir_graph) -> None:
    import nir

    with atomic_output(path) as tmp:
        nir.write(tmp, nir_graph)


__all__ = ["NirExportReport", "export_nir"]
