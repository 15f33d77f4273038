"""Chip IR files: ``<stem>.json`` (structure, typed and validated) + ``<stem>.h5`` (integer arrays).

Kept apart from the IR's meaning (``ptsnn.chip.ir``), as NIR keeps ``nir.read``/``nir.write`` apart from its
nodes. The reader is a trust boundary (bundles come from users and the internet): the JSON is parsed with a
size cap and validated against one strict schema per node kind (``ptsnn.formats.strict``: unknown fields
and kinds refused, strict types, bounds); every array is checked to be an integer dataset of the declared shape and a bounded size
*before* it is read. Every failure is an :class:`IRError` with one line naming the file and the field.
Writes are atomic and byte-stable (sorted keys, no HDF5 timestamps).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import numpy as np
from msgspec import Meta, ValidationError

from ptsnn.chip.ir import (
    MAX_FLUSH_STEPS,
    SIZE_LIMIT,
    Accumulator,
    ChipGraph,
    ConvSynapses,
    CubaPopulation,
    FireOncePopulation,
    HostInput,
    IRError,
    SigmaDeltaPopulation,
    Synapses,
)
from ptsnn import safeio
from ptsnn.errors import InputError
from ptsnn.fileio import atomic_output, atomic_write_text
from ptsnn.formats.strict import Strict, convert, describe

FORMAT = "ptsnn-chip-ir"
FORMAT_VERSION = 2
MAX_JSON_BYTES = 64 << 20
MAX_ARRAY_ELEMENTS = 1 << 28  # 2 GiB of int64: beyond any chip; refused before reading

Int = int  # strict: a JSON integer (not 1.0, "1" or true), as every schema field here
Size = Annotated[int, Meta(ge=1, le=SIZE_LIMIT)]
Pair = tuple[int, int]


class InputSchema(Strict):
    name: str
    size: Size
    message_bits: Annotated[int, Meta(ge=0, le=24)]
    levels: Annotated[int, Meta(ge=0, le=2**23)] = 1
    steps_per_frame: Annotated[int, Meta(ge=1, le=1024)] = 1


class CubaSchema(Strict, tag_field="kind", tag="cuba"):
    name: str
    size: Size
    i_decay: Int
    v_decay: Int
    vth: Int
    bias: str
    role: str = "plif"
    scale_exponent: Int | None = None


class FireOnceSchema(CubaSchema, tag="fire_once", kw_only=True):  # kw_only: required fields after defaults
    role: str = "ttfs"
    inhibit_weight: Int
    inhibit_exp: Int


class SigmaDeltaSchema(Strict, tag_field="kind", tag="sigma_delta"):
    name: str
    size: Size
    vth: Int
    bias: str
    message_bits: Int


class AccumulatorSchema(Strict):
    name: str
    size: Size
    scale_exponent: Int = 0


class DenseSchema(Strict, tag_field="kind", tag="dense"):
    name: str
    source: str
    target: str
    shape: tuple[Size, Size]
    weight: str
    delay: str
    weight_exp: Int = 0
    nonzero: Int | None = None  # informative (written for humans), checked against the data
    max_delay: Int | None = None


class ConvSchema(Strict, tag_field="kind", tag="conv"):
    name: str
    source: str
    target: str
    weight: str
    weight_shape: tuple[Size, Size, Size, Size]
    in_shape: tuple[Size, Size, Size]
    out_shape: tuple[Size, Size, Size]
    stride: Pair = (1, 1)
    padding: Pair = (0, 0)
    dilation: Pair = (1, 1)
    groups: Int = 1
    nonzero: Int | None = None


Population = Union[CubaSchema, FireOnceSchema, SigmaDeltaSchema]  # told apart by "kind"
SynapseSchema = Union[DenseSchema, ConvSchema]


class GraphSchema(Strict):
    format: Literal["ptsnn-chip-ir"]
    format_version: Literal[1, 2]
    flush_steps: Annotated[int, Meta(ge=0, le=MAX_FLUSH_STEPS)]
    inputs: list[InputSchema]
    populations: list[Population]
    accumulators: list[AccumulatorSchema]
    synapses: list[SynapseSchema]
    meta: dict[str, Any] = {}


# ---------------------------------------------------------------------------------------------- writing
def to_dict(graph: ChipGraph) -> tuple[dict, dict[str, np.ndarray]]:
    """(structure as a JSON-able dict, arrays by HDF5 key)."""
    arrays: dict[str, np.ndarray] = {}
    pops = []
    for p in graph.populations:
        key = f"population/{p.name}/bias"
        arrays[key] = p.bias
        if isinstance(p, SigmaDeltaPopulation):
            pops.append(dict(kind="sigma_delta", name=p.name, size=p.size, vth=int(p.vth), bias=key,
                             message_bits=int(p.message_bits)))
            continue
        row = dict(kind="cuba", name=p.name, size=p.size, i_decay=int(p.i_decay), v_decay=int(p.v_decay),
                   vth=int(p.vth), role=p.role,
                   scale_exponent=None if p.scale_exponent is None else int(p.scale_exponent), bias=key)
        if isinstance(p, FireOncePopulation):
            row.update(kind="fire_once", inhibit_weight=int(p.inhibit_weight), inhibit_exp=int(p.inhibit_exp))
        pops.append(row)
    syns = []
    for s in graph.synapses:
        wkey = f"synapses/{s.name}/weight"
        arrays[wkey] = s.weight
        if isinstance(s, ConvSynapses):
            syns.append(dict(kind="conv", name=s.name, source=s.source, target=s.target, weight=wkey,
                             weight_shape=list(s.weight.shape), in_shape=list(s.in_shape),
                             out_shape=list(s.out_shape), stride=list(s.stride), padding=list(s.padding),
                             dilation=list(s.dilation), groups=int(s.groups), nonzero=int(np.count_nonzero(s.weight))))
            continue
        dkey = f"synapses/{s.name}/delay"
        arrays[dkey] = s.delay
        syns.append(dict(kind="dense", name=s.name, source=s.source, target=s.target, shape=list(s.shape),
                         weight=wkey, delay=dkey, weight_exp=int(s.weight_exp), nonzero=s.count(),
                         max_delay=s.max_delay))
    structure = dict(
        format=FORMAT, format_version=FORMAT_VERSION, flush_steps=int(graph.flush_steps), meta=graph.meta,
        inputs=[dict(name=i.name, size=int(i.size), message_bits=int(i.message_bits), levels=int(i.levels),
                     steps_per_frame=int(i.steps_per_frame)) for i in graph.inputs],
        populations=pops,
        accumulators=[dict(name=a.name, size=int(a.size), scale_exponent=int(a.scale_exponent))
                      for a in graph.accumulators],
        synapses=syns)
    return structure, arrays


def write_chip_graph(graph: ChipGraph, directory: str | os.PathLike, stem: str = "chip_graph") -> list[Path]:
    """Write ``<stem>.json`` and ``<stem>.h5`` atomically; the same graph always gives the same bytes."""
    import h5py

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    structure, arrays = to_dict(graph)
    json_path, h5_path = directory / f"{stem}.json", directory / f"{stem}.h5"
    atomic_write_text(json_path, json.dumps(structure, indent=1, sort_keys=True) + "\n")
    with atomic_output(h5_path) as tmp:
        with h5py.File(tmp, "w", track_order=True) as f:
            for key in sorted(arrays):
                f.create_dataset(key, data=np.asarray(arrays[key], np.int64), track_times=False)
    return [json_path, h5_path]


# ---------------------------------------------------------------------------------------------- reading
def parse_structure(text: str, where: str) -> GraphSchema:
    try:  # the one bounded JSON parser: no NaN literals (meta is free-form), bounded nesting
        raw = safeio.parse_json(text, where)
    except InputError as exc:
        raise IRError(str(exc)) from None
    if not isinstance(raw, dict):
        raise IRError(f"{where}: expected a JSON object, got {type(raw).__name__}")
    if raw.get("format") != FORMAT:
        raise IRError(f"{where} is not a ptsnn chip IR (format {raw.get('format')!r})")
    if raw.get("format_version") == 1:  # version 1: no kinds (CUBA populations and dense groups only)
        for p in raw.get("populations") or []:
            if isinstance(p, dict):
                p.setdefault("kind", "cuba")
        for s in raw.get("synapses") or []:
            if isinstance(s, dict):
                s.setdefault("kind", "dense")
    try:  # strict JSON types: an int field refuses 1.0, "1" and true; arrays for tuples
        return convert(raw, GraphSchema)
    except ValidationError as exc:
        raise IRError(f"{where}: {describe(exc, raw)}") from None


class _Arrays:
    """Bounded, typed access to the HDF5 arrays that the structure names. The file's datasets are listed once
    (one walk instead of a lookup per key: h5py's per-access cost is most of a small bundle's read)."""

    def __init__(self, f, where: str):
        import h5py

        self.f, self.where, self.used = f, where, set()
        self.datasets: dict[str, object] = {}
        f.visititems(lambda name, obj: self.datasets.__setitem__(name, obj) if isinstance(obj, h5py.Dataset) else None)

    def get(self, key: str, shape: tuple[int, ...], field: str) -> np.ndarray:
        ds = self.datasets.get(key.strip("/"))
        if ds is None:
            if key in self.f:
                raise IRError(f"{self.where}: {field}: '{key}' is not a dataset")
            raise IRError(f"{self.where}: {field}: dataset '{key}' missing")
        if tuple(ds.shape) != tuple(shape):
            raise IRError(f"{self.where}: {field}: '{key}' has shape {tuple(ds.shape)}, expected {tuple(shape)}")
        if int(np.prod(shape, dtype=np.int64)) > MAX_ARRAY_ELEMENTS:
            raise IRError(f"{self.where}: {field}: '{key}' declares {int(np.prod(shape))} elements (limit "
                          f"{MAX_ARRAY_ELEMENTS})")
        if ds.dtype.kind not in "iu":
            raise IRError(f"{self.where}: {field}: '{key}' has dtype {ds.dtype}, expected integers")
        self.used.add(key.strip("/"))
        return ds[()].astype(np.int64)

    def unused(self) -> list[str]:
        return sorted(set(self.datasets) - self.used)


def from_structure(s: GraphSchema, arrays: _Arrays) -> ChipGraph:
    pops = []
    for p in s.populations:
        bias = arrays.get(p.bias, (p.size,), f"populations.{p.name}.bias")
        if isinstance(p, SigmaDeltaSchema):
            pops.append(SigmaDeltaPopulation(p.name, p.size, p.vth, bias, p.message_bits))
        elif isinstance(p, FireOnceSchema):
            pops.append(FireOncePopulation(p.name, p.size, p.i_decay, p.v_decay, p.vth, bias, p.role,
                                           p.scale_exponent, p.inhibit_weight, p.inhibit_exp))
        else:
            pops.append(CubaPopulation(p.name, p.size, p.i_decay, p.v_decay, p.vth, bias, p.role, p.scale_exponent))
    syns = []
    for e in s.synapses:
        field = f"synapses.{e.name}"
        if isinstance(e, ConvSchema):
            syn = ConvSynapses(e.name, e.source, e.target, arrays.get(e.weight, e.weight_shape, f"{field}.weight"),
                               e.in_shape, e.out_shape, e.stride, e.padding, e.dilation, e.groups)
            if e.nonzero is not None and e.nonzero != int(np.count_nonzero(syn.weight)):
                raise IRError(f"{arrays.where}: {field}.nonzero {e.nonzero} does not match the weights")
        else:
            syn = Synapses(e.name, e.source, e.target, arrays.get(e.weight, e.shape, f"{field}.weight"),
                           arrays.get(e.delay, e.shape, f"{field}.delay"), e.weight_exp)
            if e.nonzero is not None and e.nonzero != syn.count():
                raise IRError(f"{arrays.where}: {field}.nonzero {e.nonzero} does not match the weights")
            if e.max_delay is not None and e.max_delay != syn.max_delay:
                raise IRError(f"{arrays.where}: {field}.max_delay {e.max_delay} does not match the delays")
        syns.append(syn)
    inputs = [HostInput(i.name, i.size, i.message_bits, i.levels, i.steps_per_frame) for i in s.inputs]
    accs = [Accumulator(a.name, a.size, a.scale_exponent) for a in s.accumulators]
    return ChipGraph(inputs, pops, accs, syns, s.flush_steps, dict(s.meta))


def read_chip_graph(directory: str | os.PathLike, stem: str = "chip_graph") -> ChipGraph:
    """Read and validate ``<stem>.json`` + ``<stem>.h5``; any defect is one :class:`IRError` line."""
    import h5py

    directory = Path(directory)
    json_path, h5_path = directory / f"{stem}.json", directory / f"{stem}.h5"
    for p in (json_path, h5_path):
        if not p.is_file():
            raise IRError(f"{p}: missing")
    if json_path.stat().st_size > MAX_JSON_BYTES:
        raise IRError(f"{json_path}: larger than {MAX_JSON_BYTES >> 20} MiB")
    try:
        text = json_path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise IRError(f"{json_path}: not UTF-8 text") from None
    structure = parse_structure(text, str(json_path))
    try:
        f = h5py.File(h5_path, "r")
    except OSError as exc:
        raise IRError(f"{h5_path}: not a readable HDF5 file ({exc})") from None
    with f:
        arrays = _Arrays(f, str(h5_path))
        try:
            graph = from_structure(structure, arrays)
        except IRError as exc:
            msg = str(exc)
            raise IRError(msg if msg.startswith(str(directory)) else f"{json_path}: {msg}") from None
        except (OSError, KeyError, ValueError, TypeError) as exc:  # h5py/numpy on a corrupt file
            raise IRError(f"{h5_path}: unreadable ({type(exc).__name__}: {exc})") from None
        extra = arrays.unused()
        if extra:
            raise IRError(f"{h5_path}: datasets not named by {json_path.name}: {', '.join(extra[:3])}")
    return graph
