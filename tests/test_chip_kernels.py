"""The chip core's neuron kernels: one exact reference per neuron type, its fast path proven equal, both
compared with Lava 0.10's own fixed_pt process models, driven through wrap and saturation."""

import numpy as np
import pytest

from ptsnn.chip import kernels
from ptsnn.chip.ir import ChipGraph, CubaPopulation, FireOncePopulation, HostInput, Synapses
from ptsnn.chip.simulator import simulate
from ptsnn.numerics import loihi


def lava_lif(a_in: np.ndarray, du: int, dv: int, vth: int, bias, feedback: int = 0):
    """Lava's ``PyLifModelBitAcc`` stepped as its ``run_spk`` does (ports aside). ``feedback``: what a Dense
    self-connection delivers into ``a_in`` the step after a spike (summed in the int32 port, as Lava sums
    the channels of one InPort). Returns spikes, voltages after reset and currents, ``[T, N]``."""
    from ptsnn import compat

    compat.apply()
    from lava.proc.lif.models import PyLifModelBitAcc

    m = PyLifModelBitAcc({})
    n = a_in.shape[1]
    m.u, m.v = np.zeros(n, np.int32), np.zeros(n, np.int32)
    m.du, m.dv, m.vth = du, dv, vth
    m.bias_mant = np.broadcast_to(np.asarray(bias, np.int32), (n,)).astype(np.int16)
    m.bias_exp = np.full(n, 6, np.int16)
    spikes, volts, currents = (np.zeros(a_in.shape, t) for t in (bool, np.int64, np.int64))
    fb = np.zeros(n, np.int64)
    with np.errstate(over="ignore"):
        for t in range(a_in.shape[0]):
            m.scale_bias()
            if not m.isthrscaled:
                m.scale_threshold()
            a = (np.asarray(a_in[t], np.int64) + fb).astype(np.int32)  # int32 channel/port (wraps)
            m.subthr_dynamics(activation_in=a)
            spikes[t] = m.spiking_activation()
            m.reset_voltage(spikes[t])
            volts[t], currents[t] = m.v, m.u
            fb = spikes[t].astype(np.int64) * feedback
    return spikes, volts, currents


REGIMES = {  # name: (i_decay, v_decay, vth, input range)
    "plain": (1024, 512, 200, (-300, 400)),
    "no_current_decay_wraps": (0, 4096, 100000, (2000, 60000)),
    "saturating_voltage": (4096, 0, 131071, (-30000, 60000)),
    "input_2_24": (1024, 512, 200, (-(1 << 24), 1 << 24)),  # the probe: int64 and int32 kernels disagreed
    "input_2_26": (2048, 128, 5000, (-(1 << 26), 1 << 26)),
    "input_beyond_int32": (2048, 0, 900, (-(1 << 33), 1 << 33)),  # the channel itself wraps to int32
}


@pytest.mark.parametrize("regime", sorted(REGIMES))
def test_cuba_reference_and_run_equal_lavas_model_spikes_and_voltages(regime):
    i_decay, v_decay, vth, (lo, hi) = REGIMES[regime]
    rng = np.random.default_rng(len(regime))
    a_in = rng.integers(lo, hi, (40, 40))
    bias = rng.integers(-4000, 4000, 40)
    want_s, want_v, _ = lava_lif(a_in, i_decay - 1, v_decay, vth, bias)
    p = loihi.CubaParams.from_netx(i_decay, v_decay, vth, bias)
    for path in ("reference", "auto"):
        s, v = kernels.run_cuba(a_in, p, record_voltage=True, path=path)
        assert np.array_equal(s, want_s), (regime, path)
        assert np.array_equal(v, want_v), (regime, path)  # the report's voltages: the same arithmetic
        assert np.array_equal(kernels.run_cuba(a_in, p, path=path), s)  # recording changes nothing
    assert 0 < want_s.sum() < want_s.size
    if regime.startswith("input_"):
        assert not kernels.fast_path_applies(a_in)  # auto really took the reference here
        with pytest.raises(ValueError, match="fast path"):
            kernels.run_cuba(a_in, p, path="fast")


