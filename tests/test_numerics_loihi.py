"""Loihi integer arithmetic, checked against hand-computed values (Lava fixed_pt semantics)."""

import numpy as np
import pytest

from ptsnn.chip import kernels
from ptsnn.numerics import loihi


def test_decay_rounds_toward_zero_not_down():
    # -5 * (4096-2048) / 4096 = -2.5: Loihi gives -2 (toward zero); floor would give -3
    assert loihi.decay(np.array([-5, 5]), 2048).tolist() == [-2, 2]
    assert loihi.decay(np.array([-7]), 4096).tolist() == [0]
    assert loihi.decay(np.array([1000]), 0).tolist() == [1000]


def test_current_wraps_and_voltage_saturates():
    lim = 2**23
    assert loihi.wrap_current(np.array([lim + 5, -lim - 5, lim, -lim + 1])).tolist() == [5 - lim, lim - 5, lim, -lim + 1]
    assert loihi.saturate_voltage(np.array([lim + 9, -lim - 9])).tolist() == [lim - 1, -lim + 1]


def _drive(kernel, a_in):
    """The reference takes a_in; the fast path takes a_in << 6 as float64."""
    a = np.asarray(a_in, np.int64)
    return kernels.cuba_input6(a).astype(np.float64) if isinstance(kernel, kernels.CubaFast) else a


def test_cuba_step_by_hand():
    # du register 4095 -> effective current decay 4096: u = a_in << 6 every step (no current memory)
    p = loihi.CubaParams(du=4095, dv=0, vth=1, bias_mant=0)
    for kernel in (kernels.CubaReference((1,), p), kernels.CubaFast((1,), p)):
        out = np.zeros(1, bool)
        kernel.step(_drive(kernel, [1]), out)
        assert not out[0]  # v = 64, threshold 1 << 6 = 64: not strictly above
        assert kernel.v.tolist() == [64]
        kernel.step(_drive(kernel, [1]), out)
        assert out[0]  # v = 128 > 64: spike, hard reset
        assert kernel.v.tolist() == [0]


def test_cuba_current_and_voltage_decay_by_hand():
    p = loihi.CubaParams(du=1023, dv=2048, vth=10_000, bias_mant=3, bias_exp=6)
    for kernel in (kernels.CubaReference((1,), p), kernels.CubaFast((1,), p)):
        out = np.zeros(1, bool)
        kernel.step(_drive(kernel, [10]), out)
        # u = 0 + 10*64 = 640; v = 0 + 640 + 3*64 = 832
        assert (kernel.u[0], kernel.v[0]) == (640, 832)
        kernel.step(_drive(kernel, [0]), out)
        # u = 640*(4096-1024)>>12 = 480; v = 832*2048>>12 + 480 + 192 = 416 + 672 = 1088
        assert (kernel.u[0], kernel.v[0]) == (480, 1088)


def test_netx_weights_are_lossless_within_8_bits():
    rng = np.random.default_rng(0)
    w = 2 * rng.integers(-128, 128, size=(7, 9))
    syn = loihi.netx_dense_weights(w)
    x = rng.integers(0, 2, size=9)
    assert loihi.shift_exp(syn.weights @ x, syn.weight_exp) == pytest.approx(w @ x)
    small = rng.integers(-20, 20, size=(4, 5))  # odd and small: netx scales up and shifts back down
    syn = loihi.netx_dense_weights(small)
    assert syn.weight_exp < 0
    assert (loihi.shift_exp(syn.weights @ np.ones(5, np.int64), syn.weight_exp) == small.sum(1)).all()


def test_netx_clips_mixed_weights_beyond_range():
    syn = loihi.netx_dense_weights(np.array([[300, -10]]))
    assert loihi.shift_exp(syn.weights @ np.array([1, 0]), syn.weight_exp).tolist() == [254]
