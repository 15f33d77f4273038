"""lava-dl netx HDF5: a typed description of the layers, a writer and a reader.

The layout is the one ``lava.lib.dl.netx.hdf5.Network`` reads (lava-dl 0.6, ``netx/hdf5.py`` and
``NetDict``): group ``layer/<i>`` in data-flow order, each with a ``type`` byte string, ``shape``
(netx order, i.e. reversed for conv: C,H,W stored; dense: ``(out,)``), integer ``weight``, optional ``bias``
and ``delay`` and a ``neuron`` group (``type``, ``iDecay``, ``vDecay``, ``vThMant``, optional
``messageBits``). Writing goes to a temporary file that replaces the target only when complete.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ptsnn.errors import InputError


@dataclass(frozen=True)
class CubaNeuronSpec:
    """netx ``neuron`` group of a CUBA (or LOIHI) neuron."""

    i_decay: int  # 0..4096; netx passes du = iDecay - 1 to Lava
    v_decay: int  # 0..4096
    vth_mant: int
    message_bits: int = 0  # > 0: graded spikes carrying the voltage (netx key ``messageBits``)
    type: str = "CUBA"

    def __post_init__(self):
        if not 1 <= self.i_decay <= 4096:
            raise ValueError(f"iDecay must be in 1..4096, got {self.i_decay}")
        if not 0 <= self.v_decay <= 4096:
            raise ValueError(f"vDecay must be in 0..4096, got {self.v_decay}")
        if not 0 <= self.vth_mant < 2**17:
            raise ValueError(f"vThMant must be in 0..131071 (17 bits), got {self.vth_mant}")
        if not 0 <= self.message_bits <= 24:
            raise ValueError(f"messageBits must be in 0..24, got {self.message_bits}")


@dataclass(frozen=True)
class InputLayerSpec:
    """``type = input``. Without a neuron it only states the input shape; with one, input spikes enter that
    neuron's ``a_in`` directly (netx's Input block)."""

    shape: tuple[int, ...]
    neuron: CubaNeuronSpec | None = None
    bias: np.ndarray | None = None


@dataclass(frozen=True)
class DenseLayerSpec:
    """``type = dense``: ``weight[out, in]`` integers, optional per-synapse ``delay`` (same shape, or per
    output / per input, 0..62) and per-neuron ``bias`` mantissas."""

    weight: np.ndarray
    neuron: CubaNeuronSpec
    delay: np.ndarray | None = None
    bias: np.ndarray | None = None
    name: str = field(default="", compare=False)

    def __post_init__(self):
        if self.weight.ndim != 2:
            raise ValueError(f"dense weight must be 2-D (out, in), got shape {self.weight.shape}")
        if self.delay is not None:
            d = np.asarray(self.delay)
            if d.shape not in (self.weight.shape, (self.weight.shape[0],), (self.weight.shape[1],)):
                raise ValueError(f"delay shape {d.shape} does not fit weight shape {self.weight.shape}")
            if d.min() < 0 or d.max() > 62:
                raise ValueError(f"delays must be in 0..62, got {d.min()}..{d.max()}")
        if self.bias is not None and np.asarray(self.bias).shape != (self.weight.shape[0],):
            raise ValueError(f"bias shape {np.asarray(self.bias).shape} != ({self.weight.shape[0]},)")

    @property
    def shape(self) -> tuple[int]:
        return (int(self.weight.shape[0]),)

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


LayerSpec = InputLayerSpec | DenseLayerSpec


def _write_neuron(group, neuron: CubaNeuronSpec) -> None:
    group.create_dataset("neuron/type", (1,), "S10", [neuron.type.encode("ascii")])
    group.create_dataset("neuron/iDecay", data=np.int64(neuron.i_decay))
    group.create_dataset("neuron/vDecay", data=np.int64(neuron.v_decay))
    group.create_dataset("neuron/vThMant", data=np.int64(neuron.vth_mant))
    group.create_dataset("neuron/refDelay", data=np.int64(1))
    if neuron.message_bits:
        group.create_dataset("neuron/messageBits", data=np.int64(neuron.message_bits))


def write_netx(path: str | os.PathLike, layers: list[LayerSpec]) -> Path:
    """Write ``layers`` as a netx HDF5 file (atomically). Returns the path."""
    import h5py

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as f:
            root = f.create_group("layer")
            for i, layer in enumerate(layers):
                g = root.create_group(str(i))
                if isinstance(layer, InputLayerSpec):
                    g.create_dataset("type", (1,), "S10", [b"input"])
                    g.create_dataset("shape", data=np.array(layer.shape, np.int64))
                    if layer.neuron is not None:
                        _write_neuron(g, layer.neuron)
                    if layer.bias is not None:
                        g.create_dataset("bias", data=np.asarray(layer.bias, np.int64))
                elif isinstance(layer, DenseLayerSpec):
                    g.create_dataset("type", (1,), "S10", [b"dense"])
                    g.create_dataset("shape", data=np.array(layer.shape, np.int64))
                    g.create_dataset("weight", data=np.asarray(layer.weight, np.int64))
                    if layer.delay is not None:
                        g.create_dataset("delay", data=np.asarray(layer.delay, np.int64))
                    if layer.bias is not None:
                        g.create_dataset("bias", data=np.asarray(layer.bias, np.int64))
                    _write_neuron(g, layer.neuron)
                else:
                    raise TypeError(f"cannot write layer of type {type(layer).__name__}")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _read_str(ds) -> str:
    value = ds[0] if ds.shape else ds[()]
    return value.decode("ascii") if isinstance(value, bytes) else str(value)


def _read_neuron(group) -> CubaNeuronSpec:
    n = group["neuron"]
    kind = _read_str(n["type"])
    if kind not in ("CUBA", "LOIHI"):
        raise InputError(f"neuron type {kind!r} is not supported yet (CUBA, LOIHI)")
    bits = int(n["messageBits"][()]) if "messageBits" in n else 0
    return CubaNeuronSpec(int(n["iDecay"][()]), int(n["vDecay"][()]), int(n["vThMant"][()]), bits, kind)


def read_netx(path: str | os.PathLike) -> list[LayerSpec]:
    """Read a netx HDF5 file into layer specs; unreadable or unsupported content is a one-line InputError."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such netx file")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise InputError(f"{path}: not an HDF5 file ({exc.__class__.__name__})") from None
    with f:
        if "layer" not in f:
            raise InputError(f"{path}: no 'layer' group; not a netx network")
        layers: list[LayerSpec] = []
        for i in range(len(f["layer"])):
            g = f["layer"][str(i)]
            kind = _read_str(g["type"])
            try:
                if kind == "input":
                    neuron = _read_neuron(g) if "neuron" in g else None
                    bias = g["bias"][()].astype(np.int64) if "bias" in g else None
                    layers.append(InputLayerSpec(tuple(int(s) for s in g["shape"][()]), neuron, bias))
                elif kind == "dense":
                    weight = g["weight"][()].astype(np.int64)
                    if weight.ndim == 1:
                        weight = weight.reshape(int(np.prod(g["shape"][()])), -1)
                    delay = g["delay"][()].astype(np.int64) if "delay" in g else None
                    bias = g["bias"][()].astype(np.int64) if "bias" in g else None
                    layers.append(DenseLayerSpec(weight, _read_neuron(g), delay, bias, name=f"layer{i}"))
                else:
                    raise InputError(f"layer {i} has type {kind!r}, not supported yet")
            except (KeyError, ValueError) as exc:
                raise InputError(f"{path}: layer {i} ({kind}): {exc}") from None
        return layers
