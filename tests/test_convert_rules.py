"""Every design rule, violated on purpose: the message names the layer, the limit, the value and a fix."""

import numpy as np
import pytest

from ptsnn.convert import design_rules
from ptsnn.chip.ir import ChipGraph, CubaPopulation, HostInput, Synapses
from ptsnn.errors import DesignRuleError
from ptsnn.hw_profiles import load_profile, parse_profile
from importlib import resources


def loihi2_with(**replace) -> object:
    """The built-in loihi2 profile text with some `key = { value = X` numbers replaced."""
    text = resources.files("ptsnn.hw_profiles").joinpath("loihi2.toml").read_text()
    for key, value in replace.items():
        lines = text.splitlines()
        for i, line in enumerate(lines):
            if line.startswith(f"{key} = {{ value = "):
                rest = line.split(",", 1)[1]
                lines[i] = f"{key} = {{ value = {value},{rest}"
                break
        else:  # field absent from loihi2: add it to [structure]
            lines.insert(lines.index("[structure]") + 1, f'{key} = {{ value = {value}, source = "test", proxy = true }}')
        text = "\n".join(lines) + "\n"
    return parse_profile(text, "test.toml")


def graph(size=4, inputs=3, weight=2, delay=0, vth=10, bias=0, v_decay=100, message_bits=0, hidden=None):
    hidden = hidden or size
    pop = CubaPopulation("layer1", hidden, 4096, v_decay, vth, np.full(hidden, bias))
    w = np.full((hidden, inputs), weight)
    syn = Synapses("in->layer1", "in", "layer1", w, np.full((hidden, inputs), delay))
    return ChipGraph([HostInput("in", inputs, message_bits, 7)], [pop], [], [syn])


def only(violations, rule):
    found = [v for v in violations if v.rule == rule]
    assert found, f"rule {rule} did not fire: {violations}"
    return found[0]


def test_clean_graph_passes_loihi2():
    assert design_rules.check(graph(), load_profile("loihi2")) == []


def test_graded_input_on_binary_chip():
    v = only(design_rules.check(graph(message_bits=6), load_profile("loihi1")), "graded_input")
    assert v.layer == "in" and "graded_spike_bits" in v.limit and "6 bits" in v.value and "loihi2" in v.fix


def test_weight_bits():
    v = only(design_rules.check(graph(weight=100), loihi2_with(weight_bits=6)), "weight_bits")
    assert v.layer == "layer1" and "-64..62" in v.limit and "100..100" in v.value


def test_max_delay():
    v = only(design_rules.check(graph(delay=5), loihi2_with(max_delay_steps=3)), "max_delay")
    assert "3 steps" in v.limit and "delay 5" in v.value and "shift" in v.fix


def test_threshold_bias_and_decay_formats():
    p = loihi2_with(threshold_bits=8, bias_bits=4, decay_max=50)
    vs = design_rules.check(graph(vth=300, bias=20, v_decay=100), p)
    assert "threshold mantissa 300" in only(vs, "threshold_bits").value
    assert "bias mantissa 20" in only(vs, "bias_bits").value
    decays = {v.value for v in vs if v.rule == "decay_bits"}
    assert decays == {"voltage decay register 100", "current decay register 4095"}


def test_state_overflow_needs_calibration_peaks():
    p = load_profile("loihi2")
    assert not [v for v in design_rules.check(graph(), p) if v.rule == "state_overflow"]
    v = only(design_rules.check(graph(), p, max_synaptic_input={"layer1": 200_000}), "state_overflow")
    assert "12,800,000" in v.value and "8,388,607" in v.limit and "input_bits" in v.fix


def test_fan_in_and_fan_out():
    vs = design_rules.check(graph(inputs=10), loihi2_with(max_fan_in_per_neuron=8, max_fan_out_per_neuron=2))
    assert "fan-in 10" in only(vs, "fan_in").value
    assert "fan-out 4" in only(vs, "fan_out").value
    v = only(design_rules.check(graph(inputs=50), loihi2_with(max_fan_in_per_core=40)), "fan_in_core")
    assert "50 distinct input axons" in v.value


def test_capacity_names_the_largest_layer_and_enforce_is_one_line():
    p = loihi2_with(neurons_per_core=100, cores_per_chip=2)
    vs = design_rules.check(graph(hidden=9216, inputs=2, weight=2), p)
    v = only(vs, "capacity")
    assert v.layer == "layer1" and "9,216 neurons" in v.value and "100 per core" in v.limit and "reduce width" in v.fix
    with pytest.raises(DesignRuleError) as err:
        design_rules.enforce(vs, "tiny")
    assert "\n" not in str(err.value) and str(err.value).startswith("tiny: layer layer1")


def test_core_allocation_counts_neurons_and_memory():
    p = loihi2_with(neurons_per_core=3, synapse_memory_bytes_per_core=20)
    (alloc,) = design_rules.allocate_cores(graph(size=7, inputs=4), p)
    assert alloc.cores_for_neurons == 3  # ceil(7 / 3)
    assert alloc.synapses == 28 and alloc.synapse_bytes == 28 * 2 and alloc.cores_for_memory == 3


def test_estimate_profile_has_no_structure_rules():
    assert design_rules.check(graph(weight=100, delay=9), load_profile("cmos45nm")) == []

