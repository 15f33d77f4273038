"""lava-dl netx HDF5: a typed description of the layers, a writer and a reader.

The layout is the one ``lava.lib.dl.netx.hdf5.Network`` reads (lava-dl 0.6, ``netx/hdf5.py`` and
``NetDict``): group ``layer/<i>`` in data-flow order, each with a ``type`` byte string (``input``, ``dense``,
``dense_rec``, ``conv``, ``flatten``), ``shape`` (slayer's order: C,H,W for conv layers, which netx reverses
to Lava's W,H,C; dense: ``(out,)``), integer ``weight`` (dense ``(out, in)``, conv ``(out, in/groups, kH,
kW)``), ``weight_rec`` (dense_rec), optional ``bias`` and ``delay`` (dense) and conv ``stride``, ``padding``,
``dilation`` (H,W order), ``groups``, and a ``neuron`` group (``type`` CUBA/LOIHI with ``iDecay``, ``vDecay``,
``vThMant``; or SDNN with ``vThMant`` and optional ``sigma_output``). Writing goes to a temporary file that
replaces the target only when complete.

What netx does with a file, and so what the reader mirrors (see docs/simulator.md):

* an input layer's ``weight``/``bias`` become the Input block's unused ``transform`` (netx reads them with
  ``int(...)``, so they must be scalars); the input neuron gets no bias;
* float datasets are truncated toward zero (``NetDict`` copies ``weight``/``bias`` with ``astype(int)``);
  delays above 62 are clipped to 0..62;
* conv ``delay`` datasets are ignored;
* a ``neuron/messageBits`` dataset makes netx hand Lava an HDF5 handle instead of a number, and the Lava run
  fails; such files are refused with a one-line error (the writer never writes the key);
* pool, convT, unpool, average, concat (NotImplementedError in netx), complex dense and RF neurons are
  refused with a one-line error naming the layer.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ptsnn import safeio
from ptsnn.errors import InputError, RegisterWarning
from ptsnn.fileio import atomic_output
from ptsnn.numerics import loihi

SDNN_DEFAULT_MESSAGE_BITS = 16  # netx's default for SDNN neurons when the file has no messageBits
NETX_MAX_DELAY = 62
NETX_UNBUILDABLE = ("pool", "convT", "unpool", "average", "concat")  # netx raises NotImplementedError
# Loihi's registers as Lava's bit-accurate models document them (lava/proc/lif/models.py PyLifModelBitAcc):
CUBA_VTH_MAX = 2**17 - 1  # vth: unsigned 17 bits
DECAY_MAX = 4096  # iDecay (du + 1) and vDecay (dv) as fractions of 4096; netx writes 0..4096
BIAS_MANT_RANGE = (-(2**12), 2**12 - 1)  # bias_mant: signed 13 bits
SDNN_VTH_MAX = 2**24 - 1
INT32_RANGE = (-(2**31), 2**31 - 1)  # beyond this ptsnn does not follow Lava's arithmetic: refused


def _check_int32(value: int, what: str) -> None:
    if not INT32_RANGE[0] <= value <= INT32_RANGE[1]:
        raise ValueError(f"{what} {value} is outside int32; ptsnn does not follow Lava's arithmetic there")


@dataclass(frozen=True)
class CubaNeuronSpec:
    """netx ``neuron`` group of a CUBA (or LOIHI) neuron."""

    i_decay: int  # 0..4096; netx passes du = iDecay - 1 to Lava
    v_decay: int  # 0..4096
    vth_mant: int
    message_bits: int = 0  # > 0: the next synapse treats the (0/1) spikes as graded payloads
    type: str = "CUBA"

    def __post_init__(self):
        for what, value in (("iDecay", self.i_decay), ("vDecay", self.v_decay), ("vThMant", self.vth_mant)):
            _check_int32(int(value), what)
        if not 0 <= self.message_bits <= 24:
            raise ValueError(f"messageBits must be in 0..24, got {self.message_bits}")

    def register_problems(self) -> list[str]:
        """Values outside Loihi's registers (Lava's LIF simulates them anyway): one line each, with what
        Lava then computes."""
        out = []
        for what, name, value in (("iDecay", "current decay", self.i_decay), ("vDecay", "voltage decay", self.v_decay)):
            if not 0 <= value <= DECAY_MAX:
                out.append(f"{what} {value} is outside the 12-bit {name} register (0..4096); simulated as Lava does "
                           f"(decay factor {DECAY_MAX - value}/{DECAY_MAX}"
                           + (", which grows the state)" if value < 0 else ", which flips its sign)"))
        if self.vth_mant > CUBA_VTH_MAX:
            out.append(f"vThMant {self.vth_mant} is beyond the 17-bit threshold register (0..{CUBA_VTH_MAX}); "
                       "simulated as Lava does (vth << 6 is above the saturated voltage: the neurons never spike)")
        elif self.vth_mant < 0:
            out.append(f"vThMant {self.vth_mant} is negative, outside the unsigned 17-bit threshold register; "
                       "simulated as Lava does (a neuron spikes whenever v > vth << 6)")
        return out

    @property
    def graded(self) -> bool:
        return self.message_bits > 0


@dataclass(frozen=True)
class SdnnNeuronSpec:
    """netx ``neuron`` group of a sigma-delta (``SDNN``) neuron. netx builds a ``Delta`` process for an input
    layer, a ``Sigma`` for ``sigma_output`` layers and a ReLU ``SigmaDelta`` otherwise, with ``state_exp = 6``
    and ``hdf5.Network``'s ``spike_exp`` (default 6); their outputs are graded (16 message bits by default)."""

    vth_mant: int
    sigma_output: bool = False
    activation: str = "relu"  # netx ignores the key: SigmaDelta is always ReLU
    message_bits: int = SDNN_DEFAULT_MESSAGE_BITS
    type: str = "SDNN"

    def __post_init__(self):
        _check_int32(int(self.vth_mant), "vThMant")
        if not 0 <= self.message_bits <= 24:
            raise ValueError(f"messageBits must be in 0..24, got {self.message_bits}")

    def register_problems(self) -> list[str]:
        if 0 <= self.vth_mant <= SDNN_VTH_MAX:
            return []
        return [f"vThMant {self.vth_mant} is outside the 24-bit sigma-delta threshold register (0..{SDNN_VTH_MAX}); "
                "simulated as Lava does (vth << 12 held in int32, wrapping)"]

    @property
    def graded(self) -> bool:
        return self.message_bits > 0


