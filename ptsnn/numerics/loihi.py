"""Loihi fixed-point arithmetic, exactly as lava-nc 0.10's ``fixed_pt`` process models compute it.

One place for every integer rule that the quantization-aware model, the fast simulator and the tests must
share. Sources (lava-nc 0.10): ``lava/proc/lif/models.py`` (``AbstractPyLifModelFixed``,
``PyLifModelBitAcc``), ``lava/proc/dense/models.py`` (``PyDenseModelBitAcc``, ``PyDelayDenseModelBitAcc``),
``lava/utils/weightutils.py`` and lava-dl 0.6's ``netx/utils.py`` (``optimize_weight_bits``).

These constants describe Lava's model of the chip (its register layout), not a hardware profile: the
profiles' numerics (``hw_profiles/loihi2.toml``) must agree with them and are checked against them.
All functions work on numpy int64 arrays of any shape, so they vectorise over batch and neurons.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STATE_BITS = 24  # u and v registers
STATE_LIMIT = 2 ** (STATE_BITS - 1)  # 2**23
DECAY_SHIFT = 12  # decays are 12-bit fractions of 4096
DECAY_UNITY = 2**DECAY_SHIFT
ACTIVATION_SHIFT = 6  # synaptic input is MSB-aligned by 6 bits before it enters u
THRESHOLD_SHIFT = 6  # so is the threshold mantissa
NETX_BIAS_EXP = 6  # lava-dl netx always builds CUBA neurons with bias_exp = 6
CURRENT_DECAY_OFFSET = 1  # Loihi's ds_offset: effective current decay = du + 1 (netx passes du = iDecay - 1)
VOLTAGE_DECAY_OFFSET = 0  # dm_offset
MAX_DELAY = 62  # netx clamps DelayDense delays to 62 (6-bit field, Loihi 2)


def decay(x: np.ndarray, decay_const) -> np.ndarray:
    """``sign(x) * ((|x| * (4096 - decay_const)) >> 12)``: Loihi's decay rounds toward zero."""
    x = np.asarray(x, dtype=np.int64)
    product = x * (DECAY_UNITY - np.asarray(decay_const, dtype=np.int64))
    return np.sign(product) * (np.abs(product) >> DECAY_SHIFT)


def wrap_current(u: np.ndarray) -> np.ndarray:
    """The current register wraps once modulo 2**24 (Lava's two ``np.where``; a single wrap, as in Lava)."""
    wrapped = np.where(u > STATE_LIMIT, u - 2 * STATE_LIMIT, u)
    return np.where(wrapped <= -STATE_LIMIT, u + 2 * STATE_LIMIT, wrapped)


def saturate_voltage(v: np.ndarray) -> np.ndarray:
    """The voltage register saturates at +-(2**23 - 1)."""
    return np.clip(v, -STATE_LIMIT + 1, STATE_LIMIT - 1)


def shift_exp(x: np.ndarray, exponent: int) -> np.ndarray:
    """Lava's synaptic exponent: left shift, or arithmetic (floor) right shift for negative exponents."""
    x = np.asarray(x, dtype=np.int64)
    return x << exponent if exponent > 0 else x >> (-exponent)


def effective_bias(bias_mant: np.ndarray, bias_exp: int) -> np.ndarray:
    return shift_exp(np.asarray(bias_mant, dtype=np.int64), bias_exp)


@dataclass(frozen=True)
class CubaParams:
    """Integer parameters of a population of CUBA LIF neurons in Lava's ``LIF`` process terms."""

    du: int  # current decay register (Lava ``du``); effective decay = du + 1
    dv: int  # voltage decay register (Lava ``dv``)
    vth: int  # threshold mantissa; a neuron spikes when v > vth << 6
    bias_mant: np.ndarray | int = 0
    bias_exp: int = NETX_BIAS_EXP

    @classmethod
    def from_netx(cls, i_decay: int, v_decay: int, vth_mant: int, bias=0) -> "CubaParams":
        """netx's mapping: ``du = iDecay - 1``, ``dv = vDecay``, ``bias_exp = 6`` (lava-dl netx/hdf5.py)."""
        return cls(du=int(i_decay) - 1, dv=int(v_decay), vth=int(vth_mant), bias_mant=bias)


@dataclass
class CubaState:
    u: np.ndarray
    v: np.ndarray

    @classmethod
    def zeros(cls, shape) -> "CubaState":
        return cls(np.zeros(shape, np.int64), np.zeros(shape, np.int64))


