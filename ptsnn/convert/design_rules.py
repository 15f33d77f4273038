"""Design-rule checks of a chip IR against a hardware profile, and core allocation.

In the manner of Rockpool's Xylo mapper: a list of small rule functions, each returning the violations it
finds; a violation names the layer, the limit (with the profile field), the value and a fix. A profile
field that is absent means "no limit" and its rule is skipped.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from ptsnn.chip.ir import ChipGraph, CubaPopulation
from ptsnn.errors import DesignRuleError


@dataclass(frozen=True)
class Violation:
    rule: str
    layer: str
    limit: str  # "<number> (<profile field>)"
    value: str
    fix: str

    def message(self) -> str:
        return f"layer {self.layer}: {self.value} > {self.limit}; {self.fix}"


@dataclass(frozen=True)
class CoreAllocation:
    layer: str
    neurons: int
    synapses: int
    synapse_bytes: int
    cores_for_neurons: int
    cores_for_memory: int

    @property
    def cores(self) -> int:
        return max(self.cores_for_neurons, self.cores_for_memory)


def _v(profile, path):
    return profile.value(path)


def bytes_per_synapse(profile, delayed: bool) -> int:
    """Estimate: weight mantissa bits (+ delay bits when the edge has delays) rounded up to bytes, plus one byte
    of index/overhead per synapse. Loihi's real synapse encodings vary; this is a documented estimate."""
    bits = int(_v(profile, "numerics.weight_bits") or 8) + (int(_v(profile, "numerics.delay_bits") or 0) if delayed else 0)
    return math.ceil(bits / 8) + 1


def allocate_cores(graph: ChipGraph, profile) -> list[CoreAllocation]:
    """Cores each population needs: enough for its neurons and for the memory of its incoming synapses."""
    npc = _v(profile, "structure.neurons_per_core")
    mem = _v(profile, "structure.synapse_memory_bytes_per_core")
    rows = []
    for pop in [*graph.populations, *graph.accumulators]:
        edges = graph.incoming(pop.name)
        syn = sum(e.count() for e in edges)
        nbytes = sum(e.count() * bytes_per_synapse(profile, e.max_delay > 0) for e in edges)
        rows.append(CoreAllocation(pop.name, pop.size, syn, nbytes,
                                   math.ceil(pop.size / npc) if npc else 0, math.ceil(nbytes / mem) if mem else 0))
    return rows


# ------------------------------------------------------------------------------------------------- rules
def rule_graded_input(graph, profile, **_):
    bits = _v(profile, "numerics.graded_spike_bits")
    if bits is None:
        return []
    return [Violation("graded_input", i.name, f"{bits} payload bits (numerics.graded_spike_bits)",
                      f"graded input of {i.message_bits} bits",
                      "choose a target with graded spikes (loihi2) or rate-code the input")
            for i in graph.inputs if i.message_bits > bits]


def rule_weight_bits(graph, profile, **_):
    bits = _v(profile, "numerics.weight_bits")
    if bits is None:
        return []
    lo, hi = -(2 ** int(bits)), 2 ** int(bits) - 2
    out = []
    for e in graph.synapses:
        if e.weight.size and (e.weight.min() < lo or e.weight.max() > hi):
            out.append(Violation("weight_bits", e.target, f"{lo}..{hi} ({int(bits)}-bit mantissa, numerics.weight_bits)",
                                 f"weights {int(e.weight.min())}..{int(e.weight.max())} on {e.name}",
                                 "requantize for this profile (smaller weight scale)"))
    return out


def rule_delay(graph, profile, **_):
    limit = _v(profile, "structure.max_delay_steps")
    if limit is None:
        return []
    return [Violation("max_delay", e.target, f"{int(limit)} steps (structure.max_delay_steps)",
                      f"synaptic delay {e.max_delay} steps on {e.name}",
                      "use a target with synaptic delays or remove temporal shifts (model.shift_div)")
            for e in graph.synapses if e.max_delay > limit]


