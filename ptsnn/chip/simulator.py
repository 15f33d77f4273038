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
from itertools import islice
from typing import Callable, Iterable, Iterator

import numpy as np

from ptsnn.batching import pad_batch
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
    spike_counts: dict[str, np.ndarray] | None = None  # population -> [B, N] spikes within each sample's window

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
             record_peak_input: bool = False, keep_spikes: bool = True, window=None) -> ChipRun:
    """Run host payloads ``{input name: [B, T, size]}`` (or one array for a single input) through the graph.

    ``record_voltage``: keep each CUBA population's voltage after the step's reset (0 where it spiked).
    ``record_peak_input``: keep the largest ``|a_in|`` each population received (the overflow design rule).
    ``keep_spikes=False``: return no spike arrays, only ``spike_counts`` per sample and neuron within
    ``window`` (steps per sample, default all), and free each population's activity once its last consumer
    has run (what a streamed evaluation needs)."""
    if not isinstance(payload_in, dict):
        payload_in = {graph.inputs[0].name: payload_in}
    acts = {k: np.moveaxis(np.asarray(v, np.int64), 1, 0) for k, v in payload_in.items()}  # time-major
    spikes, accs = {}, {}
    volts: dict[str, np.ndarray] | None = {} if record_voltage else None
    peaks: dict[str, int] | None = {} if record_peak_input else None
    counts: dict[str, np.ndarray] | None = None if keep_spikes else {}
    order = [*graph.populations, *graph.accumulators]
    last_use = {e.source: i for i, node in enumerate(order) for e in graph.incoming(node.name)}
    in_window = None
    if counts is not None:
        steps_total, batch = next(iter(acts.values())).shape[:2]
        w = np.full(batch, steps_total) if window is None else np.asarray(window)
        in_window = np.arange(steps_total)[:, None] < w[None, :]  # [T, B]
    for i, node in enumerate(order):
        a_in = None
        for e in graph.incoming(node.name):
            a = edge_input(e, acts[e.source], graph.message_bits(e.source) > 0)
            a_in = a if a_in is None else np.add(a_in, a, out=a_in)  # a_in is a fresh array of this loop
        if counts is not None:  # free what no later node reads
            for name in [k for k in acts if last_use.get(k, -1) <= i]:
                del acts[name]
        if peaks is not None:
            peaks[node.name] = int(max(-int(a_in.min(initial=0)), int(a_in.max(initial=0))))
        if isinstance(node, Accumulator):
            accs[node.name] = np.moveaxis(kernels.sigma_run(a_in).astype(np.int64), 0, 1)
            continue
        try:
            run = NEURON_KERNELS[type(node)]
        except KeyError:
            raise TypeError(f"no kernel for node type {type(node).__name__}") from None
        out, v = run(node, a_in, record_voltage)
        del a_in
        if counts is not None:
            counts[node.name] = _count_in_window(out, in_window)
            if last_use.get(node.name, -1) > i:
                acts[node.name] = out
        else:
            acts[node.name] = out
            spikes[node.name] = np.moveaxis(out, 0, 1)
        if volts is not None and v is not None:
            volts[node.name] = np.moveaxis(v, 0, 1)
    return ChipRun(spikes, accs, volts, peaks, counts)


def _count_in_window(out: np.ndarray, in_window: np.ndarray) -> np.ndarray:
    """Events per sample and neuron ``[B, N]`` of a time-major ``[T, B, N]`` output, within each window."""
    fired = out != 0
    if in_window.all():
        return np.count_nonzero(fired, axis=0).astype(np.int64)
    return np.einsum("tbn,tb->bn", fired.astype(np.int32), in_window.astype(np.int32), dtype=np.int64)


# ------------------------------------------------------------------------------------------- streaming
@dataclass
class StreamResult:
    """What a streamed evaluation keeps per utterance: the readout window, each accumulator's value after it
    (what the host reads) and spike counts per neuron within it, ``[U, ...]``."""

    steps: np.ndarray  # [U] steps per utterance (payload steps + flush)
    readouts: dict[str, np.ndarray]  # accumulator -> [U, N] int64
    spike_counts: dict[str, np.ndarray]  # population -> [U, N] int64


def simulate_batches(graph: ChipGraph, payloads: Iterable[np.ndarray], batch_size: int = 64, *,
                     keep_spikes: bool = True, record_voltage: bool = False,
                     flush_steps: int | None = None) -> Iterator[tuple[np.ndarray, ChipRun]]:
    """Stream utterances through the chip as the host does: each payload ``[steps_i, F]`` (the first input),
    then ``flush_steps`` (default the graph's) empty steps. ``payloads`` may be any iterable (a generator
    keeps only one batch in memory). Yields ``(steps [b], ChipRun)`` per batch of up to ``batch_size``."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    flush = graph.flush_steps if flush_steps is None else int(flush_steps)
    it = iter(payloads)
    while True:
        chunk = list(islice(it, batch_size))
        if not chunk:
            return
        steps = np.array([len(p) + flush for p in chunk], np.int64)
        batch, _ = pad_batch(chunk, length=int(steps.max()), dtype=np.int64)  # zeros after each payload: flush
        del chunk
        yield steps, simulate(graph, batch, record_voltage=record_voltage, keep_spikes=keep_spikes, window=steps)


def simulate_stream(graph: ChipGraph, payloads: Iterable[np.ndarray], batch_size: int = 64,
                    flush_steps: int | None = None) -> StreamResult:
    """Readouts and spike counts of every utterance, batch by batch, never holding more than one batch of
    activity (no spike arrays are kept)."""
    steps, readouts, counts = [], {a.name: [] for a in graph.accumulators}, {p.name: [] for p in graph.populations}
    for s, run in simulate_batches(graph, payloads, batch_size, keep_spikes=False, flush_steps=flush_steps):
        steps.append(s)
        for name in readouts:
            readouts[name].append(run.readout(name, s))
        for name in counts:
            counts[name].append(run.spike_counts[name])
    if not steps:
        raise ValueError("simulate_stream: no payloads")
    return StreamResult(np.concatenate(steps), {k: np.concatenate(v) for k, v in readouts.items()},
                        {k: np.concatenate(v) for k, v in counts.items()})


simulate_chip = simulate  # the name the first releases used
