"""Fast bit-exact simulator of the chip IR (``ptsnn.chip.ir.ChipGraph``).

Same arithmetic as Lava's ``fixed_pt`` models (``ptsnn.numerics.loihi``), vectorised over a batch of
utterances and over time: each edge's input is one float64 matrix product per distinct delay over all steps
(exact: every partial sum stays far below 2**53), populations are integrated over time in int64, the
accumulator keeps Lava ``Sigma``'s running sum. Populations are visited in the graph's feed-forward order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ptsnn.numerics import loihi


@dataclass
class ChipRun:
    spikes: dict[str, np.ndarray]  # population -> [B, T, N] bool
    accumulators: dict[str, np.ndarray]  # accumulator -> running sum [B, T, N] int64 (what Sigma sends)
    voltages: dict[str, np.ndarray] | None = None  # population -> post-reset voltage [B, T, N] int64, if recorded

    def readout(self, name: str, steps: np.ndarray) -> np.ndarray:
        """Accumulator value after ``steps[b]`` steps for each sample: ``[B, N]``."""
        acc = self.accumulators[name]
        idx = np.clip(np.asarray(steps) - 1, 0, acc.shape[1] - 1)
        return acc[np.arange(acc.shape[0]), idx]


def edge_input(pre: np.ndarray, weight: np.ndarray, delay: np.ndarray) -> np.ndarray:
    """``a[b, t, o] = sum_i weight[o, i] * pre[b, t - 1 - delay[o, i], i]``."""
    batch, steps, n_in = pre.shape
    out = np.zeros((batch, steps, weight.shape[0]), np.int64)
    # one 2-D BLAS product over all (sample, step) rows per distinct delay, then a shift in time
    rows = np.ascontiguousarray(pre, dtype=np.float64).reshape(batch * steps, n_in)
    for d in np.unique(delay):
        lag = 1 + int(d)
        if lag >= steps:
            continue
        w_d = np.ascontiguousarray(np.where(delay == d, weight, 0).T, dtype=np.float64)
        prod = np.rint(rows @ w_d).astype(np.int64).reshape(batch, steps, -1)
        out[:, lag:] += prod[:, : steps - lag]
    return out


def simulate_chip(graph, payload: np.ndarray, record_voltage: bool = False) -> ChipRun:
    """Run host payloads ``{input name: [B, T, size]}`` (or one array for a single input) through the graph.

    ``record_voltage``: also keep each population's voltage after the step's reset (``loihi.cuba_run``'s
    ``record_voltage``; 0 where the neuron spiked) in ``ChipRun.voltages`` (for the report's histograms)."""
    if not isinstance(payload, dict):
        payload = {graph.inputs[0].name: payload}
    acts = {k: np.asarray(v, np.int64) for k, v in payload.items()}
    spikes, accs = {}, {}
    volts: dict[str, np.ndarray] | None = {} if record_voltage else None
    for pop in graph.populations:
        a_in = sum(edge_input(acts[e.source], e.weight, e.delay) for e in graph.incoming(pop.name))
        if record_voltage:
            s, volts[pop.name] = loihi.cuba_run(a_in, pop.params(), record_voltage=True)
        else:  # the batched time-major kernel (bit-exact, falls back to exact int64 replay when needed)
            s = np.moveaxis(loihi.cuba_run_fast(np.moveaxis(a_in, 1, 0), pop.params()), 0, 1)
        spikes[pop.name] = s
        acts[pop.name] = s.astype(np.int64)
    for acc in graph.accumulators:
        a_in = sum(edge_input(acts[e.source], e.weight, e.delay) for e in graph.incoming(acc.name))
        accs[acc.name] = np.cumsum(a_in, axis=1)
    return ChipRun(spikes, accs, volts)
