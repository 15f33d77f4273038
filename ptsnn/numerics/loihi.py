"""Loihi fixed-point arithmetic, exactly as lava-nc 0.10's ``fixed_pt`` process models compute it.

One place for every integer rule that the quantization-aware model, the fast simulator and the tests must
share. Sources (lava-nc 0.10): ``lava/proc/lif/models.py`` (``AbstractPyLifModelFixed``,
``PyLifModelBitAcc``), ``lava/proc/dense/models.py`` (``PyDenseModelBitAcc``, ``PyDelayDenseModelBitAcc``),
``lava/utils/weightutils.py``, ``lava/proc/conv/models.py`` (``PyConvModelFixed``), ``lava/proc/sdn/models.py``
(``PySigmaDeltaModelFixed``, ``PyDeltaModelFixed``, ``PySigmaModelFixed``) and lava-dl 0.6's ``netx/utils.py``
(``optimize_weight_bits``) and ``netx/blocks/process.py`` (``RecurrentDense``).

These constants describe Lava's model of the chip (its register layout), not a hardware profile: the
profiles' numerics (``hw_profiles/loihi2.toml``) must agree with them and are checked against them.
All functions work on numpy int64 arrays of any shape, so they vectorise over batch and neurons. The neuron
kernels that run these rules over time live in ``ptsnn.chip.kernels`` (one per neuron type).
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


@dataclass(frozen=True)
class NetxWeightBits:
    """What lava-dl netx's ``optimize_weight_bits`` makes of an integer weight matrix."""

    shifted: np.ndarray  # int64: the weights netx hands the Dense process (before Lava's clip/truncate)
    num_weight_bits: int
    weight_exp: int
    mode: int
    clipped: bool  # mixed signs beyond [-256, 254]: netx clipped them
    zeroed: bool  # beyond what 8 bits can hold with a non-negative shift: netx's negative left shift gave 0


def optimize_weight_bits(weights: np.ndarray) -> NetxWeightBits:
    """lava-dl 0.6 ``netx.utils.optimize_weight_bits`` in integers. Where the weights need more than 8 bits
    netx computes a negative ``scale_bits`` and ``np.left_shift(w, scale_bits)`` (numpy: 0 for a negative
    count), so the synapse Lava builds holds zeros (``zeroed``)."""
    w = np.asarray(weights).astype(np.int64)
    max_w, min_w = int(w.max()), int(w.min())
    clipped = (max_w > 254 and min_w < 0) or (min_w < -256 and max_w > 0)
    if clipped:
        w = np.clip(w, -256, 254)
        max_w, min_w = int(w.max()), int(w.min())
    if max_w < 0:
        mode, signed, scale = SIGN_INHIBITORY, 0, -256 / min_w
    elif min_w >= 0:
        mode, signed, scale = SIGN_EXCITATORY, 0, (255 / max_w if max_w > 0 else np.inf)
    else:
        mode, signed = SIGN_MIXED, 1
        scale = min(127 / max_w if max_w > 0 else np.inf, -128 / min_w)
    if not np.isfinite(scale):  # all-zero matrix: netx divides by zero (inf scale); nothing reaches u anyway
        return NetxWeightBits(np.zeros_like(w), 8, 0, mode, clipped, False)
    scale_bits = int(np.floor(np.log2(scale))) + signed
    n = 8
    while n > 0 and np.sum(np.abs(w / 2**n - np.round(w / 2**n))) != 0:
        n -= 1
    n -= signed
    zeroed = scale_bits < 0
    shifted = np.zeros_like(w) if zeroed else w << scale_bits
    return NetxWeightBits(shifted, 8 - scale_bits - n, -scale_bits, mode, clipped, zeroed)


def netx_dense_weights(weights: np.ndarray, allow_zeroed: bool = False) -> SynapseWeights:
    """lava-dl netx's ``optimize_weight_bits`` followed by Lava's clip/truncate: the synapse netx builds from
    an HDF5 ``weight`` dataset. For integer weights within [-256, 254] the result is lossless (the
    accumulated sum equals the sum of the stored integers); outside that range netx clips, and past what
    8 bits can hold netx's synapse holds zeros: a ValueError unless ``allow_zeroed`` (simulate as Lava does)."""
    bits = optimize_weight_bits(weights)
    if bits.zeroed and not allow_zeroed:
        w = np.asarray(weights)
        raise ValueError(f"weights in [{int(w.min())}, {int(w.max())}] exceed the 8-bit synapse netx can build")
    return SynapseWeights(lava_synapse_weights(bits.shifted, bits.num_weight_bits, bits.mode), bits.weight_exp)


# ----------------------------------------------------------------------------- integer registers and ports
# Lava's Python models hold their state in int32 numpy arrays and its channels copy every message into an
# int32 buffer, so sums that leave 32 bits wrap there (silently). The helpers below reproduce those wraps.
INT32_BITS = 32
CONV_OUTPUT_BITS = 24  # lava/proc/conv/models.py PyConvModelFixed.clamp_precision: signed_clamp(x, bits=24)
LIF_BIAS_MANT_BITS = 16  # the fixed_pt LIF model holds bias_mant as int16 (netx hands it int32)