NeuronSpec = CubaNeuronSpec | SdnnNeuronSpec


def _scalar_or_none(value, what: str):
    if value is None:
        return None
    arr = np.asarray(value)
    if arr.size != 1:
        raise ValueError(f"netx reads an input layer's {what} as one scalar, got shape {arr.shape}")
    return arr.reshape(())


@dataclass(frozen=True)
class InputLayerSpec:
    """``type = input``. Without a neuron it only states the input shape (slayer order, e.g. C,H,W); with one,
    the data enters that neuron's ``a_in`` directly (netx's Input block, no synapse, no latency). ``bias`` and
    ``weight`` are netx's scalar ``transform`` entries, which netx stores but never applies."""

    shape: tuple[int, ...]
    neuron: NeuronSpec | None = None
    bias: np.ndarray | None = None
    weight: np.ndarray | None = None

    def __post_init__(self):
        object.__setattr__(self, "bias", _scalar_or_none(self.bias, "bias"))
        object.__setattr__(self, "weight", _scalar_or_none(self.weight, "weight"))


@dataclass(frozen=True)
class DenseLayerSpec:
    """``type = dense`` (or ``dense_rec`` with ``weight_rec``): ``weight[out, in]`` integers, optional
    per-synapse ``delay`` (same shape, or per output / per input, 0..62) and per-neuron ``bias`` mantissas.
    ``neuron=None`` is netx's default for a dense layer without a neuron group (a non-leaky integrator with
    threshold ``1 << 17``, which can never spike)."""

    weight: np.ndarray
    neuron: NeuronSpec | None
    delay: np.ndarray | None = None
    bias: np.ndarray | None = None
    name: str = field(default="", compare=False)
    weight_rec: np.ndarray | None = None

    def __post_init__(self):
        if self.weight.ndim != 2:
            raise ValueError(f"dense weight must be 2-D (out, in), got shape {self.weight.shape}")
        if self.delay is not None:
            d = np.asarray(self.delay)
            if d.shape not in (self.weight.shape, (self.weight.shape[0],), (self.weight.shape[1],)):
                raise ValueError(f"delay shape {d.shape} does not fit weight shape {self.weight.shape}")
            if d.min() < 0 or d.max() > NETX_MAX_DELAY:
                raise ValueError(f"delays must be in 0..62, got {d.min()}..{d.max()}")
        if self.bias is not None and np.asarray(self.bias).shape != (self.weight.shape[0],):
            raise ValueError(f"bias shape {np.asarray(self.bias).shape} != ({self.weight.shape[0]},)")
        if self.weight_rec is not None:
            n = self.weight.shape[0]
            if np.asarray(self.weight_rec).shape != (n, n):
                raise ValueError(f"weight_rec shape {np.asarray(self.weight_rec).shape} != ({n}, {n})")
            if self.delay is not None and self.weight.shape[1] != n:
                raise ValueError("a dense_rec layer with delays needs in == out (netx gives the feedback synapse "
                                 "the input synapse's (out, in) delay matrix)")
        if isinstance(self.neuron, SdnnNeuronSpec) and self.neuron.sigma_output and self.bias is not None:
            raise ValueError("netx cannot give a Sigma (sigma_output) neuron a bias")

    @property
    def shape(self) -> tuple[int]:
        return (int(self.weight.shape[0]),)

    @property
    def recurrent(self) -> bool:
        return self.weight_rec is not None

    @property
    def type(self) -> str:
        return "dense_rec" if self.recurrent else "dense"

    def full_delay(self) -> np.ndarray:
        """Per-synapse delays ``[out, in]`` the way netx broadcasts a 1-D delay vector."""
        out_n, in_n = self.weight.shape
        if self.delay is None:
            return np.zeros((out_n, in_n), np.int64)
        d = np.asarray(self.delay, np.int64)
        if d.ndim == 2:
            return d
        if d.shape[0] == out_n:  # axonal delay per output neuron (netx checks this case first)
            return np.repeat(d.reshape(-1, 1), in_n, axis=1)
        return np.repeat(d.reshape(1, -1), out_n, axis=0)