def cuba_step(state: CubaState, a_in: np.ndarray, p: CubaParams) -> np.ndarray:
    """Advance one time step in place; returns the boolean spike vector (Lava ``PyLifModelBitAcc.run_spk``)."""
    u = decay(state.u, p.du + CURRENT_DECAY_OFFSET) + (np.asarray(a_in, np.int64) << ACTIVATION_SHIFT)
    state.u = wrap_current(u)
    v = decay(state.v, p.dv + VOLTAGE_DECAY_OFFSET) + state.u + effective_bias(p.bias_mant, p.bias_exp)
    state.v = saturate_voltage(v)
    spikes = state.v > (np.int64(p.vth) << THRESHOLD_SHIFT)
    state.v = np.where(spikes, 0, state.v)
    return spikes


def cuba_run(a_in: np.ndarray, p: CubaParams, record_voltage: bool = False):
    """Run a population over time. ``a_in``: ``[..., T, N]`` integer synaptic input per step.

    Returns spikes ``[..., T, N]`` (bool) and, if asked, the post-reset voltage ``[..., T, N]``.
    """
    a_in = np.asarray(a_in, np.int64)
    state = CubaState.zeros(a_in.shape[:-2] + a_in.shape[-1:])
    spikes = np.zeros(a_in.shape, dtype=bool)
    volts = np.zeros(a_in.shape, np.int64) if record_voltage else None
    for t in range(a_in.shape[-2]):
        spikes[..., t, :] = cuba_step(state, a_in[..., t, :], p)
        if volts is not None:
            volts[..., t, :] = state.v
    return (spikes, volts) if record_voltage else spikes


# ---------------------------------------------------------------------------------------------- weights
SIGN_EXCITATORY, SIGN_INHIBITORY, SIGN_MIXED = 1, 2, 3


def sign_mode(weights: np.ndarray) -> int:
    """Lava's ``determine_sign_mode``."""
    if np.min(weights) >= 0:
        return SIGN_EXCITATORY
    if np.max(weights) <= 0:
        return SIGN_INHIBITORY
    return SIGN_MIXED


def lava_synapse_weights(weights: np.ndarray, num_weight_bits: int = 8, mode: int | None = None) -> np.ndarray:
    """What Lava's bit-accurate Dense does to its weights on the first step: clip to 8 bits, then drop the
    low bits that ``num_weight_bits`` does not keep (``clip_weights`` then ``truncate_weights``)."""
    w = np.asarray(weights).astype(np.int64)
    mode = mode or sign_mode(w)
    mixed = int(mode == SIGN_MIXED)
    if mode == SIGN_INHIBITORY:
        w = -w
    w = np.clip(w, -(2**8) * mixed, 2**8 - 1)
    drop = 8 - num_weight_bits + mixed
    if drop > 0:
        w = (w >> drop) << drop
    elif drop < 0:  # more bits than the register has: Lava shifts by a negative count -> keep as is
        pass
    return -w if mode == SIGN_INHIBITORY else w


@dataclass(frozen=True)
class SynapseWeights:
    """Weights as the Lava process will hold them, plus the exponent applied to each accumulated sum."""

    weights: np.ndarray  # int64 [out, in]
    weight_exp: int


def netx_dense_weights(weights: np.ndarray) -> SynapseWeights:
    """lava-dl netx's ``optimize_weight_bits`` followed by Lava's clip/truncate: the synapse netx builds from
    an HDF5 ``weight`` dataset. For integer weights within [-256, 254] the result is lossless (the
    accumulated sum equals the sum of the stored integers); outside that range netx clips."""
    w = np.asarray(weights).astype(np.int64)
    max_w, min_w = int(w.max()), int(w.min())
    if (max_w > 254 and min_w < 0) or (min_w < -256 and max_w > 0):
        w = np.clip(w, -256, 254)
        max_w, min_w = int(w.max()), int(w.min())
    if max_w < 0:
        mode, signed = SIGN_INHIBITORY, 0
        scale = -256 / min_w
    elif min_w >= 0:
        mode, signed = SIGN_EXCITATORY, 0
        scale = 255 / max_w if max_w > 0 else np.inf
    else:
        mode, signed = SIGN_MIXED, 1
        scale = min(127 / max_w, -128 / min_w)
    if not np.isfinite(scale):  # all-zero matrix: netx divides by zero (inf scale); nothing reaches u anyway
        return SynapseWeights(np.zeros_like(w), 0)
    scale_bits = int(np.floor(np.log2(scale))) + signed
    if scale_bits < 0:  # netx would left-shift by a negative count (undefined); it only happens past 8 bits
        raise ValueError(f"weights in [{min_w}, {max_w}] exceed the 8-bit synapse netx can build")
    n = 8
    while n > 0 and np.sum(np.abs(w / 2**n - np.round(w / 2**n))) != 0:
        n -= 1
    n -= signed
    num_weight_bits = 8 - scale_bits - n
    shifted = w << scale_bits
    return SynapseWeights(lava_synapse_weights(shifted, num_weight_bits, mode), -scale_bits)
