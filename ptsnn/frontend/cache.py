"""On-disk feature cache: SSL features cost ~0.1 s per second of audio on two cores, so compute them once.

Key = (front-end spec hash, sha256 of the audio file's bytes, sample rate the audio is read at). The
spec covers everything that changes the numbers (fbank parameters; weight hash, layer, normalisation),
so a different front end or an edited audio file never hits a stale entry; the model's path is left out
of the hash when its weights are hashed, so moving a model folder keeps its entries. Layout::

    <cache_dir>/<spec hash[:24]>/spec.json                 what produced the entries (for people)
    <cache_dir>/<spec hash[:24]>/<ab>/<audio sha256>_<sr>.npy

Entries are written to a temporary file and moved into place with ``os.replace``, so a concurrent or
interrupted run never leaves a half-written array; an unreadable entry is recomputed.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ptsnn import safeio
from ptsnn.errors import InputError
from ptsnn.frontend.base import FrontEnd, file_sha256
from ptsnn.fileio import atomic_output

CACHE_ENV = "PTSNN_CACHE_DIR"


def default_cache_dir() -> Path:
    """``$PTSNN_CACHE_DIR`` or ``~/.cache/ptsnn/features``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "ptsnn" / "features"


def cache_path(cache_dir: Path, spec_digest: str, audio_digest: str, sample_rate: int) -> Path:
    return cache_dir / spec_digest[:24] / audio_digest[:2] / f"{audio_digest}_{int(sample_rate)}.npy"


def save_atomic(path: Path, write: Callable[[BinaryIO], Any], suffix: str) -> None:
    """Write through ``write(fileobj)`` into a temp file next to ``path``, then ``os.replace``."""
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        write(f)


def _load_entry(path: Path) -> np.ndarray | None:
    if not path.is_file():
        return None
    try:
        return safeio.load_npy(path, "cached features", kinds="f", ndim=2)
    except InputError:  # damaged entry (disk full, foreign file): recompute and overwrite it
        return None


def extract_features(
    frontend: FrontEnd,
    paths: Sequence[str | os.PathLike[str]],
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> list[np.ndarray]:
    """Features (float32 ``[frames, dim]``, or ``[layers, frames, dim]`` for ``layer="all"``) per audio file.

    Audio is read with :func:`ptsnn.data.audio.load_audio` at ``frontend.sample_rate``. A ``features``
    front end reads its precomputed files directly (nothing to cache).
    """
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    spec = frontend.spec
    digest = frontend.spec_hash()  # without the model path: a moved model folder keeps its entries
    out: list[np.ndarray] = []
    with _Progress(progress, f"{frontend.kind} features", len(paths)) as advance:
        for path in paths:
            if not frontend.needs_audio:
                out.append(frontend.load(path).numpy())
                advance()
                continue
            p = Path(path)
            if not p.is_file():
                raise InputError(f"{p}: audio file not found")
            entry = cache_path(root, digest, file_sha256(p), frontend.sample_rate)
            feats = _load_entry(entry)
            if feats is None:
                feats = frontend.load(p).numpy().astype(np.float32)
                _store(root, entry, feats, spec)
            out.append(feats)
            advance()
    return out


def _store(root: Path, entry: Path, feats: np.ndarray, spec: dict[str, Any]) -> None:
    try:
        info = entry.parent.parent / "spec.json"
        if not info.exists():
            text = json.dumps(spec, indent=2, sort_keys=True).encode("utf-8")
            save_atomic(info, lambda f: f.write(text), ".json.tmp")
        save_atomic(entry, lambda f: np.save(f, feats, allow_pickle=False), ".npy.tmp")
    except OSError as exc:
        raise InputError(f"{root}: cannot write the feature cache ({exc.strerror or exc})") from None


class _Progress:
    """A rich progress bar on stderr when asked for and stderr is a terminal; otherwise nothing."""

    def __init__(self, enabled: bool, label: str, total: int):
        self.enabled = bool(enabled) and sys.stderr.isatty()
        self.label, self.total = label, total
        self._bar: Any = None

    def __enter__(self) -> Callable[[], None]:
        if not self.enabled:
            return lambda: None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._bar = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
            console=Console(stderr=True), transient=True,
        )
        self._bar.__enter__()
        task = self._bar.add_task(self.label, total=self.total)
        return lambda: self._bar.advance(task)

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)
