"""Loihi fixed-point arithmetic, exactly as lava-nc 0.10's ``fixed_pt`` process models compute it.

One place for every integer rule that the quantization-aware model, the fast simulator and the tests must
share. Sources (lava-nc 0.10): ``lava/proc/lif/models.py`` (``AbstractPyLifModelFixed``,
``PyLifModelBitAcc``), ``lava/proc/dense/models.py`` (``PyDenseModelBitAcc``, ``PyDelayDenseModelBitAcc``),
``lava/utils/weightutils.py``, ``lava/proc/conv/models.py`` (``PyConvModelFixed``), ``lava/proc/sdn/models.py``
(``PySigmaDeltaModelFixed``, ``PyDeltaModelFixed``, ``PySigmaModelFixed``) and lava-dl 0.6's ``netx/utils.py``
(``optimize_weight_bits``) and ``netx/blocks/process.py`` (``RecurrentDense``).

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


def netx_recurrent_weights(weight: np.ndarray, weight_rec: np.ndarray) -> tuple[SynapseWeights, SynapseWeights]:
    """netx's ``RecurrentDense``: ``optimize_weight_bits`` runs once on ``hstack(weight, weight_rec)`` so that
    both synapses share one exponent; each synapse then clips/truncates its own half (sign mode included)."""
    w = np.asarray(weight).astype(np.int64)
    w_rec = np.asarray(weight_rec).astype(np.int64)
    joint = np.hstack((w, w_rec))
    max_w, min_w = int(joint.max()), int(joint.min())
    if (max_w > 254 and min_w < 0) or (min_w < -256 and max_w > 0):
        joint = np.clip(joint, -256, 254)
        max_w, min_w = int(joint.max()), int(joint.min())
    if max_w < 0:
        signed, scale = 0, -256 / min_w
    elif min_w >= 0:
        signed, scale = 0, (255 / max_w if max_w > 0 else np.inf)
    else:
        signed, scale = 1, min(127 / max_w, -128 / min_w)
    if not np.isfinite(scale):
        return SynapseWeights(np.zeros_like(w), 0), SynapseWeights(np.zeros_like(w_rec), 0)
    scale_bits = int(np.floor(np.log2(scale))) + signed
    if scale_bits < 0:
        raise ValueError(f"weights in [{min_w}, {max_w}] exceed the 8-bit synapse netx can build")
    n = 8
    while n > 0 and np.sum(np.abs(joint / 2**n - np.round(joint / 2**n))) != 0:
        n -= 1
    n -= signed
    num_weight_bits = 8 - scale_bits - n
    shifted = joint << scale_bits
    # the Dense processes get no sign_mode from netx: each determines its own from its half
    ff = lava_synapse_weights(shifted[:, : w.shape[1]], num_weight_bits)
    rec = lava_synapse_weights(shifted[:, w.shape[1]:], num_weight_bits)
    return SynapseWeights(ff, -scale_bits), SynapseWeights(rec, -scale_bits)


# ------------------------------------------------------------------------------------------- CUBA, fast
# Exact, batched LIF time loop. The state is kept in float64, which holds every 24-bit register value and
# every decay product exactly (|u| * 4096 < 2**53; multiplying by (4096 - d) / 4096 is exact, and ``trunc``
# is Lava's round-toward-zero shift). It is used when the synaptic input satisfies ``|a_in << 6| < 2**23``:
# then no int32 register of Lava's model can overflow and Lava's single wrap of ``u`` equals a modular wrap
# into (-2**23, 2**23]. Otherwise ``cuba_run_exact`` replays Lava's int32 operations one by one.


def _decay_factor(decay_register) -> np.ndarray:
    return (DECAY_UNITY - np.asarray(decay_register, np.float64)) / DECAY_UNITY


class CubaKernel:
    """One population of CUBA neurons, ``[batch, neurons]`` (any trailing shape), stepped in place."""

    def __init__(self, shape, p: CubaParams, max_abs_input6: float | None = None):
        self.shape = tuple(shape)
        self.fu = _decay_factor(p.du + CURRENT_DECAY_OFFSET)
        self.fv = _decay_factor(p.dv + VOLTAGE_DECAY_OFFSET)
        bias = lif_effective_bias(p.bias_mant, p.bias_exp).astype(np.float64)
        self.bias = bias if np.any(bias) else None  # must broadcast against the trailing dims of shape
        self.vth = float(np.int64(p.vth) << THRESHOLD_SHIFT)
        self.u = np.zeros(self.shape, np.float64)
        self.v = np.zeros(self.shape, np.float64)
        self.u_no_decay = bool(np.all(self.fu == 1.0))
        self.u_no_memory = bool(np.all(self.fu == 0.0))
        self.v_no_decay = bool(np.all(self.fv == 1.0))
        self.v_no_memory = bool(np.all(self.fv == 0.0))
        self.need_wrap = self.need_clip = True
        if max_abs_input6 is not None:
            fu_max = float(np.max(self.fu))
            self.set_current_bound(max_abs_input6 / (1 - fu_max) if fu_max < 1 else np.inf)

    def set_current_bound(self, u_bound: float) -> None:
        """Skip the wrap of ``u`` and the clip of ``v`` when bounds prove they cannot act. Decays only shrink
        magnitudes, so ``|u| <= max|a_in << 6| / (1 - fu)`` and ``|u| <= sum_t |a_in << 6|``; likewise
        ``|v| <= (max|u| + |bias|) / (1 - fv)``."""
        self.need_wrap = not u_bound < STATE_LIMIT  # Lava wraps u = -2**23 too (range (-2**23, 2**23])
        u_bound = min(u_bound, STATE_LIMIT)
        fv_max = float(np.max(self.fv))
        b = 0.0 if self.bias is None else float(np.max(np.abs(self.bias)))
        v_bound = (u_bound + b) / (1 - fv_max) if fv_max < 1 else np.inf
        self.need_clip = not v_bound <= STATE_LIMIT - 1

    def step(self, a6: np.ndarray, out: np.ndarray) -> None:
        """One step; ``a6`` is ``a_in << 6`` as float64, ``out`` the bool spike buffer to fill."""
        u, v = self.u, self.v
        if self.u_no_memory:
            np.copyto(u, a6)
        else:
            if not self.u_no_decay:
                np.multiply(u, self.fu, out=u)
                np.trunc(u, out=u)
            np.add(u, a6, out=u)
        if self.need_wrap:  # modular wrap into (-2**23, 2**23]
            np.add(u, STATE_LIMIT - 1, out=u)
            np.remainder(u, 2 * STATE_LIMIT, out=u)
            np.subtract(u, STATE_LIMIT - 1, out=u)
        if self.v_no_memory:
            np.copyto(v, u)
        else:
            if not self.v_no_decay:
                np.multiply(v, self.fv, out=v)
                np.trunc(v, out=v)
            np.add(v, u, out=v)
        if self.bias is not None:
            np.add(v, self.bias, out=v)
        if self.need_clip:
            np.minimum(v, STATE_LIMIT - 1, out=v)
            np.maximum(v, -STATE_LIMIT + 1, out=v)
        np.greater(v, self.vth, out=out)
        np.putmask(v, out, 0.0)


def cuba_input6(a_in: np.ndarray) -> np.ndarray:
    """``a_in << 6`` as Lava's int32 LIF computes it (``a_in`` already int32 from the channel)."""
    return wrap_int32(wrap_int32(a_in) << ACTIVATION_SHIFT)


