"""NeuroBench-style metrics over a chip graph and its collected activity: one small class per metric.

Names follow NeuroBench (``neurobench/metrics``) so that numbers are comparable:

* static (the model alone): :class:`Footprint`, :class:`ParameterCount`, :class:`ConnectionSparsity`;
* workload (the model on data, averaged per sample = per utterance): :class:`ActivationSparsity`,
  :class:`SynapticOperations` (``Effective_MACs``, ``Effective_ACs``, ``Dense``), :class:`MembraneUpdates`.

Where the chip IR forces a choice, the class says it (docs/report.md lists every definition).
"""

from __future__ import annotations

import abc
from typing import ClassVar

import numpy as np

from ptsnn.chip.ir import ChipGraph
from ptsnn.report.collect import ActivityCollector

WEIGHT_BYTES = 1  # 8-bit weight mantissas (netx stores them as integers of 8 bits' range)
DELAY_BYTES = 1  # 6-bit delays, one byte each, only for synapse groups that have delays
BIAS_BYTES = 2  # 13-bit signed bias mantissas
NEURON_PARAM_BYTES = 4  # i_decay, v_decay, vth per population, one 32-bit word each
NEURON_PARAMS = 3


class StaticMetric(abc.ABC):
    """A metric of the network alone (NeuroBench static metric)."""

    name: ClassVar[str]
    unit: ClassVar[str]
    definition: ClassVar[str]

    @abc.abstractmethod
    def __call__(self, graph: ChipGraph): ...


class WorkloadMetric(abc.ABC):
    """A metric of the network running on data (NeuroBench workload metric)."""

    name: ClassVar[str]
    unit: ClassVar[str]
    definition: ClassVar[str]

    @abc.abstractmethod
    def __call__(self, graph: ChipGraph, activity: ActivityCollector): ...


class Footprint(StaticMetric):
    name = "Footprint"
    unit = "bytes"
    definition = ("bytes of the chip graph's integer parameters: 1 per weight entry (8-bit mantissas, zeros "
                  "included, as netx stores them), 1 per delay entry of synapse groups with delays, 2 per bias "
                  "mantissa, 3 x 4 per population (i_decay, v_decay, vth)")

    def __call__(self, graph: ChipGraph) -> int:
        total = 0
        for e in graph.synapses:
            total += e.weight.size * WEIGHT_BYTES
            if e.max_delay > 0:  # conv groups have no delays
                total += e.delay.size * DELAY_BYTES
        for p in graph.populations:
            total += p.bias.size * BIAS_BYTES + NEURON_PARAMS * NEURON_PARAM_BYTES
        return int(total)


class ParameterCount(StaticMetric):
    name = "ParameterCount"
    unit = "count"
    definition = "weight entries (zeros included) plus bias entries of the chip graph"

    def __call__(self, graph: ChipGraph) -> int:
        return int(sum(e.weight.size for e in graph.synapses) + sum(p.bias.size for p in graph.populations))


class ConnectionSparsity(StaticMetric):
    name = "ConnectionSparsity"
    unit = "fraction"
    definition = ("zero weights / weights, over the weight entries (parameters) of every synapse group of the "
                  "chip graph (a convolution counts its kernel once)")

    def __call__(self, graph: ChipGraph) -> float:
        total = sum(e.weight.size for e in graph.synapses)
        zeros = sum(int(np.count_nonzero(e.weight == 0)) for e in graph.synapses)  # parameters (a conv: its kernel)
        return float(zeros / total) if total else 0.0


class ActivationSparsity(WorkloadMetric):
    name = "ActivationSparsity"
    unit = "fraction"
    definition = ("1 - spikes / (neurons x steps), over every spiking population, step and utterance "
                  "(host payloads and the Sigma readout are not activations of the SNN)")

    def __call__(self, graph: ChipGraph, activity: ActivityCollector) -> float | None:
        slots = sum(p.size for p in graph.populations) * activity.total_steps
        spikes = sum(activity.total(p.name, "output_spikes") for p in graph.populations)
        return float(1.0 - spikes / slots) if slots else None


class SynapticOperations(WorkloadMetric):
    name = "SynapticOperations"
    unit = "operations per utterance"
    definition = ("Effective_MACs: non-zero graded input x non-zero weight products; Effective_ACs: spikes x "
                  "non-zero fan-out; both as delivered inside the utterance's steps; Dense: every potential "
                  "synapse (zero weights included; a convolution's (output position, tap) pairs inside the input) "
                  "every step; mean per utterance")

    def __call__(self, graph: ChipGraph, activity: ActivityCollector) -> dict[str, float]:
        n = max(len(activity.utterances), 1)
        layers = [*graph.populations, *graph.accumulators]
        out = {}
        for key, counter in (("Effective_MACs", "effective_macs"), ("Effective_ACs", "effective_acs"),
                             ("Dense", "dense_ops")):
            out[key] = sum(activity.total(x.name, counter) for x in layers) / n
        return out


class MembraneUpdates(WorkloadMetric):
    name = "MembraneUpdates"
    unit = "updates per utterance"
    definition = "neurons x steps (populations and the Sigma readout; each neuron's state is updated every step); mean per utterance"

    def __call__(self, graph: ChipGraph, activity: ActivityCollector) -> float:
        n = max(len(activity.utterances), 1)
        return sum(activity.total(x.name, "membrane_updates") for x in [*graph.populations, *graph.accumulators]) / n


STATIC_METRICS: tuple[type[StaticMetric], ...] = (Footprint, ParameterCount, ConnectionSparsity)
WORKLOAD_METRICS: tuple[type[WorkloadMetric], ...] = (ActivationSparsity, SynapticOperations, MembraneUpdates)


def compute_metrics(graph: ChipGraph, activity: ActivityCollector) -> dict[str, dict]:
    """``{name: {"value", "unit", "definition"}}`` for every static and workload metric."""
    out = {}
    for cls in STATIC_METRICS:
        out[cls.name] = dict(value=cls()(graph), unit=cls.unit, definition=cls.definition)
    for cls in WORKLOAD_METRICS:
        out[cls.name] = dict(value=cls()(graph, activity), unit=cls.unit, definition=cls.definition)
    return out