def rule_neuron_formats(graph, profile, **_):
    out = []
    th_bits, bias_bits = _v(profile, "numerics.threshold_bits"), _v(profile, "numerics.bias_bits")
    decay_max = _v(profile, "numerics.decay_max")
    for p in graph.populations:
        if th_bits is not None and p.vth >= 2 ** int(th_bits):
            out.append(Violation("threshold_bits", p.name, f"{2 ** int(th_bits) - 1} (numerics.threshold_bits)",
                                 f"threshold mantissa {p.vth}", "lower the population's weight exponent"))
        if bias_bits is not None and p.bias.size and np.abs(p.bias).max() > 2 ** (int(bias_bits) - 1) - 1:
            out.append(Violation("bias_bits", p.name, f"{2 ** (int(bias_bits) - 1) - 1} (numerics.bias_bits)",
                                 f"bias mantissa {int(np.abs(p.bias).max())}", "regularise the bias or lower the exponent"))
        if decay_max is not None and isinstance(p, CubaPopulation):
            for label, reg in (("current decay register", p.i_decay - 1), ("voltage decay register", p.v_decay)):
                if reg > decay_max:
                    out.append(Violation("decay_bits", p.name, f"{int(decay_max)} (numerics.decay_max)",
                                         f"{label} {reg}", "clamp the decay to the register range"))
    return out


def rule_state_overflow(graph, profile, max_synaptic_input: dict[str, int] | None = None, **_):
    """24-bit current estimate on calibration data: |a_in << 6| must stay inside the current register."""
    bits = _v(profile, "numerics.current_bits")
    if bits is None or not max_synaptic_input:
        return []
    limit = 2 ** (int(bits) - 1) - 1
    return [Violation("state_overflow", name, f"{limit:,} ({int(bits)}-bit current, numerics.current_bits)",
                      f"synaptic current |u| = {a * 64:,} on calibration data",
                      "lower model.input_bits or xi, or the population's weight scale")
            for name, a in max_synaptic_input.items() if a * 64 > limit]


def rule_fan(graph, profile, **_):
    out = []
    lim_in, lim_out = _v(profile, "structure.max_fan_in_per_neuron"), _v(profile, "structure.max_fan_out_per_neuron")
    core_in = _v(profile, "structure.max_fan_in_per_core")
    for node in [*graph.populations, *graph.accumulators]:
        edges = graph.incoming(node.name)
        per_neuron = sum(e.fan_in() for e in edges)
        axons = sum(int((e.fan_out() > 0).sum()) for e in edges)
        if lim_in is not None and per_neuron.max(initial=0) > lim_in:
            out.append(Violation("fan_in", node.name, f"{int(lim_in)} (structure.max_fan_in_per_neuron)",
                                 f"fan-in {int(per_neuron.max())} synapses per neuron", "prune or narrow the input layer"))
        if core_in is not None and axons > core_in:
            out.append(Violation("fan_in_core", node.name, f"{int(core_in)} axons (structure.max_fan_in_per_core)",
                                 f"{axons} distinct input axons", "reduce the widths feeding this layer"))
    for node in [*graph.inputs, *graph.populations]:
        edges = graph.outgoing(node.name)
        if lim_out is not None and edges:
            per_neuron = sum(e.fan_out() for e in edges)
            if per_neuron.max(initial=0) > lim_out:
                out.append(Violation("fan_out", node.name, f"{int(lim_out)} (structure.max_fan_out_per_neuron)",
                                     f"fan-out {int(per_neuron.max())} synapses per neuron", "prune or narrow the next layer"))
    return out


