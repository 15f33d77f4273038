"""24-bit state overflow: named with its layer and step at conversion (calibration) and in verification."""

from __future__ import annotations

import numpy as np

from ptsnn.chip.ir import Accumulator, ChipGraph, CubaPopulation, HostInput, Synapses
from ptsnn.numerics import loihi
from ptsnn.numerics.overflow import first_state_overflow


def hot_graph(weight: int = 250) -> ChipGraph:
    """3 graded inputs -> 2 CUBA neurons with (almost) no current decay and an unreachable threshold: a
    constant input makes the current grow by |a_in << 6| per step until it leaves 24 bits."""
    w = np.full((2, 3), weight, np.int64)
    return ChipGraph([HostInput("in", 3, 8, levels=127)],
                     [CubaPopulation("hot", 2, i_decay=1, v_decay=0, vth=2**17 - 1, bias=np.zeros(2))],
                     [Accumulator("ro", 2)],
                     [Synapses("in->hot", "in", "hot", w, np.zeros_like(w)),
                      Synapses("hot->ro", "hot", "ro", np.eye(2, dtype=np.int64), np.zeros((2, 2), np.int64))])


def payload(steps: int = 12, start: int = 4) -> np.ndarray:
    p = np.zeros((steps, 3), np.int64)
    p[start:] = 127  # a_in << 6 = 3 * 250 * 127 * 64 = 6,096,000 per step (one step after the payload)
    return p


def test_replay_finds_the_first_wrap_of_the_current():
    a_in = np.zeros((1, 10, 1), np.int64)
    a_in[0, 2:] = 6_096_000 >> 6
    hit = first_state_overflow(a_in, loihi.CubaParams(du=0, dv=0, vth=2**17 - 1))
    # u: 6.096e6 at step 2, 6.096e6 * 4095/4096 + 6.096e6 > 2**23 at step 3
    assert (hit.register, hit.step, hit.neuron) == ("current", 3, 0) and hit.value > loihi.STATE_LIMIT
    assert first_state_overflow(a_in[:, :3], loihi.CubaParams(du=0, dv=0, vth=2**17 - 1)) is None


def test_voltage_saturation_is_found_when_the_current_stays_in_range():
    a_in = np.full((1, 40, 1), (loihi.STATE_LIMIT // 2) >> 6, np.int64)  # u settles below 2**23 with fast decay
    hit = first_state_overflow(a_in, loihi.CubaParams(du=4095, dv=0, vth=2**17 - 1))
    assert hit is not None and hit.register == "voltage"


def test_conversion_rule_names_layer_and_step():
    from ptsnn.convert import design_rules
    from ptsnn.convert.calibration import state_overflows
    from ptsnn.hw_profiles import load_profile

    graph = hot_graph()
    found = state_overflows(graph, payload()[None])
    assert found["hot"]["step"] == 6 and found["hot"]["register"] == "current"
    violations = [v for v in design_rules.check(graph, load_profile("loihi2"), state_overflow=found)
                  if v.rule == "state_overflow"]
    assert len(violations) == 1 and violations[0].layer == "hot"
    assert "at step 6" in violations[0].message() and "8,388,607" in violations[0].message()
    assert state_overflows(hot_graph(weight=10), payload()[None]) == {}


def test_verification_reports_layer_utterance_and_step():
    from ptsnn.chip.simulator import simulate
    from ptsnn.deploy.verify import state_overflows

    graph = hot_graph()
    p = payload()
    run = simulate(graph, p[None])
    found = state_overflows(graph, [p], [dict(steps=12, spikes={"hot": run.spikes["hot"][0]})], ["utt"])
    assert [(o.layer, o.utterance, o.step, o.register) for o in found] == [("hot", "utt", 6, "current")]
    quiet = state_overflows(graph, [np.zeros((12, 3), np.int64)],
                            [dict(steps=12, spikes={"hot": np.zeros((12, 2), bool)})], ["quiet"])
    assert quiet == []
