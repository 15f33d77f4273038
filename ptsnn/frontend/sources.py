"""The one input source for calibration, verification and reports: utterances -> front end -> features.

``--calib``, ``ptsnn verify --data`` and ``ptsnn report --data`` all name their utterances the same way:

* ``synthetic``: the built-in synthetic corpus (its test speakers; needs a front end that reads audio);
* a folder of audio files (.wav/.flac/.ogg, through the front end) or of ``.npy`` features ``[frames, F]``;
* an ``.npz`` with ``features`` ``[B, T, F]`` and optionally ``lengths`` ``[B]`` (precomputed features).

:func:`load_utterances` returns, per utterance, the *host input* (what the bundle's host part takes: the
waveform for audio bundles, the features otherwise) and the *features* (what the PyTorch model takes), both
cropped to ``max_frames`` frames, plus names and class labels when the source knows them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ptsnn import safeio
from ptsnn.errors import InputError

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
AUDIO_FRONTENDS = ("fbank", "hf", "torchaudio", "emotion2vec")  # front ends that compute features from audio
MAX_UTTERANCES = 100_000


@dataclass
class Utterances:
    names: list[str]
    host_inputs: list[np.ndarray]  # waveform [samples] (audio) or features [frames, F]
    features: list[np.ndarray]  # front-end features [frames, F] float32
    labels: list[str] | None  # class names, when the source knows them
    from_audio: bool


def _frontend(frontend_spec: dict):
    if (frontend_spec or {}).get("kind") not in AUDIO_FRONTENDS:
        return None
    from ptsnn.frontend import build_frontend

    return build_frontend(frontend_spec)  # SSL models: from the recorded path, weights hash-checked


def _check_features(arrays: list[np.ndarray], what: str, dim: int | None) -> None:
    for i, f in enumerate(arrays):
        if f.ndim != 2 or (dim is not None and f.shape[1] != dim):
            raise InputError(f"{what}: utterance {i}: features of shape {f.shape}, expected [frames, {dim or 'F'}]")
        if not np.isfinite(f).all():
            raise InputError(f"{what}: utterance {i}: features are not finite (NaN or Inf)")


def load_utterances(spec: str | Path, frontend_spec: dict, limit: int = 64, max_frames: int | None = None,
                    feature_dim: int | None = None, what: str = "--data") -> Utterances:
    """Read up to ``limit`` utterances from ``spec`` (see the module docstring)."""
    if not 1 <= int(limit) <= MAX_UTTERANCES:
        raise InputError(f"{what}: limit {limit} outside 1..{MAX_UTTERANCES}")
    frontend = _frontend(frontend_spec)
    if str(spec) == "synthetic":
        if frontend is None:
            raise InputError(f"{what} synthetic needs a front end that reads audio (this model uses "
                             f"{(frontend_spec or {}).get('kind')}); pass a folder of .npy features")
        from ptsnn.data.synthetic import SyntheticCorpusConfig, generate_utterance

        cfg = SyntheticCorpusConfig()
        test_speakers = cfg.split_speakers()[1]
        items = [(spk, label, idx) for idx in range(cfg.utterances_per_class) for spk in test_speakers
                 for label in cfg.classes][:limit]
        waves = [generate_utterance(cfg, spk, label, idx) for spk, label, idx in items]
        names = [f"spk{spk}-{label}-{idx}" for spk, label, idx in items]
        return _from_waves(waves, frontend, max_frames, names, [label for _, label, _ in items])
    path = Path(spec)
    if path.suffix == ".npz" and path.is_file():
        feats = _npz_features(path, what)[:limit]
        feats = [f[:max_frames] if max_frames else f for f in feats]
        _check_features(feats, f"{what} {path}", feature_dim)
        return Utterances([f"{path.stem}[{i}]" for i in range(len(feats))], feats, feats, None, False)
    if not path.is_dir():
        raise InputError(f"{what} {spec}: expected 'synthetic', a folder of audio or .npy files, or an .npz")
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in (*AUDIO_SUFFIXES, ".npy"))[:limit]
    if not files:
        raise InputError(f"{what} {path}: no audio or .npy files")
    if all(p.suffix == ".npy" for p in files):
        feats = [safeio.load_npy(p, "features", kinds="iuf", ndim=2)[:max_frames].astype(np.float32) for p in files]
        _check_features(feats, f"{what} {path}", feature_dim)
        return Utterances([p.name for p in files], feats, feats, None, False)
    if frontend is None:
        raise InputError(f"{what} {path}: audio needs a front end that reads audio (this model uses "
                         f"{(frontend_spec or {}).get('kind')})")
    from ptsnn.data.audio import load_audio

    waves = [load_audio(p, target_sr=frontend.sample_rate) for p in files]
    return _from_waves(waves, frontend, max_frames, [p.name for p in files], None)


def _npz_features(path: Path, what: str) -> list[np.ndarray]:
    # bounded, typed load: member sizes and dtypes checked before decompressing, CRCs, no NaN/Inf/|x| > 1e9
    z = safeio.load_npz(path, "features", kinds="iuf", names=("features", "lengths"))
    if "features" not in z:
        raise InputError(f"{what} {path}: no 'features' array")
    arr = z["features"]
    lengths = z["lengths"] if "lengths" in z else np.full(arr.shape[0], arr.shape[1] if arr.ndim > 1 else 0)
    if arr.ndim != 3 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InputError(f"{what} {path}: features of shape {arr.shape} ({arr.dtype}), expected [B, T, F]")
    lengths = np.asarray(lengths)
    if lengths.shape != (arr.shape[0],) or not np.issubdtype(lengths.dtype, np.integer) \
            or lengths.min(initial=1) < 1 or lengths.max(initial=0) > arr.shape[1]:
        raise InputError(f"{what} {path}: lengths must be {arr.shape[0]} integers in 1..{arr.shape[1]}")
    return [np.asarray(arr[i, : int(n)], np.float32) for i, n in enumerate(lengths)]


def _window_and_hop(frontend) -> tuple[int, int]:
    if hasattr(frontend, "win_length"):  # fbank
        return int(frontend.win_length), int(frontend.hop_length)
    hop = int(round(frontend.sample_rate / frontend.frame_rate))
    return int(getattr(frontend, "receptive_field", 400)), hop  # SSL conv stack (emotion2vec: 400 samples)


def _from_waves(waves, frontend, max_frames, names, labels) -> Utterances:
    win, hop = _window_and_hop(frontend)
    cropped = [w[: win + (max_frames - 1) * hop] for w in waves] if max_frames else list(waves)
    feats = [frontend(w).numpy() for w in cropped]
    return Utterances(names, cropped, feats, labels, True)
