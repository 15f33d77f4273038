"""The chip IR: the one integer description of what runs on the chip.

Small typed nodes in the manner of NIR (``nir/ir``): shapes and ranges are checked on construction; meaning is
kept apart from serialisation (``ptsnn.chip.serialize``). Every consumer (netx writer, Lava graph builder,
simulator, design rules, reports) reads this and nothing else.

Semantics (Lava 0.10 ``fixed_pt``, see ``ptsnn.numerics.loihi`` and ``ptsnn.chip.kernels``):

* synapse groups deliver ``weight * payload`` (shifted by ``weight_exp``) to their target ``1 + delay`` steps
  after the source emitted: :class:`Synapses` (dense, per-synapse delays; Lava ``Dense``/``DelayDense``) and
  :class:`ConvSynapses` (2-D convolution; Lava ``Conv``; sum pooling is a grouped all-ones convolution,
  :func:`sum_pool`);
* neuron populations integrate the sum of their incoming groups: :class:`CubaPopulation` (CUBA LIF),
  :class:`FireOncePopulation` (a CUBA neuron that fires at most once per inference: time-to-first-spike;
  realised with a self-inhibiting synapse into its persistent current), :class:`SigmaDeltaPopulation`
  (graded ReLU sigma-delta); an :class:`Accumulator` (Lava ``Sigma``) sums its input for the host to read;
* a :class:`HostInput` is the host-to-chip boundary emitting graded payloads (``message_bits`` > 0) or spikes.

Adding a node type: docs/design.md, "How to add a node type".
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ptsnn.numerics import loihi

WEIGHT_MIN, WEIGHT_MAX = -256, 254
WEIGHT_EXP_LIMIT = 7  # Lava Dense/Conv weight_exp range used here: -7..7
BIAS_LIMIT = 2**12 - 1  # 13-bit signed mantissa (bias_exp fixed at 6, netx)
THRESHOLD_LIMIT = 2**17 - 1
SIZE_LIMIT = 2**24  # neurons per population: far beyond a chip, small enough to refuse absurd files early
MAX_FLUSH_STEPS = 1 << 16


class IRError(ValueError):
    """An IR node or graph is inconsistent (a bug in a pass or a malformed bundle)."""


def _int_array(x, name: str, ndim: int) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != ndim:
        raise IRError(f"{name}: expected {ndim}-D array, got shape {a.shape}")
    if a.dtype == bool or np.iscomplexobj(a) or not (np.issubdtype(a.dtype, np.integer)
                                                     or np.issubdtype(a.dtype, np.floating) or a.size == 0):
        raise IRError(f"{name}: expected integers, got dtype {a.dtype}")
    if a.size and not np.issubdtype(a.dtype, np.integer):
        if not np.all(np.isfinite(a)) or not np.all(np.equal(np.mod(a, 1), 0)):
            raise IRError(f"{name}: values must be finite integers")
    return a.astype(np.int64)


def _check_int(value, what: str, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= int(value) <= hi:
        raise IRError(f"{what} {value!r} not an integer in {lo}..{hi}")


def _check_size(name: str, size) -> None:
    _check_int(size, f"{name}: size", 1, SIZE_LIMIT)


def _check_bias(name: str, bias: np.ndarray, size: int) -> list[str]:
    problems = []
    if bias.shape != (size,):
        problems.append(f"bias shape {bias.shape} != ({size},)")
    if bias.size and np.abs(bias).max() > BIAS_LIMIT:
        problems.append(f"bias mantissa {int(np.abs(bias).max())} exceeds 13-bit signed")
    return problems


# ------------------------------------------------------------------------------------------------- nodes
@dataclass(frozen=True, eq=False)
class HostInput:
    name: str
    size: int
    message_bits: int  # graded payload bits (0: binary spikes)
    levels: int = 1  # payload range -levels..levels for signed graded input
    steps_per_frame: int = 1

    def __post_init__(self):
        _check_size(self.name, self.size)
        _check_int(self.message_bits, f"input {self.name}: message_bits", 0, 24)
        _check_int(self.levels, f"input {self.name}: levels", 0, 2**23)
        _check_int(self.steps_per_frame, f"input {self.name}: steps_per_frame", 1, 1024)


@dataclass(frozen=True, eq=False)
class CubaPopulation:
    name: str
    size: int
    i_decay: int  # netx iDecay (Lava du = iDecay - 1; 0 = no current decay, 4096 = no current memory)
    v_decay: int  # netx vDecay (Lava dv)
    vth: int  # threshold mantissa (spike when v > vth << 6)
    bias: np.ndarray  # bias mantissas, bias_exp fixed at 6 (netx)
    role: str = "plif"  # plif | coincidence (what the model meant; arithmetic is the same)
    scale_exponent: int | None = None  # the population's weight exponent chosen by quantization

    def __post_init__(self):
        _check_size(self.name, self.size)
        object.__setattr__(self, "bias", _int_array(self.bias, f"{self.name}.bias", 1))
        problems = _check_bias(self.name, self.bias, self.size)
        for what, value, lo, hi in (("i_decay", self.i_decay, 0, loihi.DECAY_UNITY),
                                    ("v_decay", self.v_decay, 0, loihi.DECAY_UNITY),
                                    ("vth", self.vth, 0, THRESHOLD_LIMIT)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
                problems.append(f"{what} {value!r} not in {lo}..{hi}")
        if self.scale_exponent is not None:
            if isinstance(self.scale_exponent, bool) or not isinstance(self.scale_exponent, (int, np.integer)) \
                    or not -64 <= self.scale_exponent <= 64:
                problems.append(f"scale_exponent {self.scale_exponent!r} not an integer in -64..64")
        if problems:
            raise IRError(f"population {self.name}: " + "; ".join(problems))

    def params(self) -> loihi.CubaParams:
        return loihi.CubaParams.from_netx(self.i_decay, self.v_decay, self.vth, self.bias)


@dataclass(frozen=True, eq=False)
class FireOncePopulation(CubaPopulation):
    """CUBA neurons that fire at most once per inference (time-to-first-spike coding).

    Realised with Lava's standard processes, so it runs unchanged on Loihi 2: a ``Dense`` self-connection of
    weight ``inhibit_weight << inhibit_exp`` (negative) from each neuron to itself feeds its own spike back into
    its current one step later. With no current decay (``i_decay = 0``) that inhibition persists, so the
    voltage can never climb back over the threshold (the design rule ``fire_once_inhibition`` checks that the
    inhibition outweighs every input the neuron can still receive)."""

    role: str = "ttfs"
    inhibit_weight: int = -255  # the most negative weight an inhibitory-only Dense holds
    inhibit_exp: int = WEIGHT_EXP_LIMIT

    def __post_init__(self):
        super().__post_init__()
        _check_int(self.inhibit_weight, f"population {self.name}: inhibit_weight", -255, -1)
        _check_int(self.inhibit_exp, f"population {self.name}: inhibit_exp", -WEIGHT_EXP_LIMIT, WEIGHT_EXP_LIMIT)

    def inhibition(self) -> int:
        """What the self-synapse adds to ``a_in`` the step after a spike."""
        return int(loihi.shift_exp(np.int64(self.inhibit_weight), self.inhibit_exp))


@dataclass(frozen=True, eq=False)
class SigmaDeltaPopulation:
    """Graded ReLU sigma-delta neurons (Lava ``SigmaDelta``, fixed_pt, as netx builds them)."""

    name: str
    size: int
    vth: int  # delta threshold mantissa
    bias: np.ndarray
    message_bits: int = loihi.SDNN_DEFAULT_MESSAGE_BITS

    def __post_init__(self):
        _check_size(self.name, self.size)
        object.__setattr__(self, "bias", _int_array(self.bias, f"{self.name}.bias", 1))
        problems = _check_bias(self.name, self.bias, self.size)
        if isinstance(self.vth, bool) or not isinstance(self.vth, (int, np.integer)) or not 0 <= self.vth <= THRESHOLD_LIMIT:
            problems.append(f"vth {self.vth!r} not in 0..{THRESHOLD_LIMIT}")
        if isinstance(self.message_bits, bool) or not isinstance(self.message_bits, (int, np.integer)) \
                or not 1 <= self.message_bits <= 24:
            problems.append(f"message_bits {self.message_bits!r} not in 1..24")
        if problems:
            raise IRError(f"population {self.name}: " + "; ".join(problems))


@dataclass(frozen=True, eq=False)
class Accumulator:
    name: str
    size: int
    scale_exponent: int = 0  # host divides the read value by 2**scale_exponent (and the step count)

    def __post_init__(self):
        _check_size(self.name, self.size)
        _check_int(self.scale_exponent, f"accumulator {self.name}: scale_exponent", -64, 64)


NeuronNode = CubaPopulation | FireOncePopulation | SigmaDeltaPopulation
Node = HostInput | NeuronNode | Accumulator


# ----------------------------------------------------------------------------------------- synapse groups
@dataclass(frozen=True, eq=False)
class Synapses:
    """Dense synapse group: ``weight[o, i]``, per-synapse extra delay ``delay[o, i]`` (0..62)."""

    name: str
    source: str
    target: str
    weight: np.ndarray  # [out, in] integer mantissas
    delay: np.ndarray  # [out, in] extra delay steps 0..62 (the one-step synapse latency is implicit)
    weight_exp: int = 0

    def __post_init__(self):
        w = _int_array(self.weight, f"{self.name}.weight", 2)
        d = _int_array(self.delay, f"{self.name}.delay", 2)
        object.__setattr__(self, "weight", w)
        object.__setattr__(self, "delay", d)
        if d.shape != w.shape:
            raise IRError(f"synapses {self.name}: delay shape {d.shape} != weight shape {w.shape}")
        _check_weights(self.name, w)
        if d.size and (d.min() < 0 or d.max() > loihi.MAX_DELAY):
            raise IRError(f"synapses {self.name}: delays {d.min()}..{d.max()} outside 0..{loihi.MAX_DELAY}")
        _check_int(self.weight_exp, f"synapses {self.name}: weight_exp", -WEIGHT_EXP_LIMIT, WEIGHT_EXP_LIMIT)

    @property
    def shape(self) -> tuple[int, int]:
        """(target size, source size)."""
        return tuple(self.weight.shape)

    @property
    def max_delay(self) -> int:
        return int(self.delay.max(initial=0))

    def count(self) -> int:
        """Synapses that exist (non-zero weights)."""
        return int(np.count_nonzero(self.weight))

    def fan_out(self) -> np.ndarray:
        """Existing synapses per source neuron ``[in]``."""
        return np.count_nonzero(self.weight, axis=0).astype(np.int64)

    def fan_in(self) -> np.ndarray:
        """Existing synapses per target neuron ``[out]``."""
        return np.count_nonzero(self.weight, axis=1).astype(np.int64)


def _check_weights(name: str, w: np.ndarray) -> None:
    if w.size and (w.min() < WEIGHT_MIN or w.max() > WEIGHT_MAX):
        raise IRError(f"synapses {name}: weights {w.min()}..{w.max()} outside {WEIGHT_MIN}..{WEIGHT_MAX}")


def _pair(value, what: str, lo: int) -> tuple[int, int]:
    v = tuple(int(x) for x in np.broadcast_to(np.asarray(value), (2,)))
    if any(x < lo or x > 1024 for x in v):
        raise IRError(f"{what} {v} outside {lo}..1024")
    return v


def conv_output_hw(in_hw, kernel, stride, padding, dilation) -> tuple[int, int]:
    return tuple((h + 2 * p - d * (k - 1) - 1) // s + 1
                 for h, k, s, p, d in zip(in_hw, kernel, stride, padding, dilation))


@dataclass(frozen=True, eq=False)
class ConvSynapses:
    """2-D convolution synapse group (cross-correlation, PyTorch/netx convention) between neuron grids laid out
    ``(C, H, W)`` in C order: ``weight[o, i / groups, kH, kW]``; no delays (Lava's ``Conv`` has none)."""

    name: str
    source: str
    target: str
    weight: np.ndarray
    in_shape: tuple[int, int, int]  # (C, H, W) of the source
    out_shape: tuple[int, int, int]  # (C, H, W) of the target
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    # no weight exponent: Lava's fixed_pt Conv (PyConvModelFixed) ignores its weight_exp, so the mantissas
    # are the weights

    def __post_init__(self):
        w = _int_array(self.weight, f"{self.name}.weight", 4)
        object.__setattr__(self, "weight", w)
        _check_weights(self.name, w)
        for attr, lo in (("stride", 1), ("padding", 0), ("dilation", 1)):
            object.__setattr__(self, attr, _pair(getattr(self, attr), f"conv {self.name}: {attr}", lo))
        for attr in ("in_shape", "out_shape"):
            shape = tuple(int(x) for x in getattr(self, attr))
            if len(shape) != 3 or min(shape) < 1 or int(np.prod(shape)) > SIZE_LIMIT:
                raise IRError(f"conv {self.name}: {attr} {shape} is not a (C, H, W) grid")
            object.__setattr__(self, attr, shape)
        _check_int(self.groups, f"conv {self.name}: groups", 1, 1 << 16)
        o, cg, kh, kw = w.shape
        c_in, h, wd = self.in_shape
        problems = []
        if c_in % self.groups or o % self.groups or cg * self.groups != c_in:
            problems.append(f"weight {w.shape} with groups {self.groups} does not fit {c_in} input channels")
        hw = conv_output_hw((h, wd), (kh, kw), self.stride, self.padding, self.dilation)
        if min(hw) < 1 or (o, *hw) != self.out_shape:
            problems.append(f"output {self.out_shape} != ({o}, {hw[0]}, {hw[1]}) from input {self.in_shape}")
        if problems:
            raise IRError(f"conv {self.name}: " + "; ".join(problems))

    @property
    def shape(self) -> tuple[int, int]:
        """(target size, source size), as for dense groups."""
        return int(np.prod(self.out_shape)), int(np.prod(self.in_shape))

    @property
    def max_delay(self) -> int:
        return 0

    def count(self) -> int:
        """Synapses that exist: non-zero kernel taps that land inside the input grid, over every output."""
        return int(self.fan_out().sum())

    def fan_out(self) -> np.ndarray:
        """Existing synapses per source neuron ``[C*H*W]``."""
        return _conv_fan_out(self)

    def fan_in(self) -> np.ndarray:
        """Existing synapses per target neuron ``[C'*H'*W']``: the convolution of an all-ones input with the
        0/1 mask of the kernel (taps that fall on padding are no synapses)."""
        from ptsnn.chip.synapses import conv2d_exact

        ones = np.ones((1, *self.in_shape), np.int64)
        mask = (self.weight != 0).astype(np.int64)
        return conv2d_exact(ones, mask, self.stride, self.padding, self.dilation, self.groups).reshape(-1)


def _conv_fan_out(e: ConvSynapses) -> np.ndarray:
    """Fan-out per input neuron for large grids: for each kernel tap, the outputs whose receptive field puts
    that tap on a given input position (pure index arithmetic, no dense matrix)."""
    c, h, w = e.in_shape
    o, cg, kh, kw = e.weight.shape
    og = o // e.groups
    _, ho, wo = e.out_shape
    counts = np.zeros((c, h, w), np.int64)
    (sh, sw), (ph, pw), (dh, dw) = e.stride, e.padding, e.dilation
    for g in range(e.groups):
        taps = np.count_nonzero(e.weight[g * og:(g + 1) * og], axis=0)  # [cg, kh, kw]: outputs using each tap
        for i in range(kh):
            rows = np.arange(ho) * sh + i * dh - ph
            rows = rows[(rows >= 0) & (rows < h)]
            for j in range(kw):
                cols = np.arange(wo) * sw + j * dw - pw
                cols = cols[(cols >= 0) & (cols < w)]
                if rows.size and cols.size:
                    counts[g * cg:(g + 1) * cg][:, rows[:, None], cols[None, :]] += taps[:, i, j][:, None, None]
    return counts.reshape(-1)


def sum_pool(name: str, source: str, target: str, in_shape: tuple[int, int, int], kernel: int,
             stride: int | None = None) -> ConvSynapses:
    """Sum pooling over ``kernel x kernel`` windows as a grouped all-ones convolution (what Lava's ``Conv``
    realises; netx has no pooling block). Average pooling is this with the 1/k^2 folded into the next weights;
    TTFS max pooling ("earliest spike wins") is this into fire-once neurons that fire on their first input."""
    c, h, w = in_shape
    stride = kernel if stride is None else stride
    hw = conv_output_hw((h, w), (kernel, kernel), (stride, stride), (0, 0), (1, 1))
    return ConvSynapses(name, source, target, np.ones((c, 1, kernel, kernel), np.int64), in_shape, (c, *hw),
                        (stride, stride), groups=c)


SynapseGroup = Synapses | ConvSynapses


# ------------------------------------------------------------------------------------------------- graph
@dataclass(eq=False)
class ChipGraph:
    inputs: list[HostInput]
    populations: list[NeuronNode]
    accumulators: list[Accumulator]
    synapses: list[SynapseGroup]
    flush_steps: int = 0
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        self.validate()

    def nodes(self) -> dict[str, Node]:
        return {n.name: n for n in [*self.inputs, *self.populations, *self.accumulators]}

    def incoming(self, target: str) -> list[SynapseGroup]:
        return [s for s in self.synapses if s.target == target]

    def outgoing(self, source: str) -> list[SynapseGroup]:
        return [s for s in self.synapses if s.source == source]

    def message_bits(self, source: str) -> int:
        """Bits of the payload ``source`` sends (0: binary spikes)."""
        node = self.nodes()[source]
        return int(getattr(node, "message_bits", 0)) if not isinstance(node, CubaPopulation) else 0

    def validate(self) -> None:
        _check_int(self.flush_steps, "flush_steps", 0, MAX_FLUSH_STEPS)
        if not self.inputs:
            raise IRError("the graph has no host input")
        names = [n.name for n in [*self.inputs, *self.populations, *self.accumulators, *self.synapses]]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise IRError(f"duplicate names: {', '.join(dupes)}")
        nodes = self.nodes()
        order = {n.name: i for i, n in enumerate([*self.inputs, *self.populations, *self.accumulators])}
        for s in self.synapses:
            if s.source not in nodes or s.target not in nodes:
                raise IRError(f"synapses {s.name}: unknown source/target {s.source}->{s.target}")
            src, dst = nodes[s.source], nodes[s.target]
            if isinstance(src, Accumulator) or isinstance(dst, HostInput):
                raise IRError(f"synapses {s.name}: {s.source}->{s.target} goes against the host/chip boundary")
            if s.shape != (dst.size, src.size):
                raise IRError(f"synapses {s.name}: shape {s.shape} != ({dst.size}, {src.size})")
            if order[s.source] >= order[s.target]:
                raise IRError(f"synapses {s.name}: {s.source} must come before {s.target} (feed-forward order)")
        for n in [*self.populations, *self.accumulators]:
            if not self.incoming(n.name):
                raise IRError(f"{n.name} has no incoming synapses")

    # serialisation lives in ptsnn.chip.serialize; these two are conveniences
    def to_dir(self, directory, stem: str = "chip_graph"):
        from ptsnn.chip.serialize import write_chip_graph

        return write_chip_graph(self, directory, stem)

    @classmethod
    def from_dir(cls, directory, stem: str = "chip_graph") -> "ChipGraph":
        from ptsnn.chip.serialize import read_chip_graph

        return read_chip_graph(directory, stem)