def cuba_run_fast(a_in: np.ndarray, p: CubaParams) -> np.ndarray:
    """Time-major CUBA run: ``a_in`` ``[T, ...]`` integer synaptic input, returns bool spikes ``[T, ...]``,
    bit-exact with ``PyLifModelBitAcc`` (falls back to ``cuba_run_exact`` for out-of-range inputs)."""
    a6 = cuba_input6(a_in)
    max_a6 = float(np.max(np.abs(a6), initial=0))
    if max_a6 >= STATE_LIMIT:
        return cuba_run_exact(a_in, p)
    a6 = a6.astype(np.float64)
    kernel = CubaKernel(a6.shape[1:], p, max_a6)
    if kernel.need_wrap:
        total = float(np.max(np.abs(a6).sum(axis=0), initial=0))
        if total < STATE_LIMIT:
            kernel.set_current_bound(total)
    spikes = np.zeros(a6.shape, bool)
    for t in range(a6.shape[0]):
        kernel.step(a6[t], spikes[t])
    return spikes


class CubaExactKernel:
    """Lava's int32 LIF arithmetic replayed operation by operation (int64 arrays plus explicit wraps)."""

    def __init__(self, shape, p: CubaParams):
        self.du, self.dv = p.du + CURRENT_DECAY_OFFSET, p.dv + VOLTAGE_DECAY_OFFSET
        self.bias = lif_effective_bias(p.bias_mant, p.bias_exp)
        self.vth = np.int64(p.vth) << THRESHOLD_SHIFT
        self.u = np.zeros(shape, np.int64)
        self.v = np.zeros(shape, np.int64)

    def step(self, a_in: np.ndarray, out: np.ndarray) -> None:
        decayed = wrap_int32(decay(self.u, self.du))
        u = wrap_int32(decayed + cuba_input6(a_in))
        self.u = wrap_int32(np.where(u > STATE_LIMIT, u - 2 * STATE_LIMIT,
                                     np.where(u <= -STATE_LIMIT, u + 2 * STATE_LIMIT, u)))
        decayed_v = wrap_int32(decay(self.v, self.dv))
        v = wrap_int32(wrap_int32(decayed_v + self.u) + self.bias)
        self.v = saturate_voltage(v)
        np.greater(self.v, self.vth, out=out)
        self.v[out] = 0


