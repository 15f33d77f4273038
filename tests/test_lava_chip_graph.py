"""Any chip IR runs in Lava (fixed_pt) exactly as the chip simulator says: conv groups with asymmetric kernels
and strides (layouts), sum pooling into fire-once neurons, fire-once dense layers, several host inputs,
odd mixed-sign dense weights (netx's lossless exponent form), delays, graded input, an accumulator and a
voltage readout."""

import numpy as np
import pytest

from ptsnn.chip.ir import (
    Accumulator,
    ChipGraph,
    ConvSynapses,
    CubaPopulation,
    FireOncePopulation,
    HostInput,
    Synapses,
    sum_pool,
)
from ptsnn.chip.serialize import write_chip_graph
from ptsnn.chip.simulator import simulate

STEPS = 24


def graph() -> ChipGraph:
    rng = np.random.default_rng(5)
    conv_w = rng.integers(-6, 30, (4, 2, 3, 2))  # (out, in, kH=3, kW=2)
    zero = lambda n: np.zeros(n, np.int64)  # noqa: E731
    dense_w = rng.integers(-40, 60, (6, 12))  # odd and mixed: Lava's plain 8-bit Dense would truncate these
    dense_w[0, :3] = (249, -256, -27)  # large odd mixed values and -256: the builder splits the group by sign
    return ChipGraph(
        [HostInput("img", 2 * 6 * 5, 0), HostInput("timing", 2, 0), HostInput("g", 3, 8, levels=100)],
        [FireOncePopulation("c1", 4 * 6 * 2, 0, 0, 60, zero(48)),
         FireOncePopulation("p1", 4 * 3 * 1, 0, 0, 0, zero(12)),
         FireOncePopulation("d1", 6, 0, 0, 150, zero(6), inhibit_weight=-200, inhibit_exp=5),
         CubaPopulation("readout", 3, 0, 0, 2**17 - 1, zero(3), role="readout"),
         CubaPopulation("q", 5, 1024, 256, 300, rng.integers(-50, 50, 5))],
        [Accumulator("acc", 2)],
        [ConvSynapses("img->c1", "img", "c1", conv_w, (2, 6, 5), (4, 6, 2), stride=(1, 2), padding=(1, 0)),
         sum_pool("c1->p1", "c1", "p1", (4, 6, 2), 2),
         Synapses("p1->d1", "p1", "d1", dense_w, np.zeros_like(dense_w)),
         Synapses("timing->d1", "timing", "d1", np.array([[9, -4]] * 6) * np.arange(1, 7)[:, None] % 250,
                  np.zeros((6, 2), np.int64), weight_exp=2),
         Synapses("d1->readout", "d1", "readout", rng.integers(-120, 120, (3, 6)) * 2, np.zeros((3, 6), np.int64)),
         Synapses("g->q", "g", "q", rng.integers(-20, 20, (5, 3)) * 2, rng.integers(0, 4, (5, 3))),
         Synapses("q->acc", "q", "acc", rng.integers(-30, 30, (2, 5)) * 2, np.zeros((2, 5), np.int64))],
        flush_steps=0)


def payloads(rng):
    img = (rng.random((STEPS, 60)) < 0.25).astype(np.int64)
    timing = np.zeros((STEPS, 2), np.int64)
    timing[3, 0] = timing[9, 1] = 1
    g = rng.integers(-100, 101, (STEPS, 3))
    return {"img": img, "timing": timing, "g": g}


@pytest.mark.lava
def test_every_node_kind_runs_in_lava_exactly_as_the_simulator_says(tmp_path):
    from ptsnn.deploy import lava_runner

    g = graph()
    write_chip_graph(g, tmp_path)
    p = payloads(np.random.default_rng(0))
    fast = simulate(g, {k: v[None] for k, v in p.items()}, record_voltage=True)
    out = lava_runner.run_bundle(tmp_path, [p], [STEPS], timeout_s=300)[0]
    for pop in g.populations:
        lava_spikes = out[pop.name].T.astype(bool)
        assert np.array_equal(lava_spikes, fast.spikes[pop.name][0]), pop.name
        assert np.array_equal(out[f"v_final/{pop.name}"], fast.voltages[pop.name][0, -1]), pop.name
    assert np.array_equal(out["acc"].T, fast.accumulators["acc"][0])
    for name in ("c1", "p1", "d1"):  # the check means something: every kind fires, at most once each
        per_neuron = fast.spikes[name][0].sum(0)
        assert per_neuron.max() == 1 and per_neuron.sum() > 0, name
    assert fast.spikes["q"].any() and np.abs(fast.voltages["readout"][0, -1]).max() > 0
