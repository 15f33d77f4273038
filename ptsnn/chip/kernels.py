"""Neuron kernels: one exact kernel per neuron type of the chip IR, in Lava 0.10's own ``fixed_pt`` arithmetic.

Each neuron type has a *reference* kernel that replays the int32 operations of Lava's bit-accurate process
model one by one, and at most one *fast path* that is proven equal to it (argument in the docstring, property
test in ``tests/test_chip_kernels.py``, both compared with Lava's own models driven through overflow):

* CUBA LIF (``lava/proc/lif/models.py`` ``PyLifModelBitAcc``): :class:`CubaReference`; fast path
  :class:`CubaFast` (float64 state). :func:`run_cuba` picks the fast path only where the proof holds and
  records voltages with the same arithmetic as it runs, so reports and runs never disagree.
* Fire-once (time-to-first-spike) CUBA neurons: :func:`run_fire_once`, the CUBA kernels above stepped with
  the population's self-inhibition fed back (what Lava computes for a LIF with a Dense self-connection).
* Sigma-delta (``lava/proc/sdn/models.py`` ``PyDeltaModelFixed``, ``PySigmaDeltaModelFixed``,
  ``PySigmaModelFixed``): :class:`SigmaDeltaKernel` steps (the reference); ``delta_run``/``sigma_delta_run``/
  ``sigma_run`` are the vectorised fast paths. The accumulator (Lava ``Sigma``) is ``sigma_run``.

Kernels are time-major: inputs ``[T, ...]`` with any trailing (batch, neuron) shape.
"""

from __future__ import annotations

import numpy as np

from ptsnn.numerics.loihi import (
    ACTIVATION_SHIFT,
    CURRENT_DECAY_OFFSET,
    DECAY_UNITY,
    SDNN_SPIKE_EXP,
    SDNN_STATE_EXP,
    STATE_LIMIT,
    THRESHOLD_SHIFT,
    VOLTAGE_DECAY_OFFSET,
    CubaParams,
    decay,
    lif_effective_bias,
    saturate_voltage,
    sdnn_scaled,
    wrap_int32,
    wrap_to_int32,
)

# ------------------------------------------------------------------------------------------- CUBA LIF
# Why the fast path is exact. Lava holds u and v in int32 and wraps u once modulo 2**24. If every input
# satisfies |a_in << 6| < 2**23 (after the int32 wrap of the channel and of the shift), then |decayed u| <=
# 2**23 and the new u lies in (-2**24, 2**24): no int32 register can overflow, and Lava's single wrap equals a
# modular wrap into (-2**23, 2**23]. v = decayed v + u + bias stays below 2**25 in magnitude (|bias| < 2**22:
# a 16-bit mantissa << bias_exp <= 7 is checked by the IR), so Lava's clip is the only nonlinearity. float64
# holds every such value and every decay product exactly (|x| * 4096 < 2**53); multiplying by
# (4096 - d) / 4096 is exact and ``trunc`` is Lava's round-toward-zero shift. The bounds also need decay
# factors in [0, 1] (effective decays 0..4096) and a threshold >= 0 (a resting neuron then stays silent);
# netx files may hold other values, which Lava simulates (see :func:`fast_path_params`). Outside that regime
# :func:`run_cuba` uses the reference.


def fast_path_params(p: CubaParams) -> bool:
    """Parameters the fast path's argument covers: effective decays in 0..4096 and ``vth >= 0``."""
    return (0 <= p.du + CURRENT_DECAY_OFFSET <= DECAY_UNITY and 0 <= p.dv + VOLTAGE_DECAY_OFFSET <= DECAY_UNITY
            and p.vth >= 0)


def _decay_factor(decay_register) -> np.ndarray:
    return (DECAY_UNITY - np.asarray(decay_register, np.float64)) / DECAY_UNITY


class CubaFast:
    """The fast path: float64 state, valid (and then bit-exact) while ``|a_in << 6| < 2**23`` (see above)."""

    def __init__(self, shape, p: CubaParams, max_abs_input6: float | None = None):
        if not fast_path_params(p):
            raise ValueError(f"the CUBA fast path needs decays in 0..4096 and vth >= 0, got du={p.du} dv={p.dv} vth={p.vth}")
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

    def reset_state(self) -> None:
        """``u = v = 0`` (Lava's ``LIFReset`` at its reset steps)."""
        self.u[...] = 0
        self.v[...] = 0

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