def cuba_run_exact(a_in: np.ndarray, p: CubaParams) -> np.ndarray:
    a_in = wrap_int32(a_in)
    kernel = CubaExactKernel(a_in.shape[1:], p)
    spikes = np.zeros(a_in.shape, bool)
    for t in range(a_in.shape[0]):
        kernel.step(a_in[t], spikes[t])
    return spikes


# ------------------------------------------------------------------------------------------ Sigma-Delta
# lava/proc/sdn/models.py, fixed_pt models, as netx builds them (netx/hdf5.py get_neuron_params):
#   Delta      (SDNN input layer): act = a_in << (spike_exp + state_exp)
#   SigmaDelta (hidden layers):    sigma += a_in; act = relu(sigma + (bias << (spike_exp + state_exp)))
#   both then: delta = act - act_prev + residue; s = delta if |delta| >= vth << (spike_exp + state_exp)
#              else 0; residue = delta - s; act_prev = act; output s >> state_exp (graded payload)
#   Sigma      (``sigma_output``): sigma += a_in; output sigma
# All registers are int32 arrays: the computations below run in int32 so that they wrap where Lava does.
SDNN_SPIKE_EXP = 6  # hdf5.Network(spike_exp=6) default
SDNN_STATE_EXP = 6  # netx fixes state_exp = 6
SDNN_DEFAULT_MESSAGE_BITS = 16  # netx default when ``messageBits`` is absent


def _i32(x) -> np.ndarray:
    return wrap_int32(x).astype(np.int32)


def sdnn_scaled(value, spike_exp: int = SDNN_SPIKE_EXP, state_exp: int = SDNN_STATE_EXP) -> np.ndarray:
    """``value * (1 << (spike_exp + state_exp))`` as the Delta/SigmaDelta process stores vth and bias (int32)."""
    return _i32(np.asarray(value, np.int64) << (spike_exp + state_exp))


