"""The simulator's fast paths (sparse products, float shifts, streamed runs) equal the plain int64 arithmetic
they replace, including the regime where Lava's int32 registers wrap."""

import numpy as np
import pytest

from ptsnn.chip import synapses
from ptsnn.chip.ir import Accumulator, ChipGraph, CubaPopulation, HostInput, Synapses
from ptsnn.chip.simulator import simulate, simulate_batches, simulate_stream
from ptsnn.numerics import loihi


def int64_product(s, w):
    return np.asarray(s, np.int64).reshape(-1, s.shape[-1]) @ np.asarray(w, np.int64).T


def one_to_one(n_out, n_in, rng, scale=100):
    w = np.zeros((n_out, n_in), np.int64)
    w[np.arange(n_out), rng.integers(0, n_in, n_out)] = rng.integers(-scale, scale + 1, n_out)
    return w


@pytest.mark.parametrize("case", ["dense", "gather", "active_columns", "sparse_weights", "float64_bound"])
def test_every_product_path_is_exact(case, monkeypatch):
    rng = np.random.default_rng(3)
    binary = case in ("gather", "active_columns")
    # shapes where the cost model picks the path under test: wide layers with sparse wiring or activity
    rows, n_in, n_out = (3000, 400, 512) if binary else (3000, 96, 40)
    w = rng.integers(-127, 128, (n_out, n_in))
    if case == "gather":
        w = one_to_one(n_out, n_in, rng)
    if case == "sparse_weights":
        w = np.where(rng.random(w.shape) < 0.03, w, 0)
    if case == "float64_bound":  # sums beyond float32's exact range: float64 must be chosen
        w = rng.integers(-(1 << 20), 1 << 20, (n_out, n_in))
    s = (rng.random((rows, n_in)) < 0.01).astype(np.int64) if binary else rng.integers(-31, 32, (rows, n_in))
    if case == "dense":
        monkeypatch.setattr(synapses, "_SPARSE_MIN_ROWS", 10**9)
    chosen = []
    for fn in ("_gather_rows", "_sum_active_columns"):
        orig = getattr(synapses, fn)
        monkeypatch.setattr(synapses, fn, lambda *a, _o=orig, _n=fn: chosen.append(_n) or _o(*a))
    got = synapses.matmul_exact(s.astype(np.float32), w, binary=binary)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, int64_product(s, w))
    want_path = {"gather": ["_gather_rows"], "active_columns": ["_sum_active_columns"]}.get(case, [])
    assert chosen == want_path


def reference_dense_input(w, weight_exp, delays, s, graded):
    """Lava's Dense/DelayDense step by step in int64 (no BLAS, no float): what ``dense_input`` replaces."""
    steps = s.shape[0]
    a_in = np.zeros((steps, *s.shape[1:-1], w.shape[0]), np.int64)
    x = s if graded else (s != 0).astype(np.int64)
    d_all = np.zeros_like(w) if delays is None else delays
    for t in range(steps - 1):
        for d in np.unique(d_all):
            if t + 1 + d >= steps:
                continue
            acc = x[t] @ np.where(d_all == d, w, 0).T
            a_in[t + 1 + d] += loihi.dense_output(acc, weight_exp, graded, delayed=delays is not None)
    return loihi.wrap_int32(a_in)


@pytest.mark.parametrize("regime", ["safe", "safe_negative_exp", "wraps"])
@pytest.mark.parametrize("delay_kind", ["none", "per_input", "per_output", "per_synapse"])
def test_dense_input_fast_paths_equal_step_by_step_reference(regime, delay_kind):
    rng = np.random.default_rng(len(regime) + len(delay_kind))
    steps, batch, n_in, n_out = 30, 80, 64, 24  # 2,320 rows: the sparse paths are taken
    w = rng.integers(-127, 128, (n_out, n_in)) if regime != "wraps" else rng.integers(-(1 << 28), 1 << 28, (n_out, n_in))
    weight_exp = {"safe": 1, "safe_negative_exp": -3, "wraps": 2}[regime]
    s = (rng.random((steps, batch, n_in)) < 0.07).astype(np.int64)
    delays = {"none": None, "per_input": np.broadcast_to(rng.integers(0, 3, n_in), w.shape).copy(),
              "per_output": np.broadcast_to(rng.integers(0, steps + 2, n_out)[:, None], w.shape).copy(),
              "per_synapse": rng.integers(0, 3, w.shape)}[delay_kind]  # per_output: axonal, some beyond the run
    got = synapses.dense_input(w, weight_exp, delays, s, graded=False)
    want = reference_dense_input(w, weight_exp, delays, s, graded=False)
    np.testing.assert_array_equal(got, want)
    if regime == "wraps":  # the channel really wraps here: int32 arithmetic differs from the exact sums
        exact = reference_dense_input(w, 0, delays, s, False) * 2**weight_exp
        assert np.any(got != exact) and np.abs(exact).max() >= 2**31


