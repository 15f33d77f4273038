"""Typed schema of a bundle's ``manifest.json`` and the checks that keep a bundle inside its folder.

A bundle comes from a user (or the internet), so its manifest is validated like a hardware profile: one
strict typed schema (``ptsnn.formats.strict``), unknown fields refused, types and bounds checked, and every
failure one line ``manifest.json: field.path: problem``. File entries are POSIX paths relative to the bundle folder: no
absolute paths, no ``..``, no symlinks anywhere in the folder, no files that the manifest does not list.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

from msgspec import Meta, ValidationError

from ptsnn.errors import InputError
from ptsnn.formats.strict import Strict, check_entries, convert, describe

MANIFEST = "manifest.json"
MAX_MANIFEST_BYTES = 4 << 20  # a real manifest is a few kB; the cap keeps json.loads bounded
MAX_BUNDLE_ENTRIES = 1000  # files and folders walked; a real bundle has about ten
MAX_CLASSES = 1000
MAX_LAYERS = 10_000

Sha256 = Annotated[str, Meta(pattern=r"^[0-9a-f]{64}$")]
Name = Annotated[str, Meta(min_length=1, max_length=200)]
Text = Annotated[str, Meta(max_length=1000)]
Count = Annotated[int, Meta(ge=0, le=2**40)]
Scalar = bool | int | float | str | None
Percent = Annotated[float, Meta(ge=0, le=100)]
Fraction = Annotated[float, Meta(ge=0, le=1)]
NonNegative = Annotated[float, Meta(ge=0)]
MessageBits = Annotated[int, Meta(ge=0, le=24)]


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


class SourceInfo(Strict):
    file: Name
    sha256: Sha256
    quantization: Text


class ProfileRef(Strict):
    name: Name
    sha256: Sha256


class Partition(Strict):
    host: Annotated[list[Text], Meta(max_length=100)]
    chip: Annotated[list[Name], Meta(max_length=MAX_LAYERS)]


class NetxInfo(Strict):
    file: str | None
    layers: Annotated[list[Name], Meta(max_length=MAX_LAYERS)]
    input_message_bits: MessageBits

    def __post_init__(self):
        if self.file is not None:
            try:
                check_relative_path(self.file)
            except ValueError as exc:
                raise ValueError(f"file: {exc}") from None


class Timing(Strict):
    flush_steps: Annotated[int, Meta(ge=0, le=1_000_000)]  # the real bound is the graph's latency (see bundle_io)
    steps_per_frame: Annotated[int, Meta(ge=1, le=1000)]


class LayerRow(Strict):
    layer: Name
    type: Name
    neurons: Count
    synapses: Count
    weight_range: Text
    exponent: Annotated[int, Meta(ge=-64, le=64)] | None
    max_delay: Annotated[int, Meta(ge=0, le=1000)]
    cores: Count
    where: Literal["host", "netx", "lava"]
    message_bits: MessageBits | None = None
    smape: float | None = None
    saturated_pct: Percent | None = None
    silent_pct: Percent | None = None
    rate: NonNegative | None = None


class ScoreInfo(Strict):
    """The score temperature fitted at training time (``ptsnn.train.calibration.calibrate``) and its record."""
    temperature: Annotated[float, Meta(gt=0, le=1e6)]
    fitted_on: Text | None = None
    count: Count | None = None
    bins: Annotated[int, Meta(ge=1, le=1000)] | None = None
    nll_before: NonNegative | None = None
    nll_after: NonNegative | None = None
    ece_before: Fraction | None = None
    ece_after: Fraction | None = None
    logits: Text | None = None


class Manifest(Strict):
    format: Literal["ptsnn-bundle"]
    format_version: Literal[1]
    versions: Annotated[dict[str, Any], Meta(max_length=100)]  # Name -> Text, checked with the key named
    source: SourceInfo
    profile: ProfileRef
    classes: Annotated[list[Name], Meta(max_length=MAX_CLASSES)]
    frontend: Annotated[dict[str, Any], Meta(max_length=100)]  # Name -> Scalar
    partition: Partition
    netx: NetxInfo
    timing: Timing
    layers: Annotated[list[LayerRow], Meta(max_length=MAX_LAYERS)]
    files: Annotated[dict[str, Any], Meta(min_length=1, max_length=MAX_BUNDLE_ENTRIES)]  # RelPath -> Sha256
    scores: ScoreInfo | None = None  # absent or null: no fitted temperature (runs use T = 1 and say so)
    model_kind: Literal["ptssnn", "ttfs"] = "ptssnn"  # ttfs: graph.meta drives the host part (docs/ttfs.md)
    notes: Annotated[dict[str, Any], Meta(max_length=100)] = {}  # Name -> Text: writers skipped, and why

    def __post_init__(self):
        check_entries("versions", self.versions, Text, _name)
        check_entries("frontend", self.frontend, Scalar, _name)
        check_entries("files", self.files, Sha256, check_relative_path)
        check_entries("notes", self.notes, Text, _name)
        if len(set(self.classes)) != len(self.classes):
            raise ValueError("classes: class names repeat")


def _name(key: str) -> None:
    if not 1 <= len(key) <= 200:
        raise ValueError(f"{key[:40]!r} is not a name of 1 to 200 characters")


def parse_manifest(data: Any, where: Path) -> Manifest:
    """The manifest's parsed JSON -> :class:`Manifest`, or one line naming the field and the problem."""
    if not isinstance(data, dict):
        raise InputError(f"{where}: must be a JSON object (got {type(data).__name__})")
    try:
        return convert(data, Manifest)
    except ValidationError as exc:
        raise InputError(f"{where}: {describe(exc, data)}") from None


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
