"""The TTFS network on the deployment grid: integer parameters, the integer recurrence, its ReLU twin.

Everything here is the integer semantics of docs/ttfs.md ("Integer form"), which a chip kernel reproduces:
K steps per layer window, a one-step synapse latency, Loihi CUBA neurons without current or voltage decay
(``u += a_in << 6``, ``v += u``, spike when ``v > vth << 6``), timing spikes that start each layer's slope
(alpha), hold and release its voltage and force its last spike, and a self-inhibitory synapse that makes
every neuron fire once.

* :func:`quantize_ttfs` turns a ReLU twin and its calibrated windows into :class:`IntegerTTFS`
  (8-bit signed weight mantissas with a per-layer power-of-two scale, 17-bit thresholds, states checked
  to stay inside 24 bits; a :class:`~ptsnn.errors.DesignRuleError` names the layer that cannot fit).
* :meth:`IntegerTTFS.spike_times` runs the integer recurrence step by step (float64 tensors holding exact
  integers: every value stays far below 2**53), with Lava's 24-bit wrap of ``u`` and saturation of ``v``.
* :meth:`IntegerTTFS.twin` is the quantized ReLU twin in closed form: ``q_i = clamp(floor((sum_j w_ij q_j +
  c_i) / S_i), 0, K)``; the recurrence equals it spike for spike (``spike step = window start + K - q``).
* :meth:`IntegerTTFS.export` gives the per-layer integers as plain numpy (what
  ``ptsnn.train.ttfs_reference`` and a chip kernel consume).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.nn import functional as F

from ptsnn.errors import DesignRuleError, InputError
from ptsnn.numerics import loihi
from ptsnn.train.ttfs import Stage, TTFSNet

MANTISSA_MIN, MANTISSA_MAX = -256, 254  # netx's lossless 8-bit synapse range
MAX_WEIGHT_EXP = 7  # Loihi's synaptic weight exponent field
THRESHOLD_MAX = 2**17 - 1  # Lava's vth: unsigned 17 bits
STATE_MAX = loihi.STATE_LIMIT >> loihi.ACTIVATION_SHIFT  # |u|, |v| in units of 64 must stay below 2**17
MAX_SCALE_LOG2 = 16
FORMAT = "ptsnn-ttfs-integer/1"


def to_mantissa(values, name: str) -> tuple[np.ndarray, int]:
    """Smallest exponent ``e >= 0`` with ``round(values / 2**e)`` in the 8-bit mantissa range."""
    v = np.asarray(values, np.int64)
    for e in range(MAX_WEIGHT_EXP + 1):
        m = np.round(v / 2.0**e).astype(np.int64)  # exact: |v| < 2**40
        if m.size == 0 or (m.min() >= MANTISSA_MIN and m.max() <= MANTISSA_MAX):
            return m, e
    raise _Unfit(f"{name} needs |value| {int(np.abs(v).max())} > {MANTISSA_MAX} << {MAX_WEIGHT_EXP}")


def at_least(value: int, name: str) -> tuple[int, int]:
    """The smallest representable ``mant << exp >= value`` (``value >= 0``)."""
    value = max(int(value), 0)
    for e in range(MAX_WEIGHT_EXP + 1):
        m = -(-value // 2**e)
        if m <= MANTISSA_MAX:
            return m, e
    raise _Unfit(f"{name} needs {value} > {MANTISSA_MAX} << {MAX_WEIGHT_EXP}")


class _Unfit(Exception):
    """A scale at which a layer does not fit (the quantizer then tries a smaller one)."""


@dataclass
class Timing:
    """One timing source's spike at ``step`` into a layer, through a synapse of ``mant << exp`` per neuron."""

    name: str
    step: int
    mant: np.ndarray | int
    exp: int

    @property
    def value(self):
        return np.asarray(self.mant, np.int64) << self.exp


