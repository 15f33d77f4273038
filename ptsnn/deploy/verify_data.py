"""Inputs for ``ptsnn verify``: the built-in synthetic corpus or a folder of audio / .npy features."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ptsnn.errors import InputError

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")


def verification_inputs(data: str, ckpt, bundle, limit: int, max_frames: int):
    """Returns ``(features [frames, F] per utterance, host inputs (wave or features) per utterance, names,
    labels or None)``, utterances cropped to ``max_frames`` frames (the waveform to the matching samples)."""
    frontend = None
    if ckpt.frontend.get("kind") == "fbank":
        from ptsnn.frontend import build_frontend

        frontend = build_frontend(ckpt.frontend)
    if data == "synthetic":
        if frontend is None:
            raise InputError("--data synthetic needs an fbank checkpoint; pass a folder of .npy features")
        from ptsnn.data.synthetic import SyntheticCorpusConfig, generate_utterance

        cfg = SyntheticCorpusConfig()
        test_speakers = cfg.split_speakers()[1]
        items = [(spk, label, idx) for idx in range(cfg.utterances_per_class) for spk in test_speakers
                 for label in cfg.classes][:limit]
        waves = [generate_utterance(cfg, spk, label, idx) for spk, label, idx in items]
        names = [f"spk{spk}-{label}-{idx}" for spk, label, idx in items]
        labels = [ckpt.label_map[label] for _, label, _ in items]
        return *_from_waves(waves, frontend, max_frames), names, labels
    folder = Path(data)
    if not folder.is_dir():
        raise InputError(f"--data {data}: expected 'synthetic' or a folder of audio or .npy files")
    files = sorted(p for p in folder.iterdir() if p.suffix in (*AUDIO_SUFFIXES, ".npy"))[:limit]
    if not files:
        raise InputError(f"--data {folder}: no audio or .npy files")
    if all(p.suffix == ".npy" for p in files):
        feats = [np.load(p, allow_pickle=False)[:max_frames].astype(np.float32) for p in files]
        return feats, feats, [p.name for p in files], None
    if frontend is None:
        raise InputError(f"--data {folder}: audio needs an fbank checkpoint (this one uses {ckpt.frontend.get('kind')})")
    from ptsnn.data.audio import load_audio

    waves = [load_audio(p, target_sr=16000) for p in files]
    return *_from_waves(waves, frontend, max_frames), [p.name for p in files], None


def _from_waves(waves, frontend, max_frames):
    win, hop = frontend.win_length, frontend.hop_length
    cropped = [w[: win + (max_frames - 1) * hop] for w in waves]
    feats = [frontend(w).numpy() for w in cropped]
    return feats, cropped