class CubaReference:
    """The reference: Lava's int32 LIF arithmetic (``AbstractPyLifModelFixed.subthr_dynamics``) replayed
    operation by operation (int64 arrays plus explicit wraps where Lava's int32 registers wrap)."""

    def __init__(self, shape, p: CubaParams):
        self.du, self.dv = p.du + CURRENT_DECAY_OFFSET, p.dv + VOLTAGE_DECAY_OFFSET
        self.bias = lif_effective_bias(p.bias_mant, p.bias_exp)
        self.vth = np.int64(p.vth) << THRESHOLD_SHIFT
        self.u = np.zeros(shape, np.int64)
        self.v = np.zeros(shape, np.int64)

    reset_state = CubaFast.reset_state  # the same u, v state: zeroed the same way

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


def cuba_input6(a_in: np.ndarray) -> np.ndarray:
    """``a_in << 6`` as Lava's int32 LIF computes it (``a_in`` already int32 from the channel)."""
    return wrap_int32(wrap_int32(a_in) << ACTIVATION_SHIFT)


def _int32_channel(a_in: np.ndarray) -> tuple[np.ndarray, int]:
    """``a_in`` as Lava's int32 channel holds it, and its largest magnitude. The wrap (several passes over
    the array) is computed only when a value lies outside int32; two read-only passes decide that."""
    a_in = np.asarray(a_in, np.int64)
    lo, hi = int(a_in.min(initial=0)), int(a_in.max(initial=0))
    if lo < -2**31 or hi >= 2**31:
        a_in = wrap_int32(a_in)
        lo, hi = int(a_in.min(initial=0)), int(a_in.max(initial=0))
    return a_in, max(-lo, hi)


def fast_path_applies(a_in: np.ndarray) -> bool:
    """The condition of the exactness argument above: ``|a_in << 6| < 2**23`` for every input."""
    return float(np.max(np.abs(cuba_input6(a_in)), initial=0)) < STATE_LIMIT


def run_cuba(a_in: np.ndarray, p: CubaParams, record_voltage: bool = False, path: str = "auto",
             reset: np.ndarray | None = None):
    """Run a CUBA population over time. ``a_in`` ``[T, ...]`` integer synaptic input per step.

    Returns bool spikes ``[T, ...]`` and, with ``record_voltage``, the voltage after each step's reset
    ``[T, ...]`` int64 (0 where the neuron spiked). ``path``: "auto" (fast path where it is proven exact,
    else the reference), "reference" or "fast" (tests; refused outside the fast path's regime).
    ``reset`` ``[T]`` bool: steps at whose start ``u`` and ``v`` are zeroed (Lava's ``LIFReset``, which
    netx builds for ``hdf5.Network(reset_interval=...)``; see :func:`reset_steps`). Zeroing only lowers
    magnitudes, so the fast path's bounds still hold."""
    a_in, max_abs = _int32_channel(a_in)
    small = max_abs < STATE_LIMIT >> ACTIVATION_SHIFT  # then a_in << 6 cannot wrap and the fast path applies
    applies = fast_path_params(p) and (small or fast_path_applies(a_in))
    use_fast = applies if path == "auto" else path == "fast"
    if path == "fast" and not applies:
        raise ValueError("the CUBA fast path is exact only while |a_in << 6| < 2**23")
    spikes = np.zeros(a_in.shape, bool)
    volts = np.zeros(a_in.shape, np.int64) if record_voltage else None
    if use_fast:
        a6 = np.multiply(a_in, float(2**ACTIVATION_SHIFT)) if small else cuba_input6(a_in).astype(np.float64)
        max_a6 = max_abs * 2**ACTIVATION_SHIFT if small else float(np.max(np.abs(a6), initial=0))
        kernel = CubaFast(a6.shape[1:], p, max_a6)
        if kernel.need_wrap:
            total = float(np.max(np.abs(a6).sum(axis=0), initial=0))
            if total < STATE_LIMIT:
                kernel.set_current_bound(total)
        _run_fast(kernel, a6, spikes, volts, reset)
    else:
        kernel = CubaReference(a_in.shape[1:], p)
        for t in range(a_in.shape[0]):
            if reset is not None and reset[t]:
                kernel.reset_state()
            kernel.step(a_in[t], spikes[t])
            if volts is not None:
                volts[t] = kernel.v
    return (spikes, volts) if record_voltage else spikes


_REST_CHECK_EVERY = 8  # steps between checks for the rest state during a run of input-free steps


