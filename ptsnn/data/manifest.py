"""Generic manifests: a CSV, JSON or JSON-lines list of ``path,label[,speaker][,split][,fold][,utt_id]``.

Relative paths are resolved against the manifest's folder, so a corpus folder can be moved as a whole.
EmoBox's own metadata files load too: its column names (``wav``, ``emo``, ``spk``, ``key``) are accepted
as aliases, and a JSON object keyed by utterance id is read as one record per key.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ptsnn.data.corpus import SPLIT_ALIASES, Corpus, Utterance
from ptsnn import safeio
from ptsnn.errors import InputError

COLUMNS = ("utt_id", "path", "label", "speaker", "split", "fold")
_ALIASES = {
    "path": ("path", "wav", "audio", "file", "filename"),
    "label": ("label", "emo", "emotion"),
    "speaker": ("speaker", "spk"),
    "split": ("split", "subset"),
    "fold": ("fold",),
    "utt_id": ("utt_id", "id", "key", "sid"),
}
UNKNOWN_SPEAKER = "unknown"


def load_manifest(
    path: str | os.PathLike[str],
    *,
    classes: Sequence[str] | None = None,
    name: str = "manifest",
    check_files: bool = True,
) -> Corpus:
    """Load a manifest as a :class:`Corpus`.

    ``classes`` fixes the label order and rejects other labels; otherwise a JSON manifest's ``classes``
    entry is used, else the sorted set of labels. ``check_files`` verifies that every audio file exists.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: manifest not found")
    suffix = p.suffix.lower()
    text = safeio.read_text(p, "manifest", encoding="utf-8-sig")  # tolerate the BOM spreadsheet programs write
    if "\x00" in text:
        raise InputError(f"{p}: manifest contains NUL bytes (a binary file, not text)")
    declared: Sequence[str] | None = None
    if suffix == ".csv":
        rows = _csv_rows(p, text)
    elif suffix == ".json":
        rows, declared = _json_rows(p, text)
    elif suffix == ".jsonl":
        rows = _jsonl_rows(p, text)
    else:
        raise InputError(f"{p}: unknown manifest format {p.suffix!r} (expected .csv, .json or .jsonl)")
    wanted = list(classes) if classes is not None else (list(declared) if declared is not None else None)
    utterances = [_utterance(p, where, row, wanted, check_files) for where, row in rows]
    if not utterances:
        raise InputError(f"{p}: manifest lists no utterances")
    labels = wanted if wanted is not None else sorted({u.label for u in utterances})
    return Corpus(name=name, root=p.parent, utterances=tuple(utterances), classes=tuple(labels),
                  protocol=f"manifest {p.name}: fixed split and/or fold columns as given")


def _csv_rows(p: Path, text: str) -> list[tuple[str, dict[str, Any]]]:
    reader = csv.DictReader(io.StringIO(text))
    try:
        return _csv_records(p, reader)
    except csv.Error as exc:  # a field above csv.field_size_limit(), a bad quote, ...
        raise InputError(f"{p}: line {reader.line_num}: malformed CSV ({exc})") from None


def _csv_records(p: Path, reader: csv.DictReader) -> list[tuple[str, dict[str, Any]]]:
    if not reader.fieldnames:
        raise InputError(f"{p}: manifest is empty (expected a header line with path,label,...)")
    header = _columns(p, reader.fieldnames)
    rows = []
    for raw in reader:
        if not any((v or "").strip() for v in raw.values() if isinstance(v, str)):
            continue  # blank line
        row = {header[k]: (v or "").strip() for k, v in raw.items() if k in header and isinstance(v, str)}
        rows.append((f"line {reader.line_num}", row))
    return rows


def _columns(p: Path, names: Iterable[str], where: str = "manifest") -> dict[str, str]:
    """Map the file's column names to canonical ones; missing required columns are an error."""
    names = [n for n in names if n is not None]
    lookup = {n.strip().lower(): n for n in names}
    mapping: dict[str, str] = {}
    for canonical, aliases in _ALIASES.items():
        for alias in aliases:
            if alias in lookup:
                mapping[lookup[alias]] = canonical
                break
    for required in ("path", "label"):
        if required not in mapping.values():
            raise InputError(f"{p}: {where} has no {required!r} column (columns: {', '.join(names) or 'none'})")
    return mapping


