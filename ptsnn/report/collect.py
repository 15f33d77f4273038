"""Event counting over the chip IR: what every layer received, computed and sent, utterance by utterance.

In the manner of NeuroBench's hooks: a collector sees each utterance's activity (host payloads, spikes per
population, optionally voltages) once, keeps small per-utterance counters and fixed-size histograms, and
forgets the arrays. Counting reads the chip IR (``ChipGraph``) and nothing else, so it works on spikes from
any backend (the fast simulator, Lava) as long as they come per utterance as ``{population: [T, N]}``.

Definitions (per utterance of ``T`` chip steps = payload steps + the graph's flush steps; the window is
``t < T``):

* **input events** of a layer: non-zero activations its sources emit inside the window, once per incoming
  synapse group (a graded payload != 0 or a spike);
* **synaptic operations**, delivered inside the window: a source event at step ``t`` through an existing
  (non-zero) synapse with delay ``d`` is one operation at step ``t + 1 + d`` if that step is ``< T``.
  ``effective_macs`` when the source is graded (host payload, ``message_bits > 0``), ``effective_acs`` when
  it is binary (spikes); ``dense_ops`` = every potential synapse (zero weights included) every step: a dense
  group's weight entries; a convolution's (output position, kernel tap) pairs that land inside the input
  grid (:func:`dense_synapses`), not kernel entries and not taps x every position;
* **membrane updates** = neurons x steps (every neuron's state is updated each step); a neuron-step is
  **active** when at least one synaptic operation was delivered to that neuron in that step, **idle** otherwise;
* **paper counts** (the usual SNN-paper estimate): ``paper_macs`` = every weight entry x steps of the layers
  fed by real values (graded payloads); ``paper_acs`` = sum over the source's spikes in the window of the
  spiking neuron's fan-out (non-zero synapses), delivered or not. A convolution's fan-out of a spike is the
  number of (output position, non-zero tap) pairs it reaches (``ConvSynapses.fan_out``);
* **fire-once populations** (TTFS, :class:`FireOncePopulation`): per utterance the most spikes of any
  neuron (must be 1), the neurons that fired more than once or never, and a histogram of first-spike steps.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from ptsnn.chip.ir import Accumulator, ChipGraph, ConvSynapses, CubaPopulation, FireOncePopulation, HostInput
from ptsnn.chip.synapses import conv2d_exact, edge_input
from ptsnn.errors import InputError

SATURATED_RATE = 0.9  # a neuron firing on more than 90 % of an utterance's steps is saturated (as in calibration)
HIST_RANGE = (-3.0, 1.0)  # voltage histogram range, in units of the threshold
HIST_BINS = 80

POPULATION_COUNTERS = ("input_events", "effective_macs", "effective_acs", "dense_ops", "membrane_updates",
                       "active_updates", "output_spikes", "saturated_neurons", "paper_macs", "paper_acs")
ACCUMULATOR_COUNTERS = ("input_events", "effective_macs", "effective_acs", "dense_ops", "membrane_updates",
                        "active_updates", "paper_macs", "paper_acs")
INPUT_COUNTERS = ("output_events",)


def dense_synapses(e) -> int:
    """Potential synapses of a group, zero weights included: a dense group's weight entries; for a
    convolution the (output position, kernel tap) pairs inside the input grid (taps on padding are none)."""
    if isinstance(e, ConvSynapses):
        ones = np.ones((1, *e.in_shape), np.int64)
        return int(conv2d_exact(ones, np.ones_like(e.weight), e.stride, e.padding, e.dilation, e.groups).sum())
    return int(e.weight.size)


def layer_kind(node) -> str:
    if isinstance(node, HostInput):
        return "input"
    if isinstance(node, CubaPopulation):
        return "population"
    if isinstance(node, Accumulator):
        return "accumulator"
    raise TypeError(f"not a chip IR node: {node!r}")


@dataclass
class UtteranceCounts:
    """One utterance's counters, ``layers[name][counter]`` (integers)."""

    name: str
    steps: int  # chip steps (payload + flush)
    payload_steps: int
    layers: dict[str, dict[str, int]]


