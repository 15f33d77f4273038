"""What ``ptsnn run PATH...`` means by its paths: files, folders (recursively) and manifests, expanded into
one :class:`RunItem` per utterance, in argument order (folders sorted).

A path that cannot be used (missing, an empty folder, an unreadable manifest) is an item with an ``error``,
so that a batch reports it as a row and goes on with the rest. Folders contribute the files this bundle can
take: audio (``ptsnn.data.audio.AUDIO_SUFFIXES``) for bundles whose host part starts at the waveform,
``.npy`` features otherwise; hidden files and folders are skipped and symlinked folders are not followed
(no cycles). Manifests are the training manifests (``ptsnn.data.manifest``: ``.csv``, ``.json``,
``.jsonl``); their labels are carried along as reference labels.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ptsnn.errors import PtsnnError

MANIFEST_SUFFIXES = (".csv", ".json", ".jsonl")
FEATURE_SUFFIX = ".npy"


@dataclass(frozen=True)
class RunItem:
    path: Path
    true_label: str | None = None  # from a manifest
    error: str | None = None  # the path could not be expanded; this item is an error row
    exit_code: int = 0


def wanted_suffixes(takes_audio: bool) -> tuple[str, ...]:
    from ptsnn.data.audio import AUDIO_SUFFIXES

    return AUDIO_SUFFIXES if takes_audio else (FEATURE_SUFFIX,)


def expand_paths(paths, takes_audio: bool) -> list[RunItem]:
    suffixes = wanted_suffixes(takes_audio)
    items: list[RunItem] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = _walk(p, suffixes)
            items += [RunItem(f) for f in found] or [
                RunItem(p, error=f"{p}: folder has no {' or '.join(suffixes)} files", exit_code=2)]
        elif p.suffix.lower() in MANIFEST_SUFFIXES and p.is_file():
            items += _manifest_items(p)
        elif not p.exists():
            items.append(RunItem(p, error=f"{p}: no such file or folder", exit_code=2))
        else:  # a file given by name is tried whatever its ending; reading it says what is wrong
            items.append(RunItem(p))
    return items


def _walk(root: Path, suffixes: tuple[str, ...]) -> list[Path]:
    found = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(folder, f) for f in sorted(files)
                  if not f.startswith(".") and Path(f).suffix.lower() in suffixes]
    return found


def _manifest_items(path: Path) -> list[RunItem]:
    from ptsnn.data.manifest import load_manifest

    try:  # missing audio files become error rows of their own, not a refusal of the whole manifest
        corpus = load_manifest(path, check_files=False)
    except PtsnnError as exc:
        return [RunItem(path, error=str(exc), exit_code=exc.exit_code)]
    return [RunItem(u.path, true_label=u.label) for u in corpus.utterances]
