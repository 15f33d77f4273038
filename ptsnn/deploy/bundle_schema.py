"""Typed schema of a bundle's ``manifest.json`` and the checks that keep a bundle inside its folder.

A bundle comes from a user (or the internet), so its manifest is validated like a hardware profile: one
strict pydantic model, unknown fields refused, types and bounds checked, and every failure one line
``manifest.json: field.path: problem``. File entries are POSIX paths relative to the bundle folder: no
absolute paths, no ``..``, no symlinks anywhere in the folder, no files that the manifest does not list.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)

from ptsnn.errors import InputError

MANIFEST = "manifest.json"
MAX_MANIFEST_BYTES = 4 << 20  # a real manifest is a few kB; the cap keeps json.loads bounded
MAX_BUNDLE_ENTRIES = 1000  # files and folders walked; a real bundle has about ten
MAX_CLASSES = 1000
MAX_LAYERS = 10_000

Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Text = Annotated[str, StringConstraints(max_length=1000)]
Count = Annotated[int, Field(ge=0, le=2**40)]
Scalar = bool | int | float | str | None


def check_relative_path(rel: str) -> str:
    """A manifest file entry: a plain relative POSIX path that cannot leave the bundle folder."""
    if not rel or "\\" in rel or "\x00" in rel or len(rel) > 255:
        raise ValueError(f"{rel!r} is not a plain relative path")
    p = PurePosixPath(rel)
    if p.is_absolute() or rel.startswith("~"):
        raise ValueError(f"{rel!r} is absolute; bundle paths are relative to the bundle folder")
    if any(part in ("..", ".", "") for part in rel.split("/")):
        raise ValueError(f"{rel!r} leaves the bundle folder or is not normalised (no '..', '.', '//')")
    if rel == MANIFEST:
        raise ValueError(f"{rel!r}: the manifest does not list itself")
    return rel


RelPath = Annotated[str, Field(min_length=1)]


class _Strict(BaseModel):
    # strict: "13" is not 13; forbid: an unknown field is a typo or a tampered file, not something to ignore
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


class SourceInfo(_Strict):
    file: Name
    sha256: Sha256
    quantization: Text


class ProfileRef(_Strict):
    name: Name
    sha256: Sha256


class Partition(_Strict):
    host: list[Text] = Field(max_length=100)
    chip: list[Name] = Field(max_length=MAX_LAYERS)


class NetxInfo(_Strict):
    file: str | None
    layers: list[Name] = Field(max_length=MAX_LAYERS)
    input_message_bits: int = Field(ge=0, le=24)

    @field_validator("file")
    @classmethod
    def _relative(cls, v):
        return None if v is None else check_relative_path(v)


class Timing(_Strict):
    flush_steps: int = Field(ge=0, le=1_000_000)  # the real bound is the graph's latency (see bundle_io)
    steps_per_frame: int = Field(ge=1, le=1000)


class LayerRow(_Strict):
    layer: Name
    type: Name
    neurons: Count
    synapses: Count
    weight_range: Text
    exponent: int | None = Field(ge=-64, le=64)
    max_delay: int = Field(ge=0, le=1000)
    cores: Count
    where: Literal["host", "netx", "lava"]
    message_bits: int | None = Field(default=None, ge=0, le=24)
    smape: float | None = None
    saturated_pct: float | None = Field(default=None, ge=0, le=100)
    silent_pct: float | None = Field(default=None, ge=0, le=100)
    rate: float | None = Field(default=None, ge=0)


class ScoreInfo(_Strict):
    """The score temperature fitted at training time (``ptsnn.train.calibration.calibrate``) and its record."""
    temperature: float = Field(gt=0, le=1e6)
    fitted_on: Text | None = None
    count: Count | None = None
    bins: int | None = Field(default=None, ge=1, le=1000)
    nll_before: float | None = Field(default=None, ge=0)
    nll_after: float | None = Field(default=None, ge=0)
    ece_before: float | None = Field(default=None, ge=0, le=1)
    ece_after: float | None = Field(default=None, ge=0, le=1)
    logits: Text | None = None


class Manifest(_Strict):
    format: Literal["ptsnn-bundle"]
    format_version: Literal[1]
    versions: dict[Name, Text] = Field(max_length=100)
    source: SourceInfo
    profile: ProfileRef
    classes: list[Name] = Field(max_length=MAX_CLASSES)
    frontend: dict[Name, Scalar] = Field(max_length=100)
    partition: Partition
    netx: NetxInfo
    timing: Timing
    layers: list[LayerRow] = Field(max_length=MAX_LAYERS)
    scores: ScoreInfo | None = None  # absent or null: no fitted temperature (runs use T = 1 and say so)
    files: dict[RelPath, Sha256] = Field(min_length=1, max_length=MAX_BUNDLE_ENTRIES)
    model_kind: Literal["ptssnn", "ttfs"] = "ptssnn"  # ttfs: graph.meta drives the host part (docs/ttfs.md)
    notes: dict[Name, Text] = Field(default_factory=dict, max_length=100)  # writers skipped, and why

    @field_validator("files")
    @classmethod
    def _relative_files(cls, v: dict[str, str]):
        for rel in v:
            check_relative_path(rel)
        return v

    @field_validator("classes")
    @classmethod
    def _unique_classes(cls, v: list[str]):
        if len(set(v)) != len(v):
            raise ValueError("class names repeat")
        return v


def parse_manifest(data: Any, where: Path) -> Manifest:
    """The manifest's parsed JSON -> :class:`Manifest`, or one line naming the field and the problem."""
    if not isinstance(data, dict):
        raise InputError(f"{where}: must be a JSON object (got {type(data).__name__})")
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        raise InputError(f"{where}: {describe(exc)}") from None


