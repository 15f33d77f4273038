"""The host runner for front ends that are not inside ``host.onnx`` (emotion2vec via FunASR, or an SSL
model torch's exporter could not export): it rebuilds the front end from the bundle's recorded spec
(``manifest.json`` ``frontend``; the model directory must exist at the recorded path, its weights are
checked against the recorded sha256) and computes the features in PyTorch; ``host.onnx`` takes them from
there. Bundles whose front end is embedded never come here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ptsnn.errors import InputError

AUDIO_FRONTENDS = ("hf", "torchaudio", "emotion2vec")
_cache: dict[tuple[str, str], object] = {}


def recorded_frontend(bundle):
    """The bundle's front end rebuilt from its spec (once per process), or ``None`` when it reads features."""
    spec = dict(bundle.manifest.get("frontend") or {})
    if spec.get("kind") not in AUDIO_FRONTENDS:
        return None
    key = (str(Path(bundle.path).resolve()), repr(sorted(spec.items())))
    if key not in _cache:
        from ptsnn.frontend import build_frontend

        _cache[key] = build_frontend(spec)
    return _cache[key]


def features_from_audio(bundle, path: str | Path) -> np.ndarray:
    """Features ``[frames, F]`` for an audio file through the bundle's recorded front end."""
    fe = recorded_frontend(bundle)
    if fe is None:
        kind = (bundle.manifest.get("frontend") or {}).get("kind")
        if not kind:
            raise InputError(f"{path}: this bundle comes from a NIR graph and has no front end: give its chip "
                             "input as .npy [steps, N]")
        raise InputError(f"{path}: this bundle takes precomputed features (.npy), its front end is {kind}")
    return fe.load(path).numpy()