def delta_encode(act: np.ndarray, vth_scaled, state_exp: int = SDNN_STATE_EXP) -> np.ndarray:
    """The delta stage over time for a time-major int32 activation ``act`` ``[T, ...]``: returns the graded
    output ``[T, ...]`` int32 (already ``>> state_exp``). Vectorised when every delta fires (vth <= 0)."""
    act = np.asarray(act, np.int32)
    prev = np.concatenate([np.zeros_like(act[:1]), act[:-1]])
    with np.errstate(over="ignore"):
        diff = act - prev  # int32, wraps like Lava's act - self.act
    vth = np.int32(vth_scaled)
    if vth <= 0:  # |delta| >= vth always: no residue is ever kept (int32 abs(-2**31) is negative: check)
        if vth <= np.iinfo(np.int32).min or not np.any(diff == np.iinfo(np.int32).min):
            return diff >> np.int32(state_exp)
    out = np.zeros_like(diff)
    residue = np.zeros_like(diff[0])
    delta = np.zeros_like(diff[0])
    mag = np.zeros_like(diff[0])
    fire = np.zeros(diff.shape[1:], bool)
    with np.errstate(over="ignore"):
        for t in range(diff.shape[0]):
            np.add(diff[t], residue, out=delta)
            np.abs(delta, out=mag)
            np.greater_equal(mag, vth, out=fire)
            np.multiply(delta, fire, out=out[t])
            np.subtract(delta, out[t], out=residue)
    return out >> np.int32(state_exp)


def delta_run(a_in: np.ndarray, vth_mant, spike_exp: int = SDNN_SPIKE_EXP,
              state_exp: int = SDNN_STATE_EXP) -> np.ndarray:
    """``PyDeltaModelFixed`` over time: ``a_in`` ``[T, ...]`` integers -> graded output ``[T, ...]`` int32."""
    act = _i32(_i32(a_in).astype(np.int64) << (spike_exp + state_exp))
    return delta_encode(act, sdnn_scaled(vth_mant, spike_exp, state_exp), state_exp)


def sigma_run(a_in: np.ndarray) -> np.ndarray:
    """``PySigmaModelFixed`` over time: the running int32 sum of ``a_in`` ``[T, ...]``."""
    return _i32(np.cumsum(wrap_int32(a_in), axis=0))  # modular arithmetic: wrapping once at the end is exact


def sigma_delta_run(a_in: np.ndarray, vth_mant, bias=0, spike_exp: int = SDNN_SPIKE_EXP,
                    state_exp: int = SDNN_STATE_EXP) -> np.ndarray:
    """``PySigmaDeltaModelFixed`` (ReLU) over time: ``a_in`` ``[T, ...]`` -> graded output ``[T, ...]`` int32."""
    sigma = sigma_run(a_in)
    with np.errstate(over="ignore"):
        act = np.maximum(sigma + sdnn_scaled(bias, spike_exp, state_exp), np.int32(0))
    return delta_encode(act, sdnn_scaled(vth_mant, spike_exp, state_exp), state_exp)


class SigmaDeltaKernel:
    """Step-by-step SigmaDelta/Sigma/Delta for recurrent layers (same int32 arithmetic as the runs above)."""

    def __init__(self, shape, kind: str, vth_mant=0, bias=0, spike_exp: int = SDNN_SPIKE_EXP,
                 state_exp: int = SDNN_STATE_EXP):
        self.kind = kind  # "delta", "sigma_delta" or "sigma"
        self.exp = spike_exp + state_exp
        self.state_exp = np.int32(state_exp)
        self.vth = np.int32(sdnn_scaled(vth_mant, spike_exp, state_exp))
        self.bias = sdnn_scaled(bias, spike_exp, state_exp)
        self.sigma = np.zeros(shape, np.int32)
        self.act = np.zeros(shape, np.int32)
        self.residue = np.zeros(shape, np.int32)

    def step(self, a_in: np.ndarray) -> np.ndarray:
        a = _i32(a_in)
        with np.errstate(over="ignore"):
            if self.kind == "sigma":
                self.sigma = self.sigma + a
                return self.sigma.copy()
            if self.kind == "delta":
                act = _i32(a.astype(np.int64) << self.exp)
            else:
                self.sigma = self.sigma + a
                act = np.maximum(self.sigma + self.bias, np.int32(0))
            delta = act - self.act + self.residue
            s = np.where(np.abs(delta) >= self.vth, delta, np.int32(0)).astype(np.int32)
            self.residue = delta - s
            self.act = act
            return s >> self.state_exp
