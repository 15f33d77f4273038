"""Spiking building blocks that are deployable by construction.

Everything here is one of three chip primitives, computed in *chip time* (every synapse group delivers its
current ``1 + delay`` steps after the presynaptic spike, as Lava's Dense/DelayDense do):

* :class:`PLIFPopulation`: PLIF neurons (Fang et al. 2021: ``V = V + (X - V) * sigmoid(w)``, hard reset)
  realised as CUBA neurons with no current memory (netx ``iDecay = 4096``), voltage decay
  ``dv = 4096 * sigmoid(w)`` and the input scaling ``sigmoid(w)`` folded into the integer weights.
  Inputs are a sum of :class:`SynapseGroup` currents (residual joins, prompt-driven bias current) plus a
  constant bias.
* :class:`CoincidencePopulation`: the product of two binary spike trains (an AND), realised as a CUBA
  neuron with no memory, two unit synapse groups and a threshold between one and two inputs.
* The readout is a non-spiking accumulator of synaptic input (Lava's ``Sigma``), see ``model.py``.

In quantization-aware mode (``quantized=True`` after :meth:`PLIFPopulation.freeze_scale`), the forward pass
computes exactly the integers of ``ptsnn.numerics.loihi`` in float64 (exact below 2**53), with straight-through
gradients for rounding and a surrogate gradient for the spike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ptsnn.numerics import loihi

WEIGHT_MANTISSA_MAX = 254  # even 8-bit signed mantissas, slayer/netx convention: -256..254
WEIGHT_MANTISSA_MIN = -256
BIAS_MANTISSA_LIMIT = 2**12 - 1  # 13-bit signed bias mantissa
THRESHOLD_LIMIT = 2**17 - 1  # 17-bit threshold mantissa
NO_CURRENT_MEMORY_I_DECAY = loihi.DECAY_UNITY  # netx iDecay = 4096 -> Lava du = 4095 (+1 offset): u = a_in << 6
MAX_DECAY_REGISTER = loihi.DECAY_UNITY - 1  # du/dv are 12-bit registers (0..4095)


# ------------------------------------------------------------------------------------------ surrogates
class _SpikeFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, kind: str, alpha: float):
        ctx.save_for_backward(x)
        ctx.kind, ctx.alpha = kind, alpha
        return (x > 0).to(x.dtype)  # strict: Loihi spikes when v > threshold

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        a = ctx.alpha
        if ctx.kind == "atan":
            g = a / 2 / (1 + (math.pi / 2 * a * x) ** 2)
        elif ctx.kind == "sigmoid":
            s = torch.sigmoid(a * x)
            g = a * s * (1 - s)
        else:  # triangle
            g = torch.clamp(1 - (a * x).abs(), min=0) * a
        return grad * g, None, None


def spike(x: torch.Tensor, kind: str = "atan", alpha: float = 2.0) -> torch.Tensor:
    return _SpikeFn.apply(x, kind, alpha)


class _RoundSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return torch.round(x)

    @staticmethod
    def backward(ctx, grad):
        return grad


def round_ste(x: torch.Tensor) -> torch.Tensor:
    return _RoundSTE.apply(x)


class _TruncSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        # int64 conversion truncates toward zero like torch.trunc, ~15x faster on CPU (values stay < 2**36)
        return x.long().to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        return grad


def trunc_ste(x: torch.Tensor) -> torch.Tensor:
    return _TruncSTE.apply(x)


def quantize_weight(w_scaled: torch.Tensor) -> torch.Tensor:
    """Even mantissas in [-256, 254] (netx's lossless 8-bit range), straight-through."""
    return torch.clamp(2 * round_ste(w_scaled / 2), WEIGHT_MANTISSA_MIN, WEIGHT_MANTISSA_MAX)


# ------------------------------------------------------------------------------------------- delays
def delay_time(x: torch.Tensor, steps: int) -> torch.Tensor:
    """Shift ``x`` ``[B, T, N]`` later in time by ``steps`` (zeros enter at the start)."""
    if steps == 0:
        return x
    if steps >= x.shape[1]:
        return torch.zeros_like(x)
    return torch.cat([x.new_zeros(x.shape[0], steps, x.shape[2]), x[:, :-steps]], dim=1)


def delay_channels(x: torch.Tensor, delays: tuple[int, ...]) -> torch.Tensor:
    """Per-input-channel delays (``len(delays) == N``), as netx's 1-D per-input ``delay`` dataset."""
    uniq = sorted(set(delays))
    if len(uniq) == 1:
        return delay_time(x, uniq[0])
    out = torch.empty_like(x)
    idx = torch.as_tensor(delays, device=x.device)
    for d in uniq:
        mask = idx == d
        out[:, :, mask] = delay_time(x[:, :, mask], d)
    return out


# ------------------------------------------------------------------------------------------ synapses
class SynapseGroup(nn.Module):
    """A dense synapse group from population ``source`` with per-input-channel ``delays``.

    ``input_scale`` is the float value of one unit of presynaptic payload: 1 for binary spikes, ``1/q`` for
    graded host features quantized to ``q`` levels. ``weight=None`` with ``fixed`` gives a fixed integer
    matrix (coincidence wiring)."""

    def __init__(self, source: str, in_features: int, out_features: int, delays: tuple[int, ...] | None = None,
                 input_scale: float = 1.0, diagonal: bool = False, init_scale: float = 1.0,
                 identity_gain: float | None = None):
        super().__init__()
        self.source = source
        self.in_features, self.out_features = in_features, out_features
        self.delays = tuple(int(d) for d in (delays if delays is not None else (0,) * in_features))
        if len(self.delays) != in_features:
            raise ValueError(f"{len(self.delays)} delays for {in_features} inputs")
        self.input_scale = float(input_scale)
        self.diagonal = diagonal
        if diagonal:
            if in_features != out_features:
                raise ValueError("a diagonal (one-to-one) group needs in == out")
            self.weight = nn.Parameter(torch.full((out_features,), float(init_scale)))
        else:
            w = torch.empty(out_features, in_features)
            nn.init.kaiming_uniform_(w, a=math.sqrt(5))
            self.weight = nn.Parameter(w * init_scale)
        # A residual identity merged into the same synapses: W + diag(gain). It shares the group's per-channel
        # delays, so the whole block is one synapse matrix (netx-expressible, one 8-bit range).
        self.gain = None
        if identity_gain is not None:
            if in_features != out_features:
                raise ValueError("an identity gain needs in == out")
            self.gain = nn.Parameter(torch.full((out_features,), float(identity_gain)))

    def effective(self) -> torch.Tensor:
        """The float weights the group applies: a vector (diagonal group) or ``W (+ diag(gain))``."""
        if self.gain is not None:
            return self.weight + torch.diag(self.gain)
        return self.weight

    def matrix(self) -> torch.Tensor:
        w = self.effective()
        return torch.diag(w) if self.diagonal else w

    def current(self, pre: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """Synaptic input ``[B, T, out]`` with the group's latency: one step plus the channel delays."""
        shifted = delay_channels(pre, tuple(d + 1 for d in self.delays))
        if self.diagonal:
            return shifted * weight
        return shifted @ weight.t()


@dataclass
class FrozenScale:
    """Integer mapping of one population, fixed when quantization-aware mode starts."""

    scale: float  # integer units of v per float unit (a power of two: the layer's exponent)

    @property
    def exponent(self) -> int:
        return int(round(math.log2(self.scale)))


class PLIFPopulation(nn.Module):
    """PLIF neurons fed by one or more synapse groups (all summed into one membrane, Loihi-style)."""

    def __init__(self, name: str, size: int, groups: list[SynapseGroup], tau_init: float, threshold: float,
                 surrogate: str, alpha: float, bias: bool = True):
        super().__init__()
        self.name, self.size = name, size
        self.groups = nn.ModuleList(groups)
        self.decay_param = nn.Parameter(torch.tensor(-math.log(tau_init - 1.0)))  # sigmoid(w) = 1 / tau
        self.bias = nn.Parameter(torch.zeros(size)) if bias else None
        self.threshold = float(threshold)
        self.surrogate, self.alpha = surrogate, float(alpha)
        self.register_buffer("scale_exponent", torch.tensor(0, dtype=torch.long))  # set by freeze_scale

    @property
    def frozen(self) -> FrozenScale:
        return FrozenScale(2.0 ** int(self.scale_exponent))

    # -- float and integer parameters ------------------------------------------------------------
    def leak(self) -> torch.Tensor:
        return torch.sigmoid(self.decay_param)

    def v_decay_int(self) -> torch.Tensor:
        """Loihi voltage decay register (netx vDecay): v <- v * (4096 - dv) >> 12."""
        return torch.clamp(round_ste(self.leak() * loihi.DECAY_UNITY), 0, MAX_DECAY_REGISTER)

    def choose_scale(self) -> FrozenScale:
        """Largest power-of-two scale at which every folded weight fits the 8-bit mantissa range and the
        threshold fits 17 bits (the per-layer weight exponent)."""
        k = float(self.leak().detach())
        largest = max(float((k * g.effective().detach().abs()).max() * g.input_scale) for g in self.groups)
        exp = math.floor(math.log2(WEIGHT_MANTISSA_MAX / max(largest, 1e-12)))
        exp = min(exp, math.floor(math.log2(THRESHOLD_LIMIT / self.threshold)), 14)
        return FrozenScale(2.0**exp)

    def freeze_scale(self, frozen: FrozenScale | None = None) -> None:
        self.scale_exponent.fill_((frozen or self.choose_scale()).exponent)

    def integer_weight(self, group: SynapseGroup) -> torch.Tensor:
        k = self.v_decay_int() / loihi.DECAY_UNITY  # the leak the chip really applies
        return quantize_weight(self.frozen.scale * k * group.effective() * group.input_scale)

    def integer_bias(self) -> torch.Tensor:
        if self.bias is None:
            return torch.zeros(self.size)
        k = self.v_decay_int() / loihi.DECAY_UNITY
        return torch.clamp(round_ste(self.frozen.scale * k * self.bias), -BIAS_MANTISSA_LIMIT, BIAS_MANTISSA_LIMIT)

    def integer_threshold(self) -> int:
        return int(round(self.frozen.scale * self.threshold))

    # -- dynamics ------------------------------------------------------------------------------------
    def forward(self, pres: dict[str, torch.Tensor], quantized: bool) -> torch.Tensor:
        if quantized:
            return self._forward_integer(pres)
        k = self.leak()
        current = sum(g.current(pres[g.source], g.effective()) for g in self.groups)
        if self.bias is not None:
            current = current + self.bias
        current = k * current
        v = current.new_zeros(current.shape[0], self.size)
        out = []
        for t in range(current.shape[1]):
            v = v * (1 - k) + current[:, t]
            s = spike(v - self.threshold, self.surrogate, self.alpha)
            v = v * (1 - s)
            out.append(s)
        return torch.stack(out, 1)

    def _forward_integer(self, pres: dict[str, torch.Tensor]) -> torch.Tensor:
        """Exactly Lava's CUBA fixed_pt with iDecay = 4096: u = a_in << 6, v = trunc(v*(4096-dv)/4096) + u +
        (bias << 6), saturate, spike if v > vth << 6, reset to 0. float64 keeps every integer exact."""
        a_in = sum(g.current(pres[g.source].double(), self.integer_weight(g).double()) for g in self.groups)
        u = wrap_current_ste(a_in * 2**loihi.ACTIVATION_SHIFT)
        bias = self.integer_bias().double() * 2**loihi.NETX_BIAS_EXP
        keep = (loihi.DECAY_UNITY - self.v_decay_int().double()) / loihi.DECAY_UNITY
        vth = float(self.integer_threshold() * 2**loihi.THRESHOLD_SHIFT)
        unit = self.frozen.scale * 2**loihi.THRESHOLD_SHIFT  # integer v per float unit: surrogate width
        v = u.new_zeros(u.shape[0], self.size)
        out = []
        for t in range(u.shape[1]):
            v = trunc_ste(v * keep) + u[:, t] + bias
            v = torch.clamp(v, -loihi.STATE_LIMIT + 1, loihi.STATE_LIMIT - 1)
            s = spike((v - vth) / unit, self.surrogate, self.alpha)
            v = v * (1 - s)
            out.append(s)
        return torch.stack(out, 1).float()


class _WrapSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u):
        lim = float(loihi.STATE_LIMIT)
        wrapped = torch.where(u > lim, u - 2 * lim, u)
        return torch.where(wrapped <= -lim, u + 2 * lim, wrapped)

    @staticmethod
    def backward(ctx, grad):
        return grad


def wrap_current_ste(u: torch.Tensor) -> torch.Tensor:
    """The 24-bit current register wraps (Lava): reproduced, with an identity gradient."""
    return _WrapSTE.apply(u)


class CoincidencePopulation(nn.Module):
    """``out[p, j] = a[p] AND b[j]`` for binary spike trains ``a`` (size P) and ``b`` (size J), one step later.

    Chip realisation (fixed integers, no training): CUBA with iDecay = 4096 (no current memory), vDecay = 4095
    (the largest 12-bit decay: any v below 4096 decays to 0 in one step), weight mantissa 2 from each side,
    threshold 3: v = (2 + 2) << 6 = 256 > 192 only when both inputs spike; one input leaves 128, gone next step."""

    WEIGHT = 2
    THRESHOLD = 3

    def __init__(self, name: str, source_a: str, size_a: int, source_b: str, size_b: int):
        super().__init__()
        self.name = name
        self.source_a, self.size_a, self.source_b, self.size_b = source_a, size_a, source_b, size_b
        self.size = size_a * size_b

    def forward(self, pres: dict[str, torch.Tensor], quantized: bool) -> torch.Tensor:
        a = delay_time(pres[self.source_a], 1)
        b = delay_time(pres[self.source_b], 1)
        return (a.unsqueeze(-1) * b.unsqueeze(-2)).flatten(2)  # [B, T, P*J], index p*J + j

    def connectivity(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Fixed integer matrices from source a ``[P*J, P]`` and from source b ``[P*J, J]``."""
        eye_a = torch.eye(self.size_a).repeat_interleave(self.size_b, 0)
        eye_b = torch.eye(self.size_b).repeat(self.size_a, 1)
        return self.WEIGHT * eye_a, self.WEIGHT * eye_b