@dataclass
class IntegerLayer:
    """One population on the grid. ``kind``: ``spiking``, ``maxpool`` or ``readout``."""

    name: str
    kind: str
    source: str
    source_shape: tuple[int, int, int]
    shape: tuple[int, int, int]
    source_start: int  # T_{n-1}: first step of the source's window
    window_start: int  # T_n (spiking, maxpool); the readout's read step
    weight_mant: np.ndarray | None = None  # [O, C, kh, kw] (maxpool: none, weight 1 per window position)
    weight_exp: int = 0
    stride: int = 1
    padding: int = 0
    pool_size: int = 0
    vth: int = 0  # the layer's threshold mantissa: spike when v > vth << 6
    timing: list[Timing] = field(default_factory=list)
    inhibit: tuple[int, int] = (0, 0)  # self-inhibition weight (mant, exp): the spike's own synapse, -mant << exp
    scale: float = 1.0  # readout: logits = potential / scale

    @property
    def weight(self) -> np.ndarray:
        return self.weight_mant.astype(np.int64) << self.weight_exp

    def present_weight_sum(self) -> np.ndarray:
        ones = torch.ones((1, *self.source_shape), dtype=torch.float64)
        s = F.conv2d(ones, torch.from_numpy(self.weight).double(), stride=self.stride, padding=self.padding)[0]
        return s.round().numpy().astype(np.int64)

    def timing_value(self, name: str):
        for t in self.timing:
            if t.name == name:
                return t.value
        return np.int64(0)

    @property
    def slope(self) -> np.ndarray:
        """``S_i = alpha_i + sum_j w_ij``: dv/dt (in units of 64) once every input has arrived."""
        return self.timing_value("alpha") + self.present_weight_sum()

    @property
    def offset(self) -> np.ndarray:
        """``c_i``: the integer bias of the quantized twin, ``q_i = floor((sum_j w_ij q_j + c_i) / S_i)``."""
        k = self.window_start - self.source_start
        delta = self.timing_value("release_on") - self.timing_value("hold_off")
        return (self.slope + self.timing_value("alpha")) * k - (np.asarray(self.vth, np.int64) - delta) - 1


# -------------------------------------------------------------------------------------------- quantize
def _quantize_spiking(st: Stage, d_prev: float, d_n: float, k: int, t_prev: int) -> IntegerLayer:
    w_q = st.weight * (d_prev / d_n)  # weights in grid units: z_i = sum_j w_q q_j + b / d_n
    b_q = (st.bias / d_n).numpy()
    largest = float(w_q.abs().max()) if w_q.numel() else 0.0
    g_top = MAX_SCALE_LOG2 if largest == 0 else min(MAX_SCALE_LOG2, math.floor(math.log2(254 / largest)))
    reason = f"weights up to {largest:.3g} grid units need a slope below 1"
    for g in range(g_top, -1, -1):
        try:
            return _build_spiking(st, w_q, b_q, 2**g, k, t_prev)
        except _Unfit as exc:
            reason = str(exc)
    raise DesignRuleError(f"ttfs layer {st.name}: does not fit the integer grid at K={k} at any scale ({reason})")