def small_graph(rng):
    w_in = rng.integers(-60, 61, (48, 32))
    w_rec = np.where(rng.random((48, 48)) < 0.5, rng.integers(-40, 41, (48, 48)), 0)
    w_one = one_to_one(16, 48, rng, scale=127)
    pops = [CubaPopulation("a", 48, 1024, 256, 300, rng.integers(-50, 50, 48)),
            CubaPopulation("b", 48, 4096, 128, 200, np.zeros(48, np.int64)),
            CubaPopulation("c", 16, 4096, 0, 60, np.zeros(16, np.int64))]
    syns = [Synapses("in->a", "input", "a", w_in, np.zeros_like(w_in)),
            Synapses("a->b", "a", "b", w_rec, rng.integers(0, 3, w_rec.shape)),
            Synapses("b->c", "b", "c", w_one, np.zeros_like(w_one)),
            Synapses("c->readout", "c", "readout", rng.integers(-9, 10, (3, 16)), np.zeros((3, 16), np.int64))]
    return ChipGraph([HostInput("input", 32, message_bits=6, levels=31)], pops, [Accumulator("readout", 3, 4)],
                     syns, flush_steps=3)


def test_streamed_counts_and_readouts_equal_the_full_run():
    rng = np.random.default_rng(0)
    g = small_graph(rng)
    payloads = [rng.integers(-31, 32, (int(n), 32)) for n in rng.integers(20, 90, 70)]
    steps = np.array([len(p) + g.flush_steps for p in payloads])
    batch = np.zeros((len(payloads), steps.max(), 32), np.int64)
    for i, p in enumerate(payloads):
        batch[i, : len(p)] = p
    full = simulate(g, batch)
    streamed = simulate_stream(g, iter(payloads), batch_size=16)  # a generator: several batches
    np.testing.assert_array_equal(streamed.steps, steps)
    np.testing.assert_array_equal(streamed.readouts["readout"], full.readout("readout", steps))
    for pop in g.populations:
        want = np.stack([full.spikes[pop.name][i, :s].sum(0) for i, s in enumerate(steps)])
        assert want.sum() > 0
        np.testing.assert_array_equal(streamed.spike_counts[pop.name], want)
    # batches keep exactly the per-utterance spikes of the unbatched run
    s0, run0 = next(simulate_batches(g, payloads, batch_size=5))
    for i, s in enumerate(s0):
        for pop in g.populations:
            np.testing.assert_array_equal(run0.spikes[pop.name][i, :s], full.spikes[pop.name][i, :s])


@pytest.mark.parametrize("decays", [(1024, 1024), (4096, 512), (2048, 2048)])
def test_cuba_fast_path_skips_resting_steps_exactly(decays, monkeypatch):
    """Bursts of input separated by long silent gaps (as in NTIDIGITS): the fast path skips steps where the
    population rests (u = v = 0, no bias, no input) and still equals the int32 reference, voltages included."""
    from ptsnn.chip import kernels

    rng = np.random.default_rng(sum(decays))
    steps, n = 1800, 30
    a_in = np.zeros((steps, 2, n), np.int64)
    for start in range(0, steps, 300):
        a_in[start:start + 5] = rng.integers(-900, 1800, (5, 2, n))
    p = loihi.CubaParams(du=decays[0] - 1 if decays[0] else 0, dv=decays[1], vth=400, bias_mant=0)
    calls = []
    step = kernels.CubaFast.step
    monkeypatch.setattr(kernels.CubaFast, "step", lambda self, a, o: calls.append(1) or step(self, a, o))
    fast_s, fast_v = kernels.run_cuba(a_in, p, record_voltage=True, path="fast")
    ref_s, ref_v = kernels.run_cuba(a_in, p, record_voltage=True, path="reference")
    np.testing.assert_array_equal(fast_s, ref_s)
    np.testing.assert_array_equal(fast_v, ref_v)
    assert ref_s.any() and len(calls) < steps // 2  # it spiked, and most silent steps were skipped