def _pair(value, what: str) -> tuple[int, int]:
    arr = np.asarray(value).astype(np.int64).reshape(-1)
    if arr.size == 1:
        return int(arr[0]), int(arr[0])
    if arr.size != 2:
        raise ValueError(f"conv {what} must be a scalar or (H, W), got {value!r}")
    return int(arr[0]), int(arr[1])


@dataclass(frozen=True)
class ConvLayerSpec:
    """``type = conv``: ``weight[out, in/groups, kH, kW]`` integers (PyTorch/slayer order; netx flips and
    transposes it for Lava), ``stride``/``padding``/``dilation`` in (H, W) order, ``groups``, per-channel
    ``bias`` ``(out,)`` or per-neuron bias in Lava's (W, H, C) order, and the output ``shape`` (C, H, W)."""

    weight: np.ndarray
    neuron: NeuronSpec
    shape: tuple[int, int, int]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    bias: np.ndarray | None = None
    name: str = field(default="", compare=False)

    def __post_init__(self):
        if self.weight.ndim != 4:
            raise ValueError(f"conv weight must be 4-D (out, in/groups, kH, kW), got shape {self.weight.shape}")
        for what in ("stride", "padding", "dilation"):
            object.__setattr__(self, what, _pair(getattr(self, what), what))
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        object.__setattr__(self, "groups", int(self.groups))
        if len(self.shape) != 3:
            raise ValueError(f"conv shape must be (C, H, W), got {self.shape}")
        if self.shape[0] != self.weight.shape[0]:
            raise ValueError(f"conv shape {self.shape} has {self.shape[0]} channels, weight has {self.weight.shape[0]}")
        if self.groups < 1 or self.weight.shape[0] % self.groups:
            raise ValueError(f"{self.weight.shape[0]} output channels are not divisible by groups={self.groups}")
        if min(self.stride) < 1 or min(self.dilation) < 1 or min(self.padding) < 0:
            raise ValueError(f"bad conv geometry stride={self.stride} padding={self.padding} dilation={self.dilation}")
        if self.bias is not None:
            b = np.asarray(self.bias)
            lava_shape = self.shape[::-1]
            if b.shape != (self.shape[0],) and b.shape != lava_shape:
                raise ValueError(f"conv bias shape {b.shape} is neither ({self.shape[0]},) nor {lava_shape} (W, H, C)")
        if isinstance(self.neuron, SdnnNeuronSpec) and self.neuron.sigma_output and self.bias is not None:
            raise ValueError("netx cannot give a Sigma (sigma_output) neuron a bias")

    @property
    def kernel(self) -> tuple[int, int]:
        return int(self.weight.shape[2]), int(self.weight.shape[3])

    def output_shape(self, input_chw: tuple[int, int, int]) -> tuple[int, int, int]:
        """(C, H, W) output of this convolution for a (C, H, W) input (Lava's ``conv.utils.output_shape``)."""
        c, h, w = input_chw
        if c != self.weight.shape[1] * self.groups:
            raise ValueError(f"conv expects {self.weight.shape[1] * self.groups} input channels, got {c}")
        out = []
        for size, k, s, p, d in zip((h, w), self.kernel, self.stride, self.padding, self.dilation):
            n = (size + 2 * p - d * (k - 1) - 1) // s + 1
            if n <= 0:
                raise ValueError(f"conv output would be empty for input {input_chw}")
            out.append(n)
        return (int(self.weight.shape[0]), out[0], out[1])


@dataclass(frozen=True)
class FlattenLayerSpec:
    """``type = flatten``: the next dense layer reads the previous (W, H, C) layer through netx's
    ``transpose([2, 1, 0]).flatten()``, i.e. in (C, H, W) order, as slayer's Flatten does."""

    shape: tuple[int, ...] | None = None


@dataclass(frozen=True)
class SkippedLayerSpec:
    """A neuron layer that ``hdf5.Network(skip_layers=k)`` builds but leaves out of the network (its index is
    below k). netx still reads it: a skipped input or conv layer's output shape becomes the input shape of a
    conv layer that follows, and its message bits those of the next layer; a skipped dense layer changes no
    shape. Flatten and shape-only input entries are never wrapped (netx handles them the same either way)."""

    layer: InputLayerSpec | DenseLayerSpec | ConvLayerSpec