@dataclass
class VoltageHistogram:
    """Post-reset voltages of one population, in units of its threshold (``v / (vth << 6)``).

    Non-spiking neuron-steps go into ``counts`` over ``edges`` (values below the range into ``below``);
    neuron-steps that spiked (their voltage crossed the threshold and was reset to 0) are counted in ``spiked``.
    """

    threshold: int  # in voltage register units (vth << 6)
    edges: np.ndarray
    counts: np.ndarray
    below: int = 0
    spiked: int = 0
    minimum: float = float("inf")
    maximum: float = float("-inf")

    @classmethod
    def empty(cls, threshold: int) -> "VoltageHistogram":
        edges = np.linspace(*HIST_RANGE, HIST_BINS + 1)
        return cls(threshold, edges, np.zeros(HIST_BINS, np.int64))

    def add(self, volts: np.ndarray, spikes: np.ndarray) -> None:
        x = np.asarray(volts, np.float64)[~spikes] / max(self.threshold, 1)
        self.spiked += int(spikes.sum())
        if x.size == 0:
            return
        self.minimum = min(self.minimum, float(x.min()))
        self.maximum = max(self.maximum, float(x.max()))
        self.below += int((x < self.edges[0]).sum())
        inside = np.clip(x[x >= self.edges[0]], self.edges[0], self.edges[-1])
        self.counts += np.histogram(inside, bins=self.edges)[0]

    @property
    def total(self) -> int:
        return int(self.counts.sum()) + self.below + self.spiked

    def to_dict(self) -> dict:
        return dict(threshold=self.threshold, bin_edges=[round(float(e), 6) for e in self.edges],
                    counts=[int(c) for c in self.counts], below_range=self.below, spiked=self.spiked,
                    minimum=None if self.total == self.spiked else self.minimum,
                    maximum=None if self.total == self.spiked else self.maximum)