def reset_steps(steps: int, interval: int | None, offset: int) -> np.ndarray | None:
    """``LIFReset``'s schedule over ``steps`` steps: Lava's step ``t + 1`` (time starts at 1) zeroes the state
    when ``(t + 1) % interval == offset % interval``. None without an interval."""
    if interval is None:
        return None
    if interval < 1:
        raise ValueError(f"reset interval must be >= 1, got {interval}")
    return (np.arange(1, steps + 1) % interval) == (offset % interval)


def _run_fast(kernel: CubaFast, a6: np.ndarray, spikes: np.ndarray, volts: np.ndarray | None,
              reset: np.ndarray | None = None) -> None:
    """Step the fast path over time, skipping steps that cannot change anything: without bias, a population
    whose ``u`` and ``v`` are all zero stays at zero and silent through steps without input (its output
    buffers are already zero there). Spike trains are sparse in time (NTIDIGITS: ~80 % of the steps bring no
    input at all), so this saves most of the per-step work of small populations."""
    steps = a6.shape[0]
    if kernel.bias is not None or steps < 2 * _REST_CHECK_EVERY:
        quiet = None
    else:
        quiet = ~a6.reshape(steps, -1).any(axis=1)
    resting = True  # u = v = 0 at the start
    for t in range(steps):
        if resting and quiet is not None and quiet[t]:
            continue  # a reset of a resting population changes nothing
        if reset is not None and reset[t]:
            kernel.reset_state()
        kernel.step(a6[t], spikes[t])
        if volts is not None:
            volts[t] = kernel.v
        if quiet is not None:
            resting = (t % _REST_CHECK_EVERY == 0 and t + 1 < steps and quiet[t + 1]
                       and not kernel.v.any() and not kernel.u.any())


def run_fire_once(a_in: np.ndarray, p: CubaParams, inhibition: int, record_voltage: bool = False,
                  path: str = "auto"):
    """Fire-once (time-to-first-spike) population: a CUBA neuron plus a ``Dense`` self-connection that adds
    ``inhibition`` to its own ``a_in`` one step after each spike (``ptsnn.chip.ir.FireOncePopulation``).

    Lava sums the external and the self input in the int32 ``a_in`` port; the kernel steps the CUBA
    reference (or its fast path, under the same condition, with the inhibition counted in the bound)."""
    a_in = wrap_int32(a_in)
    inh = int(inhibition)
    bound = float(np.max(np.abs(a_in), initial=0)) + abs(inh)
    applies = fast_path_params(p) and bound * 2**ACTIVATION_SHIFT < STATE_LIMIT
    use_fast = applies if path == "auto" else path == "fast"
    if path == "fast" and not applies:
        raise ValueError("the CUBA fast path is exact only while |a_in << 6| < 2**23")
    spikes = np.zeros(a_in.shape, bool)
    volts = np.zeros(a_in.shape, np.int64) if record_voltage else None
    kernel = CubaFast(a_in.shape[1:], p, bound * 2**ACTIVATION_SHIFT) if use_fast else CubaReference(a_in.shape[1:], p)
    feedback = np.zeros(a_in.shape[1:], np.int64)
    for t in range(a_in.shape[0]):
        a = wrap_int32(a_in[t] + feedback)
        kernel.step(cuba_input6(a).astype(np.float64) if use_fast else a, spikes[t])
        np.multiply(spikes[t], inh, out=feedback)
        if volts is not None:
            volts[t] = kernel.v
    return spikes, volts


# ---------------------------------------------------------------------------------------- Sigma-Delta
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
    act = wrap_to_int32(wrap_to_int32(a_in).astype(np.int64) << (spike_exp + state_exp))
    return delta_encode(act, sdnn_scaled(vth_mant, spike_exp, state_exp), state_exp)


def sigma_run(a_in: np.ndarray) -> np.ndarray:
    """``PySigmaModelFixed`` over time: the running int32 sum of ``a_in`` ``[T, ...]``."""
    return wrap_to_int32(np.cumsum(wrap_int32(a_in), axis=0))  # modular arithmetic: wrapping once at the end is exact


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
        a = wrap_to_int32(a_in)
        with np.errstate(over="ignore"):
            if self.kind == "sigma":
                self.sigma = self.sigma + a
                return self.sigma.copy()
            if self.kind == "delta":
                act = wrap_to_int32(a.astype(np.int64) << self.exp)
            else:
                self.sigma = self.sigma + a
                act = np.maximum(self.sigma + self.bias, np.int32(0))
            delta = act - self.act + self.residue
            s = np.where(np.abs(delta) >= self.vth, delta, np.int32(0)).astype(np.int32)
            self.residue = delta - s
            self.act = act
            return s >> self.state_exp