def test_fast_path_equals_reference_wherever_it_applies():
    """The fast path's proof, checked: random parameters, inputs right up to |a_in << 6| < 2**23, long runs
    with no decay (u wraps) and saturating voltages; spikes and voltages identical, batched."""
    rng = np.random.default_rng(7)
    limit = (loihi.STATE_LIMIT >> loihi.ACTIVATION_SHIFT) - 1
    checked_wrap = checked_clip = 0
    for trial in range(30):
        i_decay = int(rng.choice([0, 1, 7, 1024, 4095, 4096]))
        v_decay = int(rng.choice([0, 1, 300, 2048, 4096]))
        scale = int(rng.choice([50, 5000, limit]))
        a_in = rng.integers(-scale, scale + 1, (120, 3, 9))
        if trial % 3 == 0:
            a_in = np.abs(a_in)  # steady drive: wraps u when nothing decays
        p = loihi.CubaParams.from_netx(i_decay, v_decay, int(rng.integers(0, 2**17)), rng.integers(-4095, 4096, 9))
        assert kernels.fast_path_applies(a_in)
        fs, fv = kernels.run_cuba(a_in, p, record_voltage=True, path="fast")
        rs, rv = kernels.run_cuba(a_in, p, record_voltage=True, path="reference")
        assert np.array_equal(fs, rs) and np.array_equal(fv, rv), trial
        checked_clip += int(np.any(np.abs(rv) == loihi.STATE_LIMIT - 1))
        checked_wrap += int(i_decay == 0 and np.abs(np.cumsum(a_in.astype(np.int64) << 6, 0)).max() > 2**23)
    assert checked_wrap and checked_clip  # the regimes the proof is about were really exercised


@pytest.mark.parametrize("path", ["reference", "fast"])
def test_fire_once_equals_lava_lif_with_a_self_inhibiting_synapse(path):
    rng = np.random.default_rng(3)
    n, steps = 30, 60
    ramp = rng.integers(0, 40, n)  # persistent currents: each neuron ramps up at its own slope
    a_in = np.zeros((steps, n), np.int64)
    a_in[0] = ramp
    a_in[25] = 20  # a later push: fired neurons must not fire again
    pop = FireOncePopulation("ttfs", n, i_decay=0, v_decay=0, vth=600, bias=np.zeros(n, np.int64))
    want_s, want_v, _ = lava_lif(a_in, -1, 0, pop.vth, 0, feedback=pop.inhibition())
    s, v = kernels.run_fire_once(a_in, pop.params(), pop.inhibition(), record_voltage=True, path=path)
    assert np.array_equal(s, want_s) and np.array_equal(v, want_v)
    per_neuron = s.sum(0)
    assert per_neuron.max() == 1 and per_neuron.sum() > n // 2  # at most one spike each; most fire
    first = s.argmax(0)[per_neuron == 1]
    assert len(set(first.tolist())) > 3  # spike times spread with the slopes: a time code


def test_simulator_report_and_run_agree_in_the_overflow_regime():
    """The report path (voltages recorded) and the run path give the same spikes even where |a_in| >= 2**24."""
    rng = np.random.default_rng(1)
    n_in = 700
    w = np.full((20, n_in), 254)
    w[10:15] = -256
    graph = ChipGraph([HostInput("in", n_in, 0)],
                      [FireOncePopulation("a", 20, 0, 0, 1000, np.zeros(20, np.int64), inhibit_exp=7)],
                      [], [Synapses("in->a", "in", "a", w, np.zeros_like(w), weight_exp=7)])
    cuba = ChipGraph(graph.inputs, [CubaPopulation("a", 20, 2048, 512, 7000, np.zeros(20, np.int64))], [],
                     graph.synapses)
    spikes_in = (rng.random((2, 50, n_in)) < 0.8).astype(np.int64)
    for g in (graph, cuba):
        plain = simulate(g, spikes_in, record_peak_input=True)
        rec = simulate(g, spikes_in, record_voltage=True)
        assert plain.peak_input["a"] >= 2**24
        assert np.array_equal(plain.spikes["a"], rec.spikes["a"]) and rec.voltages["a"].shape == (2, 50, 20)