@dataclass
class ActivityCollector:
    """Accumulates per-utterance counters (and voltage histograms, one raster) over a chip graph."""

    graph: ChipGraph
    utterances: list[UtteranceCounts] = field(default_factory=list)
    neuron_spikes: dict[str, np.ndarray] = field(default_factory=dict)  # population -> per-neuron spike totals
    histograms: dict[str, VoltageHistogram] = field(default_factory=dict)
    raster_name: str | None = None
    raster: dict[str, np.ndarray] | None = None  # the first utterance's spikes {population: [T, N] bool}
    raster_payload: np.ndarray | None = None
    first_spike_steps: dict[str, np.ndarray] = field(default_factory=dict)  # fire-once: neurons per first step
    max_spikes: dict[str, int] = field(default_factory=dict)  # fire-once: most spikes of a neuron in one utterance

    def __post_init__(self):
        g = self.graph
        self._nnz_per_column = {e.name: e.fan_out() for e in g.synapses}
        self._mask = {e.name: (e.weight != 0).astype(np.int64) for e in g.synapses}
        # deliveries are counted through the 0/1 mask with no exponent (a shifted mask would count 2^exp ops)
        self._counting = {e.name: e if isinstance(e, ConvSynapses) or e.weight_exp == 0
                          else dataclasses.replace(e, weight=self._mask[e.name], weight_exp=0) for e in g.synapses}
        self._dense = {e.name: dense_synapses(e) for e in g.synapses}
        self.neuron_spikes = {p.name: np.zeros(p.size, np.int64) for p in g.populations}

    # ------------------------------------------------------------------------------------------- adding
    def add(self, name: str, payload, spikes: dict[str, np.ndarray], voltages: dict[str, np.ndarray] | None = None,
            steps: int | None = None) -> UtteranceCounts:
        """One utterance: ``payload`` ``[payload_steps, F]`` for the first input (or ``{input: array}``),
        ``spikes`` ``{population: [T, N]}`` over its window, ``voltages`` the same shape (optional)."""
        g = self.graph
        if not isinstance(payload, dict):
            payload = {g.inputs[0].name: payload}
        payload_steps = max(int(np.asarray(v).shape[0]) for v in payload.values())
        if steps is None:
            steps = (int(np.asarray(spikes[g.populations[0].name]).shape[0]) if g.populations
                     else payload_steps + g.flush_steps)
        acts: dict[str, np.ndarray] = {}
        for inp in g.inputs:
            if inp.name not in payload:
                raise InputError(f"utterance {name}: no payload for input {inp.name}")
            acts[inp.name] = _window(np.asarray(payload[inp.name], np.int64), steps, inp.size, f"{name}/{inp.name}")
        for pop in g.populations:
            if pop.name not in spikes:
                raise InputError(f"utterance {name}: no spikes for population {pop.name}")
            acts[pop.name] = _window(np.asarray(spikes[pop.name]).astype(bool), steps, pop.size, f"{name}/{pop.name}")

        layers: dict[str, dict[str, int]] = {}
        for inp in g.inputs:
            layers[inp.name] = dict(output_events=int(np.count_nonzero(acts[inp.name])))
        for node in [*g.populations, *g.accumulators]:
            c = dict.fromkeys(POPULATION_COUNTERS if isinstance(node, CubaPopulation) else ACCUMULATOR_COUNTERS, 0)
            arrivals = np.zeros((steps, node.size), np.int64)
            for e in g.incoming(node.name):
                src = acts[e.source] != 0  # [T, N_in]
                # ops per (step, target neuron): the edge's own delivery through the 0/1 mask of its synapses
                delivered = edge_input(self._counting[e.name], src[:, None], graded=False,
                                       weight=self._mask[e.name])[:, 0]
                ops = int(delivered.sum())
                c["input_events"] += int(src.sum())
                c["dense_ops"] += self._dense[e.name] * steps
                arrivals += delivered
                if g.message_bits(e.source) > 0:
                    c["effective_macs"] += ops
                    c["paper_macs"] += self._dense[e.name] * steps
                else:
                    c["effective_acs"] += ops
                    c["paper_acs"] += int(src.sum(axis=0).astype(np.int64) @ self._nnz_per_column[e.name])
            c["membrane_updates"] = node.size * steps
            c["active_updates"] = int(np.count_nonzero(arrivals))
            if isinstance(node, CubaPopulation):
                s = acts[node.name]
                per_neuron = s.sum(axis=0).astype(np.int64)
                c["output_spikes"] = int(per_neuron.sum())
                c["saturated_neurons"] = int((per_neuron > SATURATED_RATE * steps).sum())
                self.neuron_spikes[node.name] += per_neuron
                if isinstance(node, FireOncePopulation):
                    self._fire_once(node.name, s, per_neuron, c)
                if voltages is not None and node.name in voltages:
                    hist = self.histograms.setdefault(node.name, VoltageHistogram.empty(node.vth << 6))
                    hist.add(_window(np.asarray(voltages[node.name], np.int64), steps, node.size, name), s)
            layers[node.name] = c
        if self.raster is None:
            self.raster_name = name
            self.raster = {p.name: acts[p.name].copy() for p in g.populations}
            self.raster_payload = acts[g.inputs[0].name].copy()
        counts = UtteranceCounts(name, int(steps), payload_steps, layers)
        self.utterances.append(counts)
        return counts

    def _fire_once(self, name: str, s: np.ndarray, per_neuron: np.ndarray, c: dict) -> None:
        c["multi_spike_neurons"] = int((per_neuron > 1).sum())
        c["never_spiked_neurons"] = int((per_neuron == 0).sum())
        self.max_spikes[name] = max(self.max_spikes.get(name, 0), int(per_neuron.max(initial=0)))
        first = np.where(per_neuron > 0, s.argmax(axis=0), -1)
        hist = np.bincount(first[first >= 0], minlength=s.shape[0]).astype(np.int64)
        old = self.first_spike_steps.get(name, np.zeros(0, np.int64))
        if len(old) < len(hist):
            old = np.pad(old, (0, len(hist) - len(old)))
        old[: len(hist)] += hist
        self.first_spike_steps[name] = old

    # ------------------------------------------------------------------------------------------ results
    @property
    def total_steps(self) -> int:
        return sum(u.steps for u in self.utterances)

    def total(self, layer: str, counter: str) -> int:
        return sum(u.layers[layer].get(counter, 0) for u in self.utterances)

    def spike_counts(self) -> dict[str, int]:
        """Spikes per population over every utterance (what ``simulate_chip`` produced, summed)."""
        return {name: int(v.sum()) for name, v in self.neuron_spikes.items()}


