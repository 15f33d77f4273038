"""Precomputed per-utterance features: a directory of ``.npy`` arrays ``[frames, dim]``.

This is how emotion2vec features reach ptsnn (its fairseq/FunASR checkpoint cannot be read here, see
docs/frontend.md): FunASR's ``generate(..., granularity="frame", extract_embedding=True, output_dir=D)``
writes ``D/<utterance id>.npy``. A file is looked up by utterance id, or by the audio path relative to
``audio_root`` with its extension replaced by ``.npy`` (``Session1/x/a.wav`` -> ``DIR/Session1/x/a.npy``),
or by the audio file's stem.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ptsnn import safeio
from ptsnn.errors import InputError
from ptsnn.frontend.base import FRAME_RATE, FrontEnd


class FeatureDirFrontend(FrontEnd):
    """Reads features instead of computing them; ``dim`` is inferred from the first file when not given."""

    kind = "features"
    needs_audio = False

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        dim: int | None = None,
        frame_rate: float = FRAME_RATE,
        audio_root: str | os.PathLike[str] | None = None,
    ):
        self.directory = Path(directory).expanduser()
        if not self.directory.is_dir():
            raise InputError(f"{self.directory}: features directory not found")
        self.audio_root = Path(audio_root).expanduser().resolve() if audio_root is not None else None
        if not frame_rate > 0:
            raise InputError(f"features frame_rate: {frame_rate} (expected > 0)")
        self._frame_rate = float(frame_rate)
        if dim is None:
            first = next(self.directory.rglob("*.npy"), None)
            if first is None:
                raise InputError(f"{self.directory}: no .npy feature files (cannot infer the feature dim)")
            dim = int(self._read(first, None).shape[1])
        if int(dim) < 1:
            raise InputError(f"features dim: {dim} (expected a positive integer)")
        self._dim = int(dim)

    @classmethod
    def from_spec(cls, spec: dict[str, Any], **overrides: Any) -> FeatureDirFrontend:
        args = {**spec, **overrides}
        directory = args.get("dir", args.get("path"))  # "path" as for the other kinds
        if directory is None:
            raise InputError("features front-end spec: no 'dir' (the directory of .npy feature files)")
        return cls(
            directory,
            dim=args.get("dim"),
            frame_rate=args.get("frame_rate", FRAME_RATE),
            audio_root=args.get("audio_root"),
        )

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def frame_rate(self) -> float:
        return self._frame_rate

    @property
    def spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "kind": self.kind,
            "dir": str(self.directory.resolve()),
            "dim": self._dim,
            "frame_rate": self._frame_rate,
        }
        if self.audio_root is not None:
            spec["audio_root"] = str(self.audio_root)
        return spec

    def _forward(self, wave: torch.Tensor) -> torch.Tensor:
        raise InputError(
            f"features front end ({self.directory}) reads precomputed .npy files; "
            "it cannot compute features from a waveform (pass utterance ids or audio paths to load())"
        )

    def candidates(self, key: str | os.PathLike[str]) -> list[Path]:
        """Files tried for an utterance id or audio path, in order."""
        text = os.fspath(key)
        path = Path(text)
        rel = path
        if path.is_absolute():
            rel = None
            if self.audio_root is not None:
                try:
                    rel = path.resolve().relative_to(self.audio_root)
                except ValueError:
                    rel = None
        tried = [self.directory / f"{text}.npy"] if not path.is_absolute() else []
        if rel is not None and rel.suffix:
            tried.append(self.directory / rel.with_suffix(".npy"))
        tried.append(self.directory / f"{path.stem}.npy")
        return list(dict.fromkeys(tried))  # unique, order kept

    def path_for(self, key: str | os.PathLike[str]) -> Path:
        tried = self.candidates(key)
        for p in tried:
            if p.is_file():
                return p
        shown = ", ".join(str(p.relative_to(self.directory)) for p in tried)
        raise InputError(f"{self.directory}: no features for {os.fspath(key)!r} (tried {shown})")

    def load(self, key: str | os.PathLike[str]) -> torch.Tensor:
        """``[frames, dim]`` float32 for an utterance id or audio path."""
        return torch.from_numpy(self._read(self.path_for(key), self._dim))

    def _read(self, path: Path, dim: int | None) -> np.ndarray:
        arr = safeio.load_npy(path, "features", kinds="fiu", finite=True, nonempty=False)
        if arr.ndim != 2:
            hint = " (utterance-level? extract frame-level features, e.g. granularity='frame')" if arr.ndim == 1 else ""
            raise InputError(f"{path}: features must be [frames, dim], got shape {arr.shape}{hint}")
        if arr.shape[0] == 0:
            raise InputError(f"{path}: features have 0 frames")
        if dim is not None and arr.shape[1] != dim:
            raise InputError(f"{path}: feature dim {arr.shape[1]} != {dim} expected for {self.directory}")
        arr = np.ascontiguousarray(arr, dtype=np.float32)
        if not np.isfinite(arr).all():
            raise InputError(f"{path}: features contain NaN or infinite values")
        return arr
