"""The hardware cost of one candidate on one profile, as the report computes it: the candidate's chip IR is
run on the fast simulator over a few held-out inputs (exact: the same kernels every backend is checked
against), the activity is counted by the report's ``ActivityCollector`` and priced by ``native_energy``.

Costs are per inference: ``energy_uj`` (native view of the profile, None when the profile prices nothing),
``latency_ms`` (steps x ``timing.time_step_us``), ``cores`` (the design rules' allocation) and ``synops``
(synaptic operations: effective ACs + MACs, the count energy is priced from). No Lava run is needed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ptsnn.chip.ir import ChipGraph
from ptsnn.chip.simulator import simulate
from ptsnn.report.collect import ActivityCollector
from ptsnn.report.energy import native_energy

COST_NAMES = ("energy_uj", "latency_ms", "cores", "synops")


def _split(payloads: dict[str, np.ndarray] | np.ndarray, graph: ChipGraph) -> dict[str, np.ndarray]:
    return payloads if isinstance(payloads, dict) else {graph.inputs[0].name: payloads}


def chip_costs(graph: ChipGraph, payloads: dict[str, np.ndarray] | np.ndarray, profile,
               steps: np.ndarray | None = None) -> dict[str, Any]:
    """Costs per inference of ``graph`` on ``profile`` for batched payloads ``{input: [B, T, size]}`` (or one
    array for a single-input graph). ``steps``: each sample's window (default: all ``T`` steps)."""
    batched = _split(payloads, graph)
    batch, total = next(iter(batched.values())).shape[:2]
    if batch < 1:
        raise ValueError("chip_costs needs at least one input")
    windows = np.full(batch, total) if steps is None else np.asarray(steps, np.int64)
    run = simulate(graph, batched)
    activity = ActivityCollector(graph)
    for i in range(batch):
        s = int(windows[i])
        activity.add(f"sample{i}", {k: v[i, :s] for k, v in batched.items()},
                     {k: v[i, :s] for k, v in run.spikes.items()}, steps=s)
    energy = native_energy(graph, activity, profile)
    synops = float(np.mean([sum(u.layers[x.name]["effective_acs"] + u.layers[x.name]["effective_macs"]
                                for x in [*graph.populations, *graph.accumulators]) for u in activity.utterances]))
    latency_us = energy["latency"]["per_utterance_us"]
    return dict(energy_uj=energy["energy"]["per_utterance_uj"],
                latency_ms=None if latency_us is None else latency_us / 1e3,
                cores=energy["cores_total"], synops=synops,
                spikes=float(np.mean([sum(u.layers[p.name]["output_spikes"] for p in graph.populations)
                                      for u in activity.utterances])),
                energy_uses_proxy=energy["energy"]["uses_proxy"])
