"""Loader for SEE (Single-eye Event-based Emotion, Zhang et al., SIGGRAPH 2023) in its published layout.

```
SEE/event/<emotion>/<sequence>/00000.jpg ...   event frames (33 ms accumulations)
SEE/frame/<emotion>/<sequence>/00000.jpg ...   intensity frames, same sequence names
SEE/emotion.json  {"labels": [...], "database": {"<sequence>": {"subset": "training"|"testing",
                                                  "annotations": {"label": "<emotion>", "segment": [s, e]}}}}
```

Sequence names are ``[seq#]_[ID]_[sex]_[age]_[degree]_[lighting]_[emotion]_[length]_[take#]``; the subject is
``ID`` and the lighting condition the sixth field. ``segment`` is read as inclusive frame indices
``[start, end]`` of the annotated expression. Each sequence's segment is resampled to ``frames`` frames
(uniform, nearest frame) and each image resized to ``size x size`` grey (Pillow, bilinear); only the frames
that the resampling selects are decoded. The published ``testing`` subset is the test split; a
subject-disjoint ``valid_fraction`` of the training subjects becomes the validation split.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from ptsnn.data.eye.classes import canonical_lighting
from ptsnn.data.eye.dataset import EyeDataset, check_frames_size, parse_channels, resample_frames, subject_split
from ptsnn.errors import InputError

ANNOTATION_FILE = "emotion.json"
SUBSETS = {"training": "train", "testing": "test"}
_FRAME_NAME = re.compile(r"^(\d+)\.(jpg|jpeg|png)$", re.IGNORECASE)
_LAYOUT = "SEE/{event,frame}/<emotion>/<sequence>/00000.jpg and SEE/emotion.json"


def load_see(root: str | os.PathLike[str], *, frames: int = 24, size: int = 32, channels: str = "frame+event",
             valid_fraction: float = 0.15, annotations: str = ANNOTATION_FILE) -> EyeDataset:
    """The SEE data set as an :class:`EyeDataset` (channels ``frame`` and/or ``event``, grey, [0, 1])."""
    check_frames_size(frames, size)
    base = Path(root)
    if (base / "SEE").is_dir() and not (base / annotations).is_file():
        base = base / "SEE"
    if not base.is_dir():
        raise InputError(f"{base}: SEE folder not found (expected {_LAYOUT})")
    if not 0.0 <= valid_fraction < 1.0:
        raise InputError(f"valid_fraction={valid_fraction}: expected 0 <= fraction < 1")
    use_frames, use_events = parse_channels(channels)
    trees = (["frame"] if use_frames else []) + (["event"] if use_events else [])
    for tree in trees:
        if not (base / tree).is_dir():
            raise InputError(f"{base / tree}: missing (expected {_LAYOUT})")
    classes, database = _read_annotations(base / annotations)
    if use_frames and use_events:
        _check_trees_agree(base, classes)

    arrays, labels, lighting, subjects, subsets, names = [], [], [], [], [], []
    for name in sorted(database):
        entry = database[name]
        label = entry["label"]
        subject, light = _parse_sequence_name(name, base / annotations)
        folders = [base / tree / label / name for tree in trees]
        listings = [_frame_files(folder) for folder in folders]
        if len(listings) == 2 and len(listings[0]) != len(listings[1]):
            raise InputError(f"{folders[1]}: {len(listings[1])} event frames but {folders[0]} has "
                             f"{len(listings[0])} intensity frames")
        start, end = entry["segment"]
        if end >= len(listings[0]):
            raise InputError(f"{base / annotations}: {name}: segment [{start}, {end}] past the sequence's "
                             f"last frame {len(listings[0]) - 1}")
        pick = start + resample_frames(end - start + 1, frames)
        channels_data = [np.stack([_read_grey(files[i], size) for i in pick]) for files in listings]
        arrays.append(np.stack(channels_data, axis=1))
        labels.append(classes.index(label))
        lighting.append(light)
        subjects.append(subject)
        subsets.append(SUBSETS[entry["subset"]])
        names.append(name)
    if not names:
        raise InputError(f"{base / annotations}: database lists no sequences")

    train_subjects = sorted({s for s, part in zip(subjects, subsets) if part == "train"})
    valid = {s for s, part in subject_split(train_subjects, (1 - valid_fraction, valid_fraction, 0.0),
                                            salt="see-valid:").items() if part == "valid"} if valid_fraction else set()
    splits = ["valid" if part == "train" and s in valid else part for s, part in zip(subjects, subsets)]
    return EyeDataset(name="see", sequences=np.stack(arrays), labels=np.asarray(labels, dtype=np.int64),
                      classes=tuple(classes), channels=tuple(trees), lighting=np.asarray(lighting),
                      subjects=np.asarray(subjects), splits=np.asarray(splits), names=tuple(names))


def _read_annotations(path: Path) -> tuple[list[str], dict[str, dict]]:
    """``(labels, {sequence: {subset, label, segment}})`` from emotion.json, every field checked."""
    from ptsnn import safeio

    if not path.exists():
        raise InputError(f"{path}: missing (expected {_LAYOUT})")
    doc = safeio.read_json(path, "annotation file")
    if not isinstance(doc, dict):
        raise InputError(f"{path}: expected an object with 'labels' and 'database'")
    labels = doc.get("labels")
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) and x for x in labels) \
            or len(set(labels)) != len(labels):
        raise InputError(f"{path}: 'labels' must be a non-empty list of distinct class names")
    database = doc.get("database")
    if not isinstance(database, dict):
        raise InputError(f"{path}: 'database' must be an object of sequences")
    out = {}
    for name, entry in database.items():
        where = f"{path}: database[{name!r}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("annotations"), dict):
            raise InputError(f"{where}: expected an object with 'subset' and 'annotations'")
        subset = entry.get("subset")
        if subset not in SUBSETS:
            raise InputError(f"{where}.subset: {subset!r}, expected 'training' or 'testing'")
        label = entry["annotations"].get("label")
        if label not in labels:
            raise InputError(f"{where}.annotations.label: {label!r} is not in 'labels'")
        segment = entry["annotations"].get("segment")
        if not (isinstance(segment, list) and len(segment) == 2
                and all(isinstance(v, int) and not isinstance(v, bool) for v in segment)
                and 0 <= segment[0] <= segment[1]):
            raise InputError(f"{where}.annotations.segment: {segment!r}, expected [start, end] frame indices "
                             "with 0 <= start <= end")
        out[name] = {"subset": subset, "label": label, "segment": segment}
    return labels, out


def _parse_sequence_name(name: str, source: Path) -> tuple[str, str]:
    """``(subject ID, lighting)`` of ``[seq#]_[ID]_[sex]_[age]_[degree]_[lighting]_[emotion]_[length]_[take#]``."""
    fields = name.split("_")
    if len(fields) != 9:
        raise InputError(f"{source}: sequence name {name!r} does not have the 9 fields "
                         "[seq#]_[ID]_[sex]_[age]_[degree]_[lighting]_[emotion]_[length]_[take#]")
    lighting = canonical_lighting(fields[5])
    if lighting is None:
        raise InputError(f"{source}: sequence {name!r}: unknown lighting condition {fields[5]!r} "
                         "(expected normal, overexposure, low-light or HDR)")
    return fields[1], lighting


def _frame_files(folder: Path) -> list[Path]:
    """The numbered frames of one sequence folder, in order; a gap in the numbering is an error."""
    try:
        entries = [e for e in os.scandir(folder) if e.is_file() and not e.name.startswith(".")]
    except FileNotFoundError:
        raise InputError(f"{folder}: sequence folder missing") from None
    except OSError as exc:
        raise InputError(f"{folder}: cannot list ({exc.strerror})") from None
    numbered = {}
    for entry in entries:
        match = _FRAME_NAME.match(entry.name)
        if not match:
            raise InputError(f"{folder / entry.name}: not a numbered frame (expected 00000.jpg, 00001.jpg, ...)")
        index = int(match.group(1))
        if index in numbered:
            raise InputError(f"{folder / entry.name}: frame number {index} appears twice")
        numbered[index] = Path(entry.path)
    if not numbered:
        raise InputError(f"{folder}: no frames")
    missing = sorted(set(range(max(numbered) + 1)) - set(numbered))
    if missing:
        shown = ", ".join(f"{m:05d}" for m in missing[:3]) + (" ..." if len(missing) > 3 else "")
        raise InputError(f"{folder}: missing frame(s) {shown} of 00000..{max(numbered):05d}")
    return [numbered[i] for i in range(len(numbered))]


def _check_trees_agree(base: Path, classes: list[str]) -> None:
    """event/ and frame/ must hold the same emotion folders and the same sequence names."""
    for label in classes:
        present = []
        for tree in ("frame", "event"):
            folder = base / tree / label
            present.append({e.name for e in os.scandir(folder) if e.is_dir()} if folder.is_dir() else set())
        only_frame, only_event = sorted(present[0] - present[1]), sorted(present[1] - present[0])
        if only_frame or only_event:
            tree, names = ("frame", only_frame) if only_frame else ("event", only_event)
            other = "event" if tree == "frame" else "frame"
            raise InputError(f"{base / tree / label / names[0]}: sequence has no counterpart in "
                             f"{base / other / label} (event/ and frame/ trees disagree)")


MAX_FRAME_PIXELS = 4096 * 4096


def _read_grey(path: Path, size: int) -> np.ndarray:
    """One image as ``[size, size]`` float32 grey in [0, 1]; a corrupt or unreadable file is an InputError."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:  # reads the header only
            w, h = img.size
            if w * h > MAX_FRAME_PIXELS:  # refuse before decoding (PIL's own bomb limit is ~179 Mpx)
                raise InputError(f"{path}: a {w}x{h} image; frames of at most {MAX_FRAME_PIXELS:,} pixels are read "
                                 "(eye cameras record 346x260 to 1280x720)")
            img.load()  # decode now: a truncated or corrupt file fails here, not later
            grey = img.convert("L").resize((size, size), Image.BILINEAR)
    except FileNotFoundError:
        raise InputError(f"{path}: missing") from None
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{path}: corrupt or unreadable image ({exc})") from None
    return np.asarray(grey, dtype=np.float32) / 255.0