def _window(a: np.ndarray, steps: int, size: int, what: str) -> np.ndarray:
    """Crop or zero-pad ``[t, size]`` to ``[steps, size]`` (a payload is followed by empty flush steps)."""
    if a.ndim != 2 or a.shape[1] != size:
        raise InputError(f"{what}: shape {a.shape}, expected [steps, {size}]")
    if a.shape[0] >= steps:
        return a[:steps]
    out = np.zeros((steps, size), a.dtype)
    out[: a.shape[0]] = a
    return out


# ------------------------------------------------------------------------------------------- feeding it
def collect_from_backend(bundle, payloads: list, names: list[str] | None = None, *, backend="fast",
                         record_voltage: bool = True, batch_size: int = 8, progress=None,
                         **options) -> ActivityCollector:
    """Run payloads ``[steps_i, F]`` (or ``{input: [steps_i, size]}`` for graphs with several host inputs)
    through a chip backend (``ptsnn.deploy.backends``: a name or a backend
    object, ``run(bundle, payloads) -> ChipRun``) in batches, each payload followed by the graph's flush
    steps as ``ptsnn run`` streams them, and count every utterance within its window.

    ``bundle``: a deployment ``Bundle`` or a bare ``ChipGraph`` (the fast backend runs either).
    ``record_voltage``: ask the fast backend for voltages (the report's histograms); a backend that returns
    none (Lava) gives a report without them. ``options`` go to a named backend (e.g. Lava's ``timeout_s``)."""
    from ptsnn.deploy.backends import chip_steps, get_backend, graph_of

    engine = get_backend(backend, record_voltage=record_voltage, **options) if isinstance(backend, str) else backend
    if hasattr(engine, "check"):
        engine.check()  # a backend that cannot run here says so before any work
    payloads = list(payloads)
    names = list(names) if names is not None else [f"utt{i}" for i in range(len(payloads))]
    if len(names) != len(payloads):
        raise InputError(f"{len(payloads)} payloads but {len(names)} names")
    if batch_size < 1:
        raise InputError(f"batch size {batch_size}: must be at least 1")
    collector = ActivityCollector(graph_of(bundle))
    for start in range(0, len(payloads), batch_size):
        chunk = payloads[start:start + batch_size]
        if progress:
            progress(f"running samples {start + 1}-{start + len(chunk)} of {len(payloads)} on "
                     f"{getattr(engine, 'name', backend)}")
        run = engine.run(bundle, chunk)
        for i, s in enumerate(chip_steps(bundle, chunk)):
            s = int(s)
            volts = {k: v[i, :s] for k, v in run.voltages.items()} if run.voltages is not None else None
            collector.add(names[start + i], chunk[i], {k: v[i, :s] for k, v in run.spikes.items()}, volts, steps=s)
    return collector


def collect_from_chip(graph: ChipGraph, payloads: list, names: list[str] | None = None, *,
                      record_voltage: bool = True, batch_size: int = 8, progress=None) -> ActivityCollector:
    """:func:`collect_from_backend` on the fast backend (the report's default)."""
    return collect_from_backend(graph, payloads, names, backend="fast", record_voltage=record_voltage,
                                batch_size=batch_size, progress=progress)


def collect_from_runs(graph: ChipGraph, payloads: list, runs: list, names: list[str] | None = None) -> ActivityCollector:
    """Count runs made elsewhere: ``runs[i]`` is a ``deploy.run.chip_run`` dict (``spikes``, ``steps``,
    optional ``voltages``), an ``UtteranceResult`` with ``spikes`` kept, or a plain ``{population: [T, N]}``."""
    if len(runs) != len(payloads):
        raise InputError(f"{len(payloads)} payloads but {len(runs)} runs")
    collector = ActivityCollector(graph)
    for i, (payload, run) in enumerate(zip(payloads, runs)):
        name = names[i] if names else getattr(run, "name", None) or f"utt{i}"
        steps = voltages = None
        if isinstance(run, dict) and "spikes" in run:
            spikes, steps, voltages = run["spikes"], run.get("steps"), run.get("voltages")
        elif hasattr(run, "spikes"):
            spikes, steps = run.spikes, getattr(run, "steps", None)
            if spikes is None:
                raise InputError(f"{name}: run has no spikes (classify(..., keep_spikes=True))")
        else:
            spikes = run
        collector.add(name, payload, spikes, voltages, steps=None if steps is None else int(steps))
    return collector