def _build_spiking(st: Stage, w_q: torch.Tensor, b_q: np.ndarray, gain: int, k: int, t_prev: int) -> IntegerLayer:
    t_n = t_prev + k
    w = torch.clamp(torch.round(w_q * gain), MANTISSA_MIN, MANTISSA_MAX)
    layer = IntegerLayer(st.name, "spiking", st.source, st.source_shape, st.shape, t_prev, t_n,
                         w.numpy().astype(np.int64), 0, st.stride, st.padding)
    ones = torch.ones((1, *st.source_shape), dtype=torch.float64)
    w_sum = layer.present_weight_sum()
    pos = F.conv2d(ones, w.clamp(min=0), stride=st.stride, padding=st.padding)[0].round().numpy().astype(np.int64)
    neg = pos - w_sum  # sum of |negative weights|
    alpha_mant, alpha_exp = to_mantissa(gain - w_sum, "alpha")
    alpha = alpha_mant << alpha_exp
    slope = alpha + w_sum
    if slope.min() < 1:
        raise _Unfit(f"slope {int(slope.min())} < 1 after rounding alpha")
    # the first threshold crossing rounds down; half a grid step more bias makes the layer round to nearest
    c_wanted = np.round(slope * (b_q[:, None, None] + 0.5)).astype(np.int64)
    vth_wanted = (slope + alpha) * k - c_wanted - 1  # per-neuron threshold that would give exactly c_wanted
    # One threshold per layer (Lava's LIF has a scalar vth): each neuron's difference to it is added to its
    # voltage by its own release pulse at t_min(n), a per-neuron weight rounded to its 8-bit mantissa grid.
    vth = max(0, int(vth_wanted.max()))
    early = (np.maximum(alpha, 0) + pos) * (k - 1)  # largest v/64 while inputs still arrive
    hold_mant, hold_exp = at_least(max(0, int(early.max()) - vth), "hold")
    hold = hold_mant << hold_exp
    rel_mant, rel_exp = to_mantissa(hold + vth - vth_wanted, "release")
    release = rel_mant << rel_exp
    c = (slope + alpha) * k - (vth + hold - release) - 1  # the offset the integers really realise
    force_mant, force_exp = at_least(max(1, int((neg * k - c).max())), "force")
    force = force_mant << force_exp
    inh = at_least(int(slope.max()) + force + 1, "self-inhibition")
    if vth > THRESHOLD_MAX:
        raise _Unfit(f"threshold {vth} exceeds 17 bits")
    u_bound = np.abs(alpha) + pos + neg + hold + np.abs(release) + force + (inh[0] << inh[1])
    v_low = (np.abs(alpha) + neg) * 2 * k + hold + np.abs(release)
    if int(u_bound.max()) + vth >= STATE_MAX or int(v_low.max()) >= STATE_MAX:
        raise _Unfit(f"current/voltage bound {max(int(u_bound.max()) + vth, int(v_low.max()))} leaves 24 bits")
    layer.vth = vth
    layer.timing = [
        Timing("alpha", t_prev, alpha_mant, alpha_exp),  # slope alpha from t_min(n-1)
        Timing("hold_on", t_prev, -hold_mant, hold_exp),  # one-step current pulse: v -= hold
        Timing("hold_off", t_prev + 1, hold_mant, hold_exp),
        Timing("release_on", t_n - 1, rel_mant, rel_exp),  # one-step pulse at t_min(n): v += release_i
        Timing("release_off", t_n, -rel_mant, rel_exp),
        Timing("force", t_n + k - 1, force_mant, force_exp),  # every unfired neuron crosses at t_max(n)
    ]
    layer.inhibit = inh
    return layer


def _quantize_readout(st: Stage, d_prev: float, k: int, t_prev: int) -> IntegerLayer:
    w_q = st.weight * d_prev  # logits = sum_j W_ij d_prev q_j + b_i
    largest = float(w_q.abs().max()) if w_q.numel() else 0.0
    g_top = MAX_SCALE_LOG2 if largest == 0 else min(MAX_SCALE_LOG2, math.floor(math.log2(254 / largest)))
    reason = "weights too large"
    for g in range(g_top, -8, -1):
        gain = 2.0**g
        w = torch.clamp(torch.round(w_q * gain), MANTISSA_MIN, MANTISSA_MAX).numpy().astype(np.int64)
        try:
            alpha_mant, alpha_exp = to_mantissa(np.round(st.bias.numpy() * gain / k).astype(np.int64)[:, None, None]
                                                * np.ones(st.shape, np.int64), "readout alpha")
        except _Unfit as exc:
            reason = str(exc)
            continue
        layer = IntegerLayer(st.name, "readout", st.source, st.source_shape, st.shape, t_prev, t_prev + k, w, 0,
                             st.stride, st.padding, vth=THRESHOLD_MAX,
                             timing=[Timing("alpha", t_prev, alpha_mant, alpha_exp)], scale=gain)
        bound = (np.abs(alpha_mant << alpha_exp) + np.abs(layer.weight).reshape(w.shape[0], -1).sum(1)[:, None, None]) * k
        if bound.max() < THRESHOLD_MAX:
            return layer
        reason = f"potential bound {int(bound.max())} exceeds the 17-bit threshold of a non-firing readout"
    raise DesignRuleError(f"ttfs layer {st.name}: does not fit the integer grid at K={k} ({reason})")


