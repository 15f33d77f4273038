"""The simulator of the chip IR: bit-exact with Lava's ``fixed_pt`` models, vectorised over samples and time.

Synaptic input comes from ``ptsnn.chip.synapses`` (one BLAS product per edge and delay over all steps and
samples), neurons from ``ptsnn.chip.kernels`` (one exact kernel per neuron type, plus its proven fast path),
accumulators are Lava ``Sigma``'s int32 running sum. Populations are visited in the graph's feed-forward order.
Every consumer that needs chip activity (``ptsnn run --backend fast``, calibration, verification, reports)
calls :func:`simulate`; voltages and peak inputs are recorded by the same arithmetic that produces the spikes.

Adding a neuron type: a node in ``ptsnn.chip.ir``, a kernel in ``ptsnn.chip.kernels``, one entry in
:data:`NEURON_KERNELS` below (docs/design.md, "How to add a node type").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ptsnn.chip import kernels
from ptsnn.chip.ir import (
    Accumulator,
    ChipGraph,
    CubaPopulation,
    FireOncePopulation,
    SigmaDeltaPopulation,
)
from ptsnn.chip.synapses import edge_input


@dataclass
class ChipRun:
    """What a backend returns: chip activity per node, batch-major ``[B, T, N]``."""

    spikes: dict[str, np.ndarray]  # population -> bool spikes (int32 payloads for graded populations)
    accumulators: dict[str, np.ndarray]  # accumulator -> running sum (what Sigma sends), int64
    voltages: dict[str, np.ndarray] | None = None  # population -> voltage after the step's reset, if recorded
    peak_input: dict[str, int] | None = None  # population -> largest |a_in| received (before int32 wrap)

    def readout(self, name: str, steps: np.ndarray) -> np.ndarray:
        """Accumulator value after ``steps[b]`` steps for each sample: ``[B, N]``."""
        acc = self.accumulators[name]
        idx = np.clip(np.asarray(steps) - 1, 0, acc.shape[1] - 1)
        return acc[np.arange(acc.shape[0]), idx]


# --------------------------------------------------------------------------------------------- neurons
def _run_cuba(pop: CubaPopulation, a_in: np.ndarray, record_voltage: bool):
    out = kernels.run_cuba(a_in, pop.params(), record_voltage=record_voltage)
    return out if record_voltage else (out, None)


def _run_fire_once(pop: FireOncePopulation, a_in: np.ndarray, record_voltage: bool):
    return kernels.run_fire_once(a_in, pop.params(), pop.inhibition(), record_voltage=record_voltage)


def _run_sigma_delta(pop: SigmaDeltaPopulation, a_in: np.ndarray, record_voltage: bool):
    return kernels.sigma_delta_run(a_in, pop.vth, pop.bias), None  # no voltage: graded activations


NEURON_KERNELS: dict[type, Callable] = {
    CubaPopulation: _run_cuba,
    FireOncePopulation: _run_fire_once,
    SigmaDeltaPopulation: _run_sigma_delta,
}


def simulate(graph: ChipGraph, payload_in, record_voltage: bool = False,
             record_peak_input: bool = False) -> ChipRun:
    """Run host payloads ``{input name: [B, T, size]}`` (or one array for a single input) through the graph.

    ``record_voltage``: keep each CUBA population's voltage after the step's reset (0 where it spiked).
    ``record_peak_input``: keep the largest ``|a_in|`` each population received (the overflow design rule)."""
    if not isinstance(payload_in, dict):
        payload_in = {graph.inputs[0].name: payload_in}
    acts = {k: np.moveaxis(np.asarray(v, np.int64), 1, 0) for k, v in payload_in.items()}  # time-major
    spikes, accs = {}, {}
    volts: dict[str, np.ndarray] | None = {} if record_voltage else None
    peaks: dict[str, int] | None = {} if record_peak_input else None
    for node in [*graph.populations, *graph.accumulators]:
        a_in = None
        for e in graph.incoming(node.name):
            a = edge_input(e, acts[e.source], graph.message_bits(e.source) > 0)
            a_in = a if a_in is None else a_in + a
        if peaks is not None:
            peaks[node.name] = int(np.abs(a_in).max(initial=0))
        if isinstance(node, Accumulator):
            accs[node.name] = np.moveaxis(kernels.sigma_run(a_in).astype(np.int64), 0, 1)
            continue
        try:
            run = NEURON_KERNELS[type(node)]
        except KeyError:
            raise TypeError(f"no kernel for node type {type(node).__name__}") from None
        out, v = run(node, a_in, record_voltage)
        acts[node.name] = out
        spikes[node.name] = np.moveaxis(out, 0, 1)
        if volts is not None and v is not None:
            volts[node.name] = np.moveaxis(v, 0, 1)
    return ChipRun(spikes, accs, volts, peaks)


simulate_chip = simulate  # the name the first releases used