def wrap_signed(x, bits: int) -> np.ndarray:
    """Two's-complement wrap into ``[-2**(bits-1), 2**(bits-1))`` (numpy's int32 overflow; Lava's
    ``conv.utils.signed_clamp``)."""
    half = np.int64(1) << (bits - 1)
    return ((np.asarray(x, np.int64) + half) & ((half << 1) - 1)) - half


def wrap_int32(x) -> np.ndarray:
    return wrap_signed(x, INT32_BITS)


def dense_output(accumulated, weight_exp: int, graded: bool, delayed: bool = False) -> np.ndarray:
    """What a bit-accurate Dense/DelayDense sends to its neurons for an exact accumulated sum
    ``sum_i w_i * s_i`` (``lava/proc/dense/models.py``).

    * Dense, binary input: ``weights[:, s].sum(axis=1)`` promotes to int64, is shifted by ``weight_exp`` and
      wraps to int32 in the channel.
    * Dense, graded input: ``weights.dot(s_in)`` is an int32 product that wraps *before* the shift.
    * DelayDense (both): ``np.sum`` promotes to int64, the shifted value is added into the int32 ``a_buff``.
    (For graded DelayDense each product ``w * s`` is an int32 multiply: the caller must make sure
    ``|w| * |s| < 2**31``, see ``graded_products_fit_int32``.)
    """
    acc = np.asarray(accumulated, np.int64)
    if graded and not delayed:
        return wrap_int32(shift_exp(wrap_int32(acc), weight_exp))
    return wrap_int32(shift_exp(acc, weight_exp))


def graded_products_fit_int32(max_abs_weight: int, max_abs_payload: int) -> bool:
    return int(max_abs_weight) * int(max_abs_payload) < 2**31


def lif_effective_bias(bias_mant, bias_exp: int = NETX_BIAS_EXP) -> np.ndarray:
    """``scale_bias`` of the fixed_pt LIF model: the int16 ``bias_mant`` register, promoted to int32, shifted."""
    mant = wrap_signed(np.asarray(bias_mant, np.int64), LIF_BIAS_MANT_BITS)
    return wrap_int32(shift_exp(mant, bias_exp))


def netx_recurrent_weights(weight: np.ndarray, weight_rec: np.ndarray,
                           allow_zeroed: bool = False) -> tuple[SynapseWeights, SynapseWeights]:
    """netx's ``RecurrentDense``: ``optimize_weight_bits`` runs once on ``hstack(weight, weight_rec)`` so that
    both synapses share one exponent; each synapse then clips/truncates its own half (sign mode included)."""
    w = np.asarray(weight).astype(np.int64)
    w_rec = np.asarray(weight_rec).astype(np.int64)
    joint = np.hstack((w, w_rec))
    bits = optimize_weight_bits(joint)
    if bits.zeroed and not allow_zeroed:
        raise ValueError(f"weights in [{int(joint.min())}, {int(joint.max())}] exceed the 8-bit synapse netx can build")
    # the Dense processes get no sign_mode from netx: each determines its own from its half
    ff = lava_synapse_weights(bits.shifted[:, : w.shape[1]], bits.num_weight_bits)
    rec = lava_synapse_weights(bits.shifted[:, w.shape[1]:], bits.num_weight_bits)
    return SynapseWeights(ff, bits.weight_exp), SynapseWeights(rec, bits.weight_exp)


# ------------------------------------------------------------------------------------------ Sigma-Delta
# lava/proc/sdn/models.py, fixed_pt models, as netx builds them (netx/hdf5.py get_neuron_params):
#   Delta      (SDNN input layer): act = a_in << (spike_exp + state_exp)
#   SigmaDelta (hidden layers):    sigma += a_in; act = relu(sigma + (bias << (spike_exp + state_exp)))
#   both then: delta = act - act_prev + residue; s = delta if |delta| >= vth << (spike_exp + state_exp)
#              else 0; residue = delta - s; act_prev = act; output s >> state_exp (graded payload)
#   Sigma      (``sigma_output``): sigma += a_in; output sigma
# All registers are int32 arrays: the kernels (ptsnn.chip.kernels) run in int32 so that they wrap where Lava does.
SDNN_SPIKE_EXP = 6  # hdf5.Network(spike_exp=6) default
SDNN_STATE_EXP = 6  # netx fixes state_exp = 6
SDNN_DEFAULT_MESSAGE_BITS = 16  # netx default when ``messageBits`` is absent


def wrap_to_int32(x) -> np.ndarray:
    """``x`` wrapped into int32 and held as an int32 array (Lava's int32 registers)."""
    return wrap_int32(x).astype(np.int32)


def sdnn_scaled(value, spike_exp: int = SDNN_SPIKE_EXP, state_exp: int = SDNN_STATE_EXP) -> np.ndarray:
    """``value * (1 << (spike_exp + state_exp))`` as the Delta/SigmaDelta process stores vth and bias (int32)."""
    return wrap_to_int32(np.asarray(value, np.int64) << (spike_exp + state_exp))