def describe(exc: ValidationError) -> str:
    """``field.path: problem (got value)`` for the first error, plus ``(and N more)``; always one line."""
    errors = sorted(exc.errors(include_url=False), key=lambda e: e["type"] != "extra_forbidden")
    err = errors[0]
    path = ".".join(str(p) for p in err["loc"]) or "(top level)"
    kind = err["type"]
    problem = "unknown field" if kind == "extra_forbidden" else str(err["msg"]).removeprefix("Value error, ")
    got = "" if kind in ("extra_forbidden", "missing", "value_error") else f" (got {_show(err.get('input'))})"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{path}: {problem}{got}{more}"


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_tree(root: Path, listed: set[str]) -> None:
    """Walk the bundle folder without following links: every entry is a folder or a regular file, no symlink
    anywhere, and every file is either ``manifest.json`` or listed in the manifest."""
    seen = 0
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in [*dirnames, *filenames]:
            seen += 1
            if seen > MAX_BUNDLE_ENTRIES:
                raise InputError(f"{root}: more than {MAX_BUNDLE_ENTRIES} entries; not a ptsnn bundle")
            full = Path(dirpath, name)
            rel = full.relative_to(root).as_posix()
            mode = os.lstat(full).st_mode
            if stat.S_ISLNK(mode):
                raise InputError(f"{root}: {rel} is a symbolic link; bundles hold plain files only")
            if stat.S_ISDIR(mode):
                continue
            if not stat.S_ISREG(mode):
                raise InputError(f"{root}: {rel} is not a regular file")
            if rel != MANIFEST and rel not in listed:
                raise InputError(f"{root}: {rel} is not listed in manifest.json (unknown file; remove it or "
                                 f"convert again)")


def resolve_inside(root: Path, rel: str) -> Path:
    """``root / rel`` resolved; refused unless it stays inside ``root`` (defence in depth after the checks
    on the entry's spelling and the symlink-free walk)."""
    full = (root / rel).resolve()
    if not full.is_relative_to(root):
        raise InputError(f"{root}: {rel} resolves outside the bundle folder ({full})")
    return full