def quantize_ttfs(net: TTFSNet, widths: dict[str, float]) -> "IntegerTTFS":
    """The grid form of ``net`` with windows ``widths`` (``calibrate_windows``): grid unit ``B_n / K``."""
    k = net.cfg.steps_per_window
    for st in [s for s in net.stages() if s.kind == "spiking"] + [Stage("input", "input", "", (), ())]:
        b = widths.get(st.name)
        if not isinstance(b, (int, float)) or not b > 0:
            raise InputError(f"ttfs windows: {st.name} needs a window width B > 0, got {b!r} (calibrate_windows)")
    unit = {name: b / k for name, b in widths.items()}
    start = {"input": 0}
    layers = []
    for st in net.stages():
        t_prev = start[st.source]
        if st.kind == "spiking":
            layer = _quantize_spiking(st, unit[st.source], unit[st.name], k, t_prev)
        elif st.kind == "maxpool":
            unit[st.name] = unit[st.source]
            layer = IntegerLayer(st.name, "maxpool", st.source, st.source_shape, st.shape, t_prev, t_prev + 1,
                                 pool_size=st.pool_size, vth=0,
                                 inhibit=at_least(st.pool_size**2 + 1, "self-inhibition"))
        else:
            layer = _quantize_readout(st, unit[st.source], k, t_prev)
        start[st.name] = layer.window_start
        layers.append(layer)
    return IntegerTTFS(layers, k, float(net.cfg.input_max), net.cfg.input_shape)


# ---------------------------------------------------------------------------------------- the grid net
def _wrap_u(u: torch.Tensor) -> torch.Tensor:
    lim = float(loihi.STATE_LIMIT)
    u = torch.where(u > lim, u - 2 * lim, u)
    return torch.where(u <= -lim, u + 2 * lim, u)


def _saturate_v(v: torch.Tensor) -> torch.Tensor:
    lim = float(loihi.STATE_LIMIT - 1)
    return v.clamp(-lim, lim)