def _records(p: Path, records: Iterable[tuple[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    rows = []
    for where, rec in records:
        if not isinstance(rec, Mapping):
            raise InputError(f"{p}: {where} is not an object with path and label fields")
        header = _columns(p, [str(k) for k in rec], where)
        rows.append((where, {header[k]: rec[k] for k in rec if k in header}))
    return rows


def _json_rows(p: Path, text: str) -> tuple[list[tuple[str, dict[str, Any]]], Sequence[str] | None]:
    doc = safeio.parse_json(text, str(p))
    declared = None
    if isinstance(doc, Mapping) and "utterances" in doc:
        declared = doc.get("classes")
        if declared is not None and not (isinstance(declared, list) and all(isinstance(c, str) for c in declared)):
            raise InputError(f"{p}: 'classes' must be a list of label names")
        doc = doc["utterances"]
    if isinstance(doc, list):
        items: Iterator[tuple[str, Any]] = ((f"entry {i + 1}", rec) for i, rec in enumerate(doc))
    elif isinstance(doc, Mapping):  # EmoBox style: {utt_id: {wav, emo, ...}}
        items = ((f"entry {k!r}", {"utt_id": k, **v} if isinstance(v, Mapping) else v) for k, v in doc.items())
    else:
        raise InputError(f"{p}: expected a list of utterance objects")
    return _records(p, items), declared


def _jsonl_rows(p: Path, text: str) -> list[tuple[str, dict[str, Any]]]:
    items = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        items.append((f"line {n}", safeio.parse_json(line, f"{p}: line {n}")))
    return _records(p, items)


_Text = Annotated[str, Field(max_length=4096, pattern=r"^[^\x00]*$")]


class ManifestRow(BaseModel):
    """One manifest record after column aliasing: plain text (numbers allowed where spreadsheets write them),
    bounded length, no NUL bytes; anything else (objects, lists) is refused."""

    model_config = ConfigDict(extra="forbid")
    path: _Text | None = None
    label: _Text | Annotated[int, Field(strict=True)] | None = None
    speaker: _Text | Annotated[int, Field(strict=True)] | None = None
    split: _Text | None = None
    fold: _Text | Annotated[int, Field(strict=True)] | Annotated[float, Field(strict=True)] | None = None
    utt_id: _Text | Annotated[int, Field(strict=True)] | None = None


def _utterance(p: Path, where: str, row: Mapping[str, Any], classes: Sequence[str] | None,
               check_files: bool) -> Utterance:
    try:
        ManifestRow.model_validate(dict(row))
    except ValidationError as exc:
        raise InputError(f"{p}: {where}: {safeio.describe_validation(exc)}") from None
    rel = str(row.get("path") or "").strip()
    label = str(row.get("label") or "").strip()
    if not rel:
        raise InputError(f"{p}: {where}: empty path")
    if not label:
        raise InputError(f"{p}: {where}: empty label")
    if classes is not None and label not in classes:
        raise InputError(f"{p}: {where}: unknown label {label!r} (classes: {', '.join(classes)})")
    audio = Path(rel).expanduser()
    audio = audio if audio.is_absolute() else p.parent / audio
    if check_files and not audio.is_file():
        raise InputError(f"{p}: {where}: audio file {audio} not found")
    split = str(row.get("split") or "").strip().lower() or None
    if split is not None:
        if split not in SPLIT_ALIASES:
            raise InputError(f"{p}: {where}: split {split!r} is not train, valid or test")
        split = SPLIT_ALIASES[split]
    fold_text = str(row.get("fold") if row.get("fold") is not None else "").strip()
    fold = None
    if fold_text:
        try:
            fold = int(float(fold_text)) if float(fold_text).is_integer() else None
        except ValueError:
            fold = None
        if fold is None or fold < 1:
            raise InputError(f"{p}: {where}: fold {fold_text!r} is not a positive integer")
    speaker = str(row.get("speaker") or "").strip() or UNKNOWN_SPEAKER
    utt_id = str(row.get("utt_id") or "").strip() or Path(rel).with_suffix("").as_posix()
    return Utterance(path=audio, label=label, speaker=speaker, utt_id=utt_id, fold=fold, split=split)


def write_manifest(path: str | os.PathLike[str], utterances: Iterable[Utterance]) -> Path:
    """Write a CSV manifest (paths relative to its folder when possible), atomically."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for u in utterances:
        try:
            rel = Path(os.path.relpath(u.path, p.parent)).as_posix()
        except ValueError:  # another drive on Windows
            rel = str(u.path)
        writer.writerow([u.utt_id, rel, u.label, u.speaker, u.split or "", "" if u.fold is None else u.fold])
    from ptsnn.fileio import atomic_write_text

    return atomic_write_text(p, buf.getvalue())