LayerSpec = InputLayerSpec | DenseLayerSpec | ConvLayerSpec | FlattenLayerSpec | SkippedLayerSpec


def _is_neuron_layer(layer) -> bool:
    return isinstance(layer, (DenseLayerSpec, ConvLayerSpec)) or (
        isinstance(layer, InputLayerSpec) and layer.neuron is not None)


def skip_layers(layers: list[LayerSpec], count: int) -> list[LayerSpec]:
    """``hdf5.Network(skip_layers=count)``: the neuron layers among the first ``count`` entries of
    ``layer/`` become :class:`SkippedLayerSpec` (netx compares ``count`` with the entry index, flatten and
    shape-only input entries included)."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise InputError(f"skip_layers must be a non-negative integer, got {count!r}")
    return [SkippedLayerSpec(layer) if i < count and _is_neuron_layer(layer) else layer
            for i, layer in enumerate(layers)]


def _write_neuron(group, neuron: NeuronSpec | None) -> None:
    if neuron is None:
        return
    group.create_dataset("neuron/type", (1,), "S10", [neuron.type.encode("ascii")])
    group.create_dataset("neuron/vThMant", data=np.int64(neuron.vth_mant))
    if isinstance(neuron, SdnnNeuronSpec):
        group.create_dataset("neuron/activation", (1,), "S10", [neuron.activation.encode("ascii")])
        if neuron.sigma_output:
            group.create_dataset("neuron/sigma_output", data=True)
        if neuron.message_bits != SDNN_DEFAULT_MESSAGE_BITS:
            raise ValueError("netx cannot run files with neuron/messageBits; SDNN layers always use 16 bits")
        return
    group.create_dataset("neuron/iDecay", data=np.int64(neuron.i_decay))
    group.create_dataset("neuron/vDecay", data=np.int64(neuron.v_decay))
    group.create_dataset("neuron/refDelay", data=np.int64(1))
    # messageBits is deliberately not written: lava-dl 0.6's NetDict returns an HDF5 handle for that key and
    # the Lava run fails. For CUBA neurons it changes nothing numerically (the spikes are 0/1 either way).


def write_netx(path: str | os.PathLike, layers: list[LayerSpec]) -> Path:
    """Write ``layers`` as a netx HDF5 file (atomically). Returns the path. Raises ValueError for layer chains
    netx could not wire (shape mismatches, conv without an input shape, dense after conv without flatten)."""
    import h5py

    if any(isinstance(layer, SkippedLayerSpec) for layer in layers):
        raise ValueError("skipped layers are an hdf5.Network option, not part of a file: write the layers unwrapped")
    network_shapes(layers)
    for i, layer in enumerate(layers):
        neuron = getattr(layer, "neuron", None)
        for problem in neuron.register_problems() if neuron is not None else []:
            raise ValueError(f"layer {i}: {problem.split(';')[0]}; refusing to write it")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp:
        with h5py.File(tmp, "w") as f:
            root = f.create_group("layer")
            for i, layer in enumerate(layers):
                g = root.create_group(str(i))
                if isinstance(layer, InputLayerSpec):
                    g.create_dataset("type", (1,), "S10", [b"input"])
                    g.create_dataset("shape", data=np.array(layer.shape, np.int64))
                    _write_neuron(g, layer.neuron)
                    if layer.bias is not None:
                        g.create_dataset("bias", data=np.asarray(layer.bias, np.int64).reshape(1))
                    if layer.weight is not None:
                        g.create_dataset("weight", data=np.asarray(layer.weight, np.int64).reshape(1))
                elif isinstance(layer, DenseLayerSpec):
                    g.create_dataset("type", (1,), "S10", [layer.type.encode("ascii")])
                    g.create_dataset("shape", data=np.array(layer.shape, np.int64))
                    g.create_dataset("weight", data=np.asarray(layer.weight, np.int64))
                    if layer.weight_rec is not None:
                        g.create_dataset("weight_rec", data=np.asarray(layer.weight_rec, np.int64))
                    if layer.delay is not None:
                        g.create_dataset("delay", data=np.asarray(layer.delay, np.int64))
                    if layer.bias is not None:
                        g.create_dataset("bias", data=np.asarray(layer.bias, np.int64))
                    _write_neuron(g, layer.neuron)
                elif isinstance(layer, ConvLayerSpec):
                    g.create_dataset("type", (1,), "S10", [b"conv"])
                    g.create_dataset("shape", data=np.array(layer.shape, np.int64))
                    g.create_dataset("weight", data=np.asarray(layer.weight, np.int64))
                    g.create_dataset("stride", data=np.array(layer.stride, np.int64))
                    g.create_dataset("padding", data=np.array(layer.padding, np.int64))
                    g.create_dataset("dilation", data=np.array(layer.dilation, np.int64))
                    g.create_dataset("groups", data=np.int64(layer.groups))
                    if layer.bias is not None:
                        g.create_dataset("bias", data=np.asarray(layer.bias, np.int64))
                    _write_neuron(g, layer.neuron)
                elif isinstance(layer, FlattenLayerSpec):
                    g.create_dataset("type", (1,), "S10", [b"flatten"])
                    if layer.shape is not None:
                        g.create_dataset("shape", data=np.array(layer.shape, np.int64))
                else:
                    raise TypeError(f"cannot write layer of type {type(layer).__name__}")

    return path


def _dataset(parent, key: str):
    import h5py

    obj = parent[key]
    if not isinstance(obj, h5py.Dataset):
        raise InputError(f"{key!r} is a {type(obj).__name__.lower()}, expected a dataset")
    return obj


def _ds(parent, key: str) -> np.ndarray:
    """A numeric dataset's value: not a group, not empty, finite, within ``safeio``'s magnitude bound (the
    file's dataset sizes were bounded by :func:`safeio.check_hdf5` before anything was read)."""
    obj = _dataset(parent, key)
    if obj.dtype.kind not in "biuf":
        raise InputError(f"{key!r} has dtype {obj.dtype}, expected numbers")
    value = np.asarray(obj[()])
    safeio.check_array(value, repr(key), kinds="biuf")
    return value


def _shape(parent, key: str = "shape") -> tuple[int, ...]:
    value = _ds(parent, key)
    if value.dtype.kind == "f" and not np.all(value == np.round(value)):
        raise InputError(f"{key!r} {value.tolist()} is not a list of integers")
    dims = tuple(int(s) for s in np.atleast_1d(value).reshape(-1))
    if any(d < 1 for d in dims):
        raise InputError(f"{key!r} {dims} has a dimension < 1")
    lim = safeio.limits().max_neurons
    if math.prod(dims) > lim:
        raise InputError(f"{key!r} {dims} declares {math.prod(dims):,} neurons, above the limit of {lim:,} "
                         "(PTSNN_MAX_NEURONS)")
    return dims


def _read_str(parent, key: str) -> str:
    ds = _dataset(parent, key)
    if ds.size == 0:
        raise InputError(f"{key!r} is empty, expected a string")
    value = ds[0] if ds.shape else ds[()]
    return value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)


