"""emotion2vec through its maintained loader, FunASR, from a local model directory (``model.pt`` +
``config.yaml``, as published on ModelScope / HuggingFace ``emotion2vec/emotion2vec_base``).

emotion2vec's checkpoints hold pickled configs (``torch.load(weights_only=True)`` refuses them) and its
model code lives in FunASR, so ptsnn does not reimplement it: FunASR is an optional extra
(``pip install 'ptsnn[emotion2vec]'``). Without it this front end raises one clear error; the
``features`` front end (precomputed ``.npy``) works without FunASR. The model is not exported to ONNX:
bundles trained on it run audio through :mod:`ptsnn.deploy.host_frontend`, which rebuilds this front end
from the bundle's recorded spec (weights checked by sha256).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ptsnn.errors import InputError
from ptsnn.frontend.base import FrontEnd, check_sha256
from ptsnn.frontend.ssl import cached_sha256

MISSING_FUNASR = ("emotion2vec front end needs FunASR, which is not installed "
                  "(pip install 'ptsnn[emotion2vec]'; or precompute features and use the 'features' front end)")
RECEPTIVE_FIELD = 400  # the wav2vec2-style conv stack: 25 ms windows, 20 ms hop


def _funasr():
    try:
        import funasr
    except ImportError:
        raise InputError(MISSING_FUNASR) from None
    return funasr


class Emotion2vecFrontend(FrontEnd):
    """Frame-level emotion2vec features ``[frames, dim]`` (50 Hz) via ``funasr.AutoModel``."""

    kind = "emotion2vec"

    def __init__(self, path: str | os.PathLike[str], *, dim: int = 768, sha256: str | None = None):
        folder = Path(path).expanduser()
        if not folder.is_dir():
            raise InputError(f"{folder}: emotion2vec model directory not found")
        weights = sorted(folder.glob("*.pt"))
        config = folder / "config.yaml"
        if not weights or not config.is_file():
            raise InputError(f"{folder}: expected a FunASR model directory (model.pt and config.yaml)")
        digest = cached_sha256([config, *weights])
        check_sha256("emotion2vec", str(folder), sha256, digest)
        funasr = _funasr()
        try:
            self.model = funasr.AutoModel(model=str(folder), disable_update=True, disable_pbar=True,
                                          disable_log=True, device="cpu")
        except Exception as exc:  # FunASR raises assorted types for bad directories
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise InputError(f"{folder}: FunASR cannot load this emotion2vec model ({first})") from None
        self._dim = int(dim)
        self._spec = {"kind": self.kind, "path": str(folder.resolve()), "sha256": digest, "dim": self._dim}

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def spec(self) -> dict[str, Any]:  # frame_rate / sample_rate: FrontEnd's (50 Hz, 16 kHz)
        return dict(self._spec)

    def _forward(self, wave: torch.Tensor) -> torch.Tensor:
        if wave.numel() < RECEPTIVE_FIELD:
            wave = torch.nn.functional.pad(wave, (0, RECEPTIVE_FIELD - wave.numel()))
        res = self.model.generate(wave.numpy(), granularity="frame", extract_embedding=True, output_dir=None)
        feats = np.asarray(res[0]["feats"], np.float32)
        if feats.ndim != 2 or feats.shape[1] != self._dim:
            raise InputError(f"{self._spec['path']}: emotion2vec gave features of shape {feats.shape}, "
                             f"the spec says dim {self._dim}")
        return torch.from_numpy(feats)

    @classmethod
    def from_spec(cls, spec: dict[str, Any], **overrides: Any) -> Emotion2vecFrontend:
        args = {**spec, **overrides}
        if "path" not in args:
            raise InputError("emotion2vec front-end spec: no 'path'")
        return cls(args["path"], dim=int(args.get("dim", 768)), sha256=args.get("sha256"))