class IntegerTTFS:
    """A TTFS network on the grid: its layers, K, and the input quantization (``q0 = round(x K / input_max)``)."""

    def __init__(self, layers: list[IntegerLayer], k: int, input_max: float, input_shape):
        self.layers = layers
        self.k = k
        self.input_max = input_max
        self.input_shape = tuple(input_shape)
        self.start = {"input": 0, **{l.name: l.window_start for l in layers}}

    def quantize_input(self, x: torch.Tensor) -> torch.Tensor:
        """Input activations on the grid, ``q0 in 0..K`` (the input spikes at step ``K - q0``)."""
        return torch.floor(x.double().clamp(0, self.input_max) * (self.k / self.input_max) + 0.5).clamp(0, self.k)

    # ------------------------------------------------------------------------------ closed-form twin
    @torch.no_grad()
    def twin(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The quantized ReLU twin: grid activations ``q`` per population, integer potentials ``output``
        and float ``logits``."""
        q = {"input": self.quantize_input(x)}
        for layer in self.layers:
            src = q[layer.source]
            if layer.kind == "maxpool":
                q[layer.name] = F.max_pool2d(src, layer.pool_size)
                continue
            w = torch.from_numpy(layer.weight).double()
            z = F.conv2d(src, w, stride=layer.stride, padding=layer.padding)
            if layer.kind == "readout":
                alpha = torch.from_numpy(np.asarray(layer.timing_value("alpha"), np.float64))
                q["output"] = (z + alpha * self.k).flatten(1)
                q["logits"] = q["output"] / layer.scale
            else:
                slope = torch.from_numpy(layer.slope.astype(np.float64))
                c = torch.from_numpy(layer.offset.astype(np.float64))
                q[layer.name] = torch.div(z + c, slope, rounding_mode="floor").clamp(0, self.k)
        return q

    # ------------------------------------------------------------------------ integer recurrence
    @torch.no_grad()
    def spike_times(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Run the integer recurrence. Returns the spike step of every neuron per population (``input``
        included), ``<name>.count`` (spikes per neuron within the run of that layer) and ``output``
        (readout potentials ``v >> 6`` at the read step)."""
        q0 = self.quantize_input(x)
        times = {"input": self.k - q0}
        for layer in self.layers:
            t_in = times[layer.source]
            if layer.kind == "readout":
                times["output"] = self._run_readout(layer, t_in)
            else:
                times[layer.name], times[layer.name + ".count"] = self._run_population(layer, t_in)
        return times

    def _synaptic(self, layer: IntegerLayer, onehot: torch.Tensor) -> torch.Tensor:
        if layer.kind == "maxpool":
            return F.avg_pool2d(onehot, layer.pool_size, divisor_override=1)  # weight 1 per window position
        w = torch.from_numpy(layer.weight).double()
        return F.conv2d(onehot, w, stride=layer.stride, padding=layer.padding)

    def _timing_current(self, layer: IntegerLayer, t: int) -> torch.Tensor | float:
        total = 0.0
        for ev in layer.timing:
            if ev.step == t - 1:  # a timing spike at step s reaches the current at s + 1
                total = total + torch.as_tensor(np.asarray(ev.value, np.float64))
        return total

    def _run_population(self, layer: IntegerLayer, t_in: torch.Tensor):
        b = t_in.shape[0]
        shape = (b, *layer.shape)
        u = torch.zeros(shape, dtype=torch.float64)
        v = torch.zeros(shape, dtype=torch.float64)
        first = torch.full(shape, -1.0, dtype=torch.float64)
        count = torch.zeros(shape, dtype=torch.float64)
        fired_last = torch.zeros(shape, dtype=torch.bool)
        vth = torch.as_tensor(np.asarray(layer.vth, np.float64) * 64.0)
        inh = float(layer.inhibit[0] << layer.inhibit[1])
        # nothing reaches the layer before step T_{n-1} + 1 (u = v = 0 and vth >= 0: no spike); by the
        # forced spike at T_n + K every neuron has fired once, and self-inhibition keeps it silent after
        last = layer.window_start + self.k
        for t in range(layer.source_start + 1, last + 1):
            a_in = self._synaptic(layer, (t_in == t - 1).double()) + self._timing_current(layer, t)
            a_in = a_in - inh * fired_last.double()
            u = _wrap_u(u + 64.0 * a_in)
            v = _saturate_v(v + u)
            spikes = v > vth
            v = torch.where(spikes, torch.zeros_like(v), v)
            first = torch.where(spikes & (first < 0), torch.full_like(first, float(t)), first)
            count += spikes.double()
            fired_last = spikes
        return first, count

    def _run_readout(self, layer: IntegerLayer, t_in: torch.Tensor) -> torch.Tensor:
        b = t_in.shape[0]
        u = torch.zeros((b, *layer.shape), dtype=torch.float64)
        v = torch.zeros_like(u)
        for t in range(layer.source_start + 1, layer.window_start + 1):
            u = _wrap_u(u + 64.0 * (self._synaptic(layer, (t_in == t - 1).double()) + self._timing_current(layer, t)))
            v = _saturate_v(v + u)
        return (v / 64.0).flatten(1)

    def chip_graph(self):
        """This network as a chip IR graph (``ptsnn.train.ttfs_chip``: mapping, payloads, readout)."""
        from ptsnn.train.ttfs_chip import chip_graph

        return chip_graph(self)

    # -------------------------------------------------------------------------------------- export
    def export(self) -> dict:
        """The integer parameters per layer as plain numpy / Python values (docs/ttfs.md, "Export")."""
        layers = []
        for l in self.layers:
            d = dict(name=l.name, kind=l.kind, source=l.source, source_shape=tuple(l.source_shape),
                     shape=tuple(l.shape), source_start=int(l.source_start), window_start=int(l.window_start),
                     vth=np.asarray(l.vth, np.int64).copy(), inhibit_mant=int(l.inhibit[0]),
                     inhibit_exp=int(l.inhibit[1]),
                     timing=[dict(name=t.name, step=int(t.step), mant=np.asarray(t.mant, np.int64).copy(),
                                  exp=int(t.exp)) for t in l.timing])
            if l.kind == "maxpool":
                d.update(pool_size=int(l.pool_size))
            else:
                d.update(weight_mant=l.weight_mant.astype(np.int64).copy(), weight_exp=int(l.weight_exp),
                         stride=int(l.stride), padding=int(l.padding))
            if l.kind == "readout":
                d.update(read_step=int(l.window_start), scale=float(l.scale))
            layers.append(d)
        return dict(format=FORMAT, steps_per_window=int(self.k), input_max=float(self.input_max),
                    input_shape=tuple(self.input_shape), input_window_start=0, layers=layers,
                    final_step=int(self.layers[-1].window_start))
