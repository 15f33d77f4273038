"""The chip IR: the one integer description of what runs on the chip.

Small typed nodes in the manner of NIR (``nir/ir``): shapes and ranges are checked on construction, meaning
is kept apart from serialisation (``to_dir``/``from_dir``). Every downstream consumer (netx writer, Lava
graph builder, fast simulator, design-rule checks, reports) reads this and nothing else.

Semantics (Lava 0.10 ``fixed_pt``, see ``ptsnn.numerics.loihi``): a :class:`Synapses` edge delivers
``weight[o, i] * payload_i`` to target neuron ``o`` ``1 + delay[o, i]`` steps after source ``i`` emitted;
a :class:`CubaPopulation` integrates the sum of its incoming edges as a CUBA LIF neuron; an
:class:`Accumulator` (Lava ``Sigma``) sums its input forever and is read by the host; a :class:`HostInput`
is the host-to-chip boundary emitting graded payloads (``message_bits`` > 0) or binary spikes.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ptsnn.fileio import atomic_write_text
from ptsnn.numerics import loihi

IR_FORMAT_VERSION = 1
WEIGHT_MIN, WEIGHT_MAX = -256, 254
BIAS_LIMIT = 2**12 - 1
THRESHOLD_LIMIT = 2**17 - 1


class IRError(ValueError):
    """An IR node or graph is inconsistent (a bug in a pass or a malformed bundle)."""


def _int_array(x, name: str, ndim: int) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != ndim:
        raise IRError(f"{name}: expected {ndim}-D array, got shape {a.shape}")
    if a.size and not np.issubdtype(a.dtype, np.integer):
        if not np.all(np.equal(np.mod(a, 1), 0)):
            raise IRError(f"{name}: values must be integers")
    return a.astype(np.int64)


@dataclass(frozen=True, eq=False)
class HostInput:
    name: str
    size: int
    message_bits: int  # graded payload bits (0: binary spikes)
    levels: int = 1  # payload range -levels..levels for signed graded input
    steps_per_frame: int = 1

    def __post_init__(self):
        if self.size < 1 or not 0 <= self.message_bits <= 24:
            raise IRError(f"input {self.name}: size {self.size}, message_bits {self.message_bits}")


@dataclass(frozen=True, eq=False)
class CubaPopulation:
    name: str
    size: int
    i_decay: int  # netx iDecay (Lava du = iDecay - 1)
    v_decay: int  # netx vDecay (Lava dv)
    vth: int  # threshold mantissa (spike when v > vth << 6)
    bias: np.ndarray  # bias mantissas, bias_exp fixed at 6 (netx)
    role: str = "plif"  # plif | coincidence (what the model meant; arithmetic is the same)
    scale_exponent: int | None = None  # the population's weight exponent chosen by quantization

    def __post_init__(self):
        object.__setattr__(self, "bias", _int_array(self.bias, f"{self.name}.bias", 1))
        problems = []
        if self.size < 1:
            problems.append(f"size {self.size}")
        if self.bias.shape != (self.size,):
            problems.append(f"bias shape {self.bias.shape} != ({self.size},)")
        if not 1 <= self.i_decay <= loihi.DECAY_UNITY:
            problems.append(f"i_decay {self.i_decay} not in 1..4096")
        if not 0 <= self.v_decay <= loihi.DECAY_UNITY:
            problems.append(f"v_decay {self.v_decay} not in 0..4096")
        if not 0 <= self.vth <= THRESHOLD_LIMIT:
            problems.append(f"vth {self.vth} not in 0..{THRESHOLD_LIMIT}")
        if self.bias.size and np.abs(self.bias).max() > BIAS_LIMIT:
            problems.append(f"bias mantissa {int(np.abs(self.bias).max())} exceeds 13-bit signed")
        if problems:
            raise IRError(f"population {self.name}: " + "; ".join(problems))

    def params(self) -> loihi.CubaParams:
        return loihi.CubaParams.from_netx(self.i_decay, self.v_decay, self.vth, self.bias)


@dataclass(frozen=True, eq=False)
class Accumulator:
    name: str
    size: int
    scale_exponent: int = 0  # host divides the read value by 2**scale_exponent (and the step count)


@dataclass(frozen=True, eq=False)
class Synapses:
    name: str
    source: str
    target: str
    weight: np.ndarray  # [out, in] integer mantissas
    delay: np.ndarray  # [out, in] extra delay steps 0..62 (the one-step synapse latency is implicit)

    def __post_init__(self):
        w = _int_array(self.weight, f"{self.name}.weight", 2)
        d = _int_array(self.delay, f"{self.name}.delay", 2)
        object.__setattr__(self, "weight", w)
        object.__setattr__(self, "delay", d)
        if d.shape != w.shape:
            raise IRError(f"synapses {self.name}: delay shape {d.shape} != weight shape {w.shape}")
        if w.size and (w.min() < WEIGHT_MIN or w.max() > WEIGHT_MAX):
            raise IRError(f"synapses {self.name}: weights {w.min()}..{w.max()} outside {WEIGHT_MIN}..{WEIGHT_MAX}")
        if d.size and (d.min() < 0 or d.max() > loihi.MAX_DELAY):
            raise IRError(f"synapses {self.name}: delays {d.min()}..{d.max()} outside 0..{loihi.MAX_DELAY}")

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.weight.shape)

    def count(self) -> int:
        """Synapses that exist (non-zero weights)."""
        return int(np.count_nonzero(self.weight))


@dataclass(eq=False)
class ChipGraph:
    inputs: list[HostInput]
    populations: list[CubaPopulation]
    accumulators: list[Accumulator]
    synapses: list[Synapses]
    flush_steps: int = 0
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        self.validate()

    # -------------------------------------------------------------------------------- structure
    def nodes(self) -> dict[str, HostInput | CubaPopulation | Accumulator]:
        return {n.name: n for n in [*self.inputs, *self.populations, *self.accumulators]}

    def incoming(self, target: str) -> list[Synapses]:
        return [s for s in self.synapses if s.target == target]

    def outgoing(self, source: str) -> list[Synapses]:
        return [s for s in self.synapses if s.source == source]

    def message_bits(self, source: str) -> int:
        node = self.nodes()[source]
        return node.message_bits if isinstance(node, HostInput) else 0

    def validate(self) -> None:
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

    # ---------------------------------------------------------------------------- serialisation
    def to_dict(self) -> tuple[dict, dict[str, np.ndarray]]:
        """(structure as JSON-able dict, arrays by key)."""
        arrays: dict[str, np.ndarray] = {}
        pops = []
        for p in self.populations:
            arrays[f"population/{p.name}/bias"] = p.bias
            pops.append(dict(name=p.name, size=p.size, i_decay=p.i_decay, v_decay=p.v_decay, vth=p.vth,
                             role=p.role, scale_exponent=p.scale_exponent, bias=f"population/{p.name}/bias"))
        syns = []
        for s in self.synapses:
            arrays[f"synapses/{s.name}/weight"] = s.weight
            arrays[f"synapses/{s.name}/delay"] = s.delay
            syns.append(dict(name=s.name, source=s.source, target=s.target, shape=list(s.shape),
                             weight=f"synapses/{s.name}/weight", delay=f"synapses/{s.name}/delay",
                             nonzero=s.count(), max_delay=int(s.delay.max(initial=0))))
        structure = dict(
            format="ptsnn-chip-ir", format_version=IR_FORMAT_VERSION, flush_steps=self.flush_steps, meta=self.meta,
            inputs=[vars(i).copy() for i in self.inputs], populations=pops,
            accumulators=[vars(a).copy() for a in self.accumulators], synapses=syns)
        return structure, arrays

    def to_dir(self, directory: str | os.PathLike, stem: str = "chip_graph") -> list[Path]:
        """Write ``<stem>.json`` (structure) and ``<stem>.h5`` (integer arrays), atomically and byte-stable."""
        import h5py

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        structure, arrays = self.to_dict()
        json_path, h5_path = directory / f"{stem}.json", directory / f"{stem}.h5"
        atomic_write_text(json_path, json.dumps(structure, indent=1, sort_keys=True) + "\n")
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{stem}.", suffix=".tmp")
        os.close(fd)
        try:
            with h5py.File(tmp, "w", track_order=True) as f:
                for key in sorted(arrays):
                    f.create_dataset(key, data=arrays[key], track_times=False)
            os.replace(tmp, h5_path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return [json_path, h5_path]

    @classmethod
    def from_dir(cls, directory: str | os.PathLike, stem: str = "chip_graph") -> "ChipGraph":
        import h5py

        directory = Path(directory)
        structure = json.loads((directory / f"{stem}.json").read_text())
        if structure.get("format") != "ptsnn-chip-ir":
            raise IRError(f"{directory / stem}.json is not a ptsnn chip IR")
        with h5py.File(directory / f"{stem}.h5", "r") as f:
            arr = lambda key: f[key][()]  # noqa: E731
            pops = [CubaPopulation(p["name"], p["size"], p["i_decay"], p["v_decay"], p["vth"], arr(p["bias"]),
                                   p["role"], p["scale_exponent"]) for p in structure["populations"]]
            syns = [Synapses(s["name"], s["source"], s["target"], arr(s["weight"]), arr(s["delay"]))
                    for s in structure["synapses"]]
        return cls([HostInput(**i) for i in structure["inputs"]], pops,
                   [Accumulator(**a) for a in structure["accumulators"]], syns, structure["flush_steps"],
                   structure.get("meta", {}))