def _int_array(parent, key: str) -> np.ndarray:
    """netx's ``NetDict`` copy of ``weight``/``weight_rec``/``bias``: ``astype(int)`` (truncates floats)."""
    return _ds(parent, key).astype(np.int64)


def _scalar_int(parent, what: str) -> int:
    arr = _ds(parent, what)
    if arr.size != 1:
        raise InputError(f"neuron/{what} must be one number (per-neuron values are not supported), got shape {arr.shape}")
    return int(arr.reshape(()))


def _read_neuron(group, index: int, kind: str) -> NeuronSpec:
    n = group["neuron"]
    if not hasattr(n, "keys"):
        raise InputError(f"layer {index} ({kind}): 'neuron' is a dataset, expected a group")
    ntype = _read_str(n, "type")
    if "messageBits" in n:
        raise InputError(f"layer {index} ({kind}): neuron/messageBits is set; lava-dl 0.6 netx passes an HDF5 handle "
                         "instead of its value and the Lava run fails; remove the dataset")
    if ntype in ("CUBA", "LOIHI"):
        for key in ("iDecay", "vDecay", "vThMant"):
            if key in n and _dataset(n, key).dtype.kind == "f":  # Lava's fixed_pt LIF shifts them: a TypeError
                raise InputError(f"layer {index} ({kind}): neuron/{key} is stored as a float; Lava's fixed_pt LIF "
                                 "shifts it as an integer and its run fails: store an integer")
        return CubaNeuronSpec(_scalar_int(n, "iDecay"), _scalar_int(n, "vDecay"),
                              _scalar_int(n, "vThMant"), 0, ntype)
    if ntype == "SDNN":
        activation = _read_str(n, "activation") if "activation" in n else "relu"
        return SdnnNeuronSpec(_scalar_int(n, "vThMant"), sigma_output="sigma_output" in n,
                              activation=activation)
    if "RF" in ntype:
        raise InputError(f"layer {index} ({kind}): neuron type {ntype!r} (resonate-and-fire) is not supported by "
                         "the fast simulator")
    raise InputError(f"layer {index} ({kind}): neuron type {ntype!r} is unknown to netx (CUBA, LOIHI, SDNN, RF)")


