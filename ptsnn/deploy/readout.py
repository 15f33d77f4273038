"""Where a bundle's class scores come from.

Bundles converted from a trained PTS-SNN read an accumulator (Lava ``Sigma``): its value after the last step,
divided by ``2**scale_exponent`` and the step count, is the logit. A graph imported from NIR may end in a
spiking population instead (``nir.Output`` fed by a LIF layer, as snnTorch / norse classifiers do): then
the logit is that population's spike count over the utterance divided by the step count (its firing rate).
"""

from __future__ import annotations

import numpy as np


def readout_name(graph) -> tuple[str, bool]:
    """``(node name, is_accumulator)``: the first accumulator, else the population behind the first NIR
    output (recorded at import), else the last population."""
    if graph.accumulators:
        return graph.accumulators[0].name, True
    outputs = ((graph.meta or {}).get("nir_import") or {}).get("outputs") or {}
    pops = {p.name for p in graph.populations}
    for name in outputs.values():
        if name in pops:
            return name, False
    return graph.populations[-1].name, False


def readout_size(graph) -> int:
    name, _ = readout_name(graph)
    return next(n.size for n in [*graph.accumulators, *graph.populations] if n.name == name)


def totals_fast(graph, run, steps: np.ndarray) -> np.ndarray:
    """``[B, N]`` readout totals from a fast-simulator run (accumulator values or spike counts)."""
    name, is_acc = readout_name(graph)
    if is_acc:
        return run.readout(name, steps)
    spikes = run.spikes[name]
    return np.stack([spikes[i, : int(s)].sum(axis=0) for i, s in enumerate(steps)]).astype(np.float64)


def totals_lava(graph, out: dict, steps: int) -> np.ndarray:
    """``[N]`` readout total of one Lava run (probes ``[N, T]`` per node)."""
    name, is_acc = readout_name(graph)
    if is_acc:
        return out[name][:, steps - 1]
    return out[name][:, :steps].astype(bool).sum(axis=1).astype(np.float64)


def scale(graph) -> float:
    """Divide totals by this (and the step count) to get logits."""
    name, is_acc = readout_name(graph)
    return 2.0 ** graph.accumulators[0].scale_exponent if is_acc else 1.0