def rule_capacity(graph, profile, allocation: list[CoreAllocation] | None = None, **_):
    out = []
    chips = _v(profile, "structure.chips") or 1
    cores = _v(profile, "structure.cores_per_chip")
    npc = _v(profile, "structure.neurons_per_core")
    allocation = allocation or allocate_cores(graph, profile)
    if cores is not None:
        total = sum(a.cores for a in allocation)
        capacity = int(cores * chips)
        if total > capacity:
            worst = max(allocation, key=lambda a: a.cores)
            out.append(Violation("capacity", worst.layer,
                                 f"{npc:,} per core × {capacity} cores (structure.neurons_per_core, cores_per_chip × chips)"
                                 if npc else f"{capacity} cores", f"{worst.neurons:,} neurons, {total} cores needed in all",
                                 f"split across chips (structure.chips) or reduce width; largest layer {worst.layer} "
                                 f"takes {worst.cores} cores"))
    npchip = _v(profile, "structure.neurons_per_chip")
    neurons = sum(p.size for p in [*graph.populations, *graph.accumulators])
    if npchip is not None and neurons > npchip * chips:
        out.append(Violation("neurons_per_chip", "all", f"{int(npchip * chips):,} (structure.neurons_per_chip × chips)",
                             f"{neurons:,} neurons", "reduce widths or add chips"))
    spchip = _v(profile, "structure.synapses_per_chip")
    synapses = sum(e.count() for e in graph.synapses)
    if spchip is not None and synapses > spchip * chips:
        out.append(Violation("synapses_per_chip", "all", f"{int(spchip * chips):,} (structure.synapses_per_chip × chips)",
                             f"{synapses:,} synapses", "prune or reduce widths"))
    return out


def rule_state_replay(graph, profile, state_overflow: dict[str, dict] | None = None,
                      max_synaptic_input: dict[str, int] | None = None, **_):
    """The accumulated 24-bit registers, replayed on calibration data (``calibration.state_overflows``): a
    current that grows over steps wraps even when no single step's input does. Layers the one-step rule
    already names are not repeated."""
    bits = _v(profile, "numerics.current_bits")
    if bits is None or not state_overflow:
        return []
    limit = 2 ** (int(bits) - 1) - 1
    single = {n for n, a in (max_synaptic_input or {}).items() if a * 64 > limit}
    return [Violation("state_overflow", name, f"{limit:,} ({int(bits)}-bit {o['register']}, numerics.current_bits)",
                      f"{o['register']} {o['value']:,} at step {o['step']} (calibration sample {o['sample']}, "
                      f"neuron {o['neuron']})",
                      "lower model.input_bits or xi, or the population's weight scale or decay")
            for name, o in state_overflow.items() if name not in single]


from ptsnn.convert import ttfs_rules  # noqa: E402  (TTFS graphs only; each rule skips other graphs)

RULES = (rule_graded_input, rule_weight_bits, rule_delay, rule_neuron_formats, rule_state_overflow,
         rule_state_replay, rule_fan, rule_capacity, *ttfs_rules.RULES)


def check(graph: ChipGraph, profile, max_synaptic_input: dict[str, int] | None = None,
          allocation: list[CoreAllocation] | None = None,
          state_overflow: dict[str, dict] | None = None) -> list[Violation]:
    if getattr(profile.profile, "kind", "") == "estimate":
        return []  # an energy estimate (cmos45nm) has no structure to violate
    found: list[Violation] = []
    for rule in RULES:
        found += rule(graph, profile, max_synaptic_input=max_synaptic_input, allocation=allocation,
                      state_overflow=state_overflow)
    return found


def enforce(violations: list[Violation], profile_name: str) -> None:
    if violations:
        from collections import Counter

        rest = Counter(v.rule for v in violations[1:])
        more = (f" (and {len(violations) - 1} more: " + ", ".join(f"{r} x{n}" for r, n in sorted(rest.items())) + ")"
                if rest else "")
        raise DesignRuleError(f"{profile_name}: {violations[0].message()}{more}")


def violations_table(violations: list[Violation]) -> list[dict]:
    return [asdict(v) for v in violations]


__all__ = ["CoreAllocation", "Violation", "allocate_cores", "check", "enforce", "RULES", "CubaPopulation"]