def _read_delay(g, weight: np.ndarray, problems: list[str]) -> np.ndarray | None:
    if "delay" not in g:
        return None
    delay = np.asarray(_ds(g, "delay"), np.float64)
    if delay.size and delay.max() > NETX_MAX_DELAY:  # netx warns and clips (also the negative ones, then)
        problems.append(f"delays up to {delay.max():g} are beyond the 6-bit delay register (0..{NETX_MAX_DELAY}); "
                        f"clipped to 0..{NETX_MAX_DELAY} as netx does")
        delay = np.clip(delay, 0, NETX_MAX_DELAY)
    delay = delay.astype(np.int64)  # DelayDense(delays=delay.astype(int))
    if delay.ndim == 0:
        delay = np.full(weight.shape, int(delay), np.int64)
    if delay.size and delay.min() < 0:
        raise ValueError(f"negative delays ({delay.min()}) are dropped silently by Lava's DelayDense; refusing")
    return delay


def read_netx(path: str | os.PathLike, num_layers: int | None = None, skip: int = 0) -> list[LayerSpec]:
    """Read a netx HDF5 file into layer specs; unreadable or unsupported content is a one-line InputError.

    ``num_layers`` mirrors ``hdf5.Network(num_layers=...)``: only the first ``num_layers`` entries of
    ``layer/`` are read (e.g. to drop a trailing ``average`` layer netx cannot build). ``skip`` mirrors
    ``hdf5.Network(skip_layers=...)`` (:func:`skip_layers`)."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such netx file")
    safeio.check_hdf5(path, "netx file")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise InputError(f"{path}: not an HDF5 file ({exc.__class__.__name__})") from None
    with f:
        if "layer" not in f or not isinstance(f["layer"], h5py.Group):
            raise InputError(f"{path}: no 'layer' group; not a netx network")
        count = len(f["layer"]) if num_layers is None else min(len(f["layer"]), int(num_layers))
        if count == 0:
            raise InputError(f"{path}: the 'layer' group is empty")
        layers: list[LayerSpec] = []
        for i in range(count):
            if str(i) not in f["layer"]:
                raise InputError(f"{path}: layer {i} is missing (layers must be numbered 0..N-1)")
            g = f["layer"][str(i)]
            if not isinstance(g, h5py.Group):
                raise InputError(f"{path}: layer {i} is a dataset, expected a group")
            kind = "?"
            problems: list[str] = []
            try:
                kind = _read_str(g, "type") if "type" in g else "?"
                layers.append(_read_layer(g, i, kind, problems))
                problems += register_problems(layers[-1])
            except InputError as exc:
                where = "" if str(exc).startswith("layer ") else f"layer {i} ({kind}): "
                raise InputError(f"{path}: {where}{exc}") from None
            except (KeyError, ValueError, TypeError, AttributeError, IndexError, OverflowError) as exc:
                msg = str(exc).strip("'\"") or exc.__class__.__name__
                raise InputError(f"{path}: layer {i} ({kind}): {msg}") from None
            for problem in problems:
                warnings.warn(f"{path}: layer {i} ({kind}): {problem}", RegisterWarning, stacklevel=2)
        layers = skip_layers(layers, skip)
        _check_chain(layers, path)
        return layers


def _read_layer(g, i: int, kind: str, problems: list[str]) -> LayerSpec:
    name = f"layer{i}"
    if kind == "input":
        shape = _shape(g) if "shape" in g else ()
        if "neuron" not in g:
            return InputLayerSpec(shape)
        bias = _ds(g, "bias") if "bias" in g else None
        weight = _ds(g, "weight") if "weight" in g else None
        neuron = _read_neuron(g, i, kind)
        return InputLayerSpec(shape, neuron, None if bias is None else np.asarray(bias).astype(np.int64),
                              None if weight is None else np.asarray(weight).astype(np.int64))
    if kind in ("dense", "dense_rec"):
        if "weight/imag" in g or "weight/real" in g:
            raise InputError(f"layer {i} ({kind}): complex weights (dense_comp) are not supported by the fast simulator")
        n_out = math.prod(_shape(g))
        weight = _int_array(g, "weight")
        if weight.ndim == 1:
            weight = weight.reshape(n_out, -1)
        weight_rec = None
        if kind == "dense_rec":
            weight_rec = _int_array(g, "weight_rec")
            if weight_rec.ndim == 1:
                weight_rec = weight_rec.reshape(n_out, -1)
        if weight.shape[0] != n_out:
            raise ValueError(f"weight has {weight.shape[0]} rows but shape says {n_out} neurons")
        bias = _int_array(g, "bias").reshape(-1) if "bias" in g else None
        neuron = _read_neuron(g, i, kind) if "neuron" in g else None
        return DenseLayerSpec(weight, neuron, _read_delay(g, weight, problems), bias, name=name, weight_rec=weight_rec)
    if kind == "conv":
        weight = _int_array(g, "weight")
        weight = weight.reshape(weight.shape[:4])  # slayer exports (out, in, kH, kW, 1)
        bias = _int_array(g, "bias") if "bias" in g else None
        shape = _shape(g)
        return ConvLayerSpec(weight, _read_neuron(g, i, kind), shape, _ds(g, "stride"), _ds(g, "padding"),
                             _ds(g, "dilation"), int(np.asarray(_ds(g, "groups")).reshape(())), bias, name=name)
    if kind == "flatten":
        return FlattenLayerSpec(_shape(g) if "shape" in g else None)
    if kind in NETX_UNBUILDABLE:
        raise InputError(f"layer {i} has type {kind!r}, which lava-dl 0.6 netx cannot build (NotImplementedError)")
    if kind == "dense_comp":
        raise InputError(f"layer {i} has type 'dense_comp' (complex dense), not supported by the fast simulator")
    raise InputError(f"layer {i} has unknown type {kind!r}")


CONV_WEIGHT_RANGE = (-256, 255)  # an 8-bit mantissa, in slayer's export (even values of -256..254) or not


def register_problems(layer: LayerSpec) -> list[str]:
    """One line per value of ``layer`` outside a Loihi register that Lava simulates anyway, saying what Lava
    then computes (and so what the fast simulator computes): neuron parameters, weights, bias."""
    neuron = getattr(layer, "neuron", None)
    out = list(neuron.register_problems()) if neuron is not None else []
    if isinstance(layer, DenseLayerSpec):
        w = layer.weight if layer.weight_rec is None else np.hstack((layer.weight, layer.weight_rec))
        bits = loihi.optimize_weight_bits(w)
        what = "weights" if layer.weight_rec is None else "weights and weight_rec"
        if bits.zeroed:
            out.append(f"{what} in [{int(w.min())}, {int(w.max())}] are beyond the 8-bit synapse register; netx's "
                       "optimize_weight_bits shifts them by a negative count, so Lava's synapse holds zeros "
                       "(simulated as such: the layer gets no synaptic input)")
        elif bits.clipped:
            out.append(f"{what} in [{int(w.min())}, {int(w.max())}] are beyond the 8-bit synapse register "
                       "(-256..254); clipped to it as netx's optimize_weight_bits does")
    elif isinstance(layer, ConvLayerSpec):
        lo, hi = int(layer.weight.min()), int(layer.weight.max())
        if lo < CONV_WEIGHT_RANGE[0] or hi > CONV_WEIGHT_RANGE[1]:
            out.append(f"weights in [{lo}, {hi}] are beyond the 8-bit weight register; simulated as Lava's Conv "
                       "does (it uses them unclipped)")
    bias = getattr(layer, "bias", None)
    if isinstance(neuron, CubaNeuronSpec) and bias is not None and not isinstance(layer, InputLayerSpec):
        lo, hi = int(np.min(bias)), int(np.max(bias))
        if lo < BIAS_MANT_RANGE[0] or hi > BIAS_MANT_RANGE[1]:
            out.append(f"bias in [{lo}, {hi}] is beyond the 13-bit bias mantissa register "
                       f"({BIAS_MANT_RANGE[0]}..{BIAS_MANT_RANGE[1]}); simulated as Lava does (held in int16, "
                       "wrapping beyond -32768..32767)")
    return out


def _check_chain(layers: list[LayerSpec], path) -> None:
    """The connectivity checks netx/Lava make when they wire the blocks (shape mismatches are errors there)."""
    try:
        network_shapes(layers, require_input=False)  # a conv-first file may take its input shape from the data
    except ValueError as exc:
        raise InputError(f"{path}: {exc}") from None


def needs_input_shape(layers: list[LayerSpec]) -> bool:
    """True for a file whose first block is a convolution and which states no input shape (netx then needs
    ``hdf5.Network(input_shape=...)``, also when that convolution is skipped)."""
    for entry in layers:
        layer = entry.layer if isinstance(entry, SkippedLayerSpec) else entry
        if isinstance(layer, InputLayerSpec):
            if layer.shape or layer.neuron is not None:
                return False
        elif isinstance(layer, (ConvLayerSpec, DenseLayerSpec)):
            return isinstance(layer, ConvLayerSpec)
    return False


def first_block_skipped(layers: list[LayerSpec]) -> bool:
    """True when ``hdf5.Network(skip_layers=...)`` leaves out the file's first neuron layer: the network's
    input is then not the file's."""
    return any(isinstance(entry, SkippedLayerSpec) for entry in layers)


