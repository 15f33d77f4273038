"""Where a CUBA population's 24-bit state registers leave their range.

Lava's ``fixed_pt`` LIF (and Loihi) do not fail on overflow: the current ``u`` wraps once modulo 2**24 and
the voltage ``v`` saturates at +-(2**23 - 1) (:mod:`ptsnn.numerics.loihi`). The fast simulator reproduces
that, so a bundle whose state overflows still verifies "exact" while computing something the float model
never meant. This replays the same arithmetic and reports the first (step, neuron) where a register would
have left its range, so verification can name the layer and the step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ptsnn.numerics import loihi


@dataclass(frozen=True)
class StateOverflow:
    register: str  # "current" (wraps) or "voltage" (saturates)
    sample: int
    step: int
    neuron: int
    value: int  # the value before the wrap / clip


def first_state_overflow(a_in: np.ndarray, p: loihi.CubaParams) -> StateOverflow | None:
    """``a_in`` ``[B, T, N]`` integer synaptic input; the earliest step at which any sample's ``u`` or ``v``
    leaves the 24-bit range (ties: lowest sample, then neuron; current before voltage)."""
    a_in = np.asarray(a_in, np.int64)
    if a_in.ndim == 2:
        a_in = a_in[None]
    batch, steps, n = a_in.shape
    u = np.zeros((batch, n), np.int64)
    v = np.zeros((batch, n), np.int64)
    bias = loihi.effective_bias(p.bias_mant, p.bias_exp)
    lim = loihi.STATE_LIMIT
    th = np.int64(p.vth) << loihi.THRESHOLD_SHIFT
    for t in range(steps):
        raw_u = loihi.decay(u, p.du + loihi.CURRENT_DECAY_OFFSET) + (a_in[:, t] << loihi.ACTIVATION_SHIFT)
        bad = (raw_u > lim) | (raw_u <= -lim)
        if bad.any():
            b, i = np.argwhere(bad)[0]
            return StateOverflow("current", int(b), t, int(i), int(raw_u[b, i]))
        u = raw_u
        raw_v = loihi.decay(v, p.dv + loihi.VOLTAGE_DECAY_OFFSET) + u + bias
        bad = (raw_v > lim - 1) | (raw_v < -lim + 1)
        if bad.any():
            b, i = np.argwhere(bad)[0]
            return StateOverflow("voltage", int(b), t, int(i), int(raw_v[b, i]))
        v = np.where(raw_v > th, 0, raw_v)
    return None