@dataclass(frozen=True)
class LayerShapes:
    """Per Lava block: index into ``layers``, the block's output shape in Lava's (x, y, z) order, its neurons'
    input shape in slayer order (C,H,W) or (N,), and whether a flatten precedes it."""

    index: int
    lava_shape: tuple[int, ...]
    chw: tuple[int, ...]
    in_chw: tuple[int, ...]
    flatten_before: bool


def network_shapes(layers: list[LayerSpec], input_shape: tuple[int, ...] | None = None,
                   require_input: bool = True) -> tuple[tuple[int, ...] | None, list[LayerShapes]]:
    """Walk the layers as netx does; return the network input shape (Lava order, what ``net.inp`` or the
    input neuron's ``a_in`` takes) and one :class:`LayerShapes` per Lava block. Raises ValueError where netx
    or Lava would fail to build or connect the blocks.

    ``input_shape`` is ``hdf5.Network(input_shape=...)``: Lava's (x, y, z) = (W, H, C) order, used by a first
    conv layer when the file has no input layer shape. netx lets a file's input layer silently override
    it; here a different shape is an error. With ``require_input=False`` a first conv layer without any
    input shape is accepted as declared (its input unknown, the returned network input ``None``): the
    reader's check of a file that takes its input shape from the data, as netx allows. A
    :class:`SkippedLayerSpec` is walked (and checked) as netx builds it but yields no block; the network input
    is then the first kept block's."""
    blocks: list[LayerShapes] = []
    given_chw = tuple(int(d) for d in input_shape[::-1]) if input_shape else None
    input_chw: tuple[int, ...] | None = given_chw
    flatten_next = False
    net_input: tuple[int, ...] | None = None
    for i, entry in enumerate(layers):
        layer = entry.layer if isinstance(entry, SkippedLayerSpec) else entry
        if isinstance(layer, InputLayerSpec) and layer.shape and given_chw and tuple(layer.shape) != given_chw:
            raise ValueError(f"layer {i} (input): the file's input shape (C, H, W) = {tuple(layer.shape)} differs "
                             f"from the given input shape (C, H, W) = {given_chw}")
    skipped_any = False  # a skipped block is built by netx (so checked here) but not kept in ``blocks``
    for i, entry in enumerate(layers):
        skipped = isinstance(entry, SkippedLayerSpec)
        layer = entry.layer if skipped else entry
        prev = blocks[-1].chw if blocks else input_chw
        if isinstance(layer, InputLayerSpec):
            if layer.neuron is None:
                input_chw = tuple(layer.shape) if layer.shape else None
                continue
            if blocks:
                raise ValueError(f"layer {i}: an input layer with a neuron must come first")
            chw = tuple(layer.shape)
            if not chw:
                raise ValueError(f"layer {i} (input): a neuron needs a shape")
            if skipped:
                input_chw, skipped_any = chw, True  # netx: self.input_shape = layer.shape
                continue
            blocks.append(LayerShapes(i, chw[::-1], chw, chw, False))
            net_input = chw[::-1]
        elif isinstance(layer, FlattenLayerSpec):
            flatten_next = True
        elif isinstance(layer, ConvLayerSpec):
            if prev is None and not require_input and not blocks:
                if skipped:  # its output shape is the file's: a following conv layer's input is known
                    input_chw, skipped_any = tuple(layer.shape), True
                else:
                    blocks.append(LayerShapes(i, layer.shape[::-1], layer.shape, (), False))
                continue
            if prev is None:
                raise ValueError(f"layer {i} (conv): input shape could not be inferred (the file has no input layer "
                                 "shape; give one, as hdf5.Network(input_shape=...) takes it"
                                 + (", even for a skipped layer)" if skipped else ")"))
            if len(prev) != 3:
                raise ValueError(f"layer {i} (conv): needs a 3-D (C, H, W) input, got {prev}")
            try:
                out = layer.output_shape(prev)
            except ValueError as exc:
                raise ValueError(f"layer {i} (conv): {exc}") from None
            if out != layer.shape:
                raise ValueError(f"layer {i} (conv): shape {layer.shape} != computed output {out}")
            if skipped:
                input_chw, skipped_any = out, True
                continue
            if not blocks:
                net_input = prev[::-1]
            blocks.append(LayerShapes(i, out[::-1], out, prev, False))
            # a pending flatten stays pending (netx's conv branch leaves flatten_next as it is)
        elif isinstance(layer, DenseLayerSpec):
            n_in = layer.weight.shape[1]
            flat = flatten_next and bool(blocks)
            flatten_next = False  # netx consumes a pending flatten at every dense layer, kept or skipped
            if blocks:  # netx connects (and Lava checks) only kept blocks
                if len(prev) > 1 and not flat:
                    raise ValueError(f"layer {i} ({layer.type}): follows a {len(prev)}-D layer {prev} without a flatten")
                if int(np.prod(prev)) != n_in:
                    raise ValueError(f"layer {i} ({layer.type}): weight expects {n_in} inputs, previous layer has "
                                     f"{int(np.prod(prev))}")
            elif given_chw and not skipped_any and math.prod(given_chw) != n_in:
                raise ValueError(f"layer {i} ({layer.type}): weight expects {n_in} inputs, the given input shape "
                                 f"{given_chw[::-1]} has {math.prod(given_chw)}")
            if skipped:
                skipped_any = True
                continue
            if not blocks:
                net_input = (n_in,)
            blocks.append(LayerShapes(i, layer.shape, layer.shape, (n_in,), flat))
        else:  # pragma: no cover
            raise TypeError(type(layer).__name__)
    if not blocks:
        raise ValueError("the network has no layer with neurons" + (" after the skipped ones" if skipped_any else ""))
    return net_input, blocks
