"""Feature cache (hits skip work, spec/file changes invalidate, atomic entries) and the features directory."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from ptsnn.errors import InputError
from ptsnn.frontend import FbankFrontend, FeatureDirFrontend, build_frontend, default_cache_dir, extract_features
from ptsnn.frontend.cache import CACHE_ENV


class CountingFbank(FbankFrontend):
    calls = 0

    def _forward(self, wave: torch.Tensor) -> torch.Tensor:
        type(self).calls += 1
        return super()._forward(wave)


def _write_wav(path, seconds: float = 0.5, sr: int = 16000, seed: int = 0):
    x = np.random.default_rng(seed).standard_normal(int(seconds * sr)) * 0.1
    sf.write(path, x.astype(np.float32), sr)
    return path


@pytest.fixture()
def wavs(tmp_path):
    return [_write_wav(tmp_path / f"u{i}.wav", seed=i) for i in range(3)]


@pytest.fixture(autouse=True)
def _reset_counter():
    CountingFbank.calls = 0


def test_hits_skip_computation(tmp_path, wavs):
    cache = tmp_path / "cache"
    fe = CountingFbank(n_mels=40)
    first = extract_features(fe, wavs, cache_dir=cache, progress=False)
    assert CountingFbank.calls == 3
    assert [f.shape for f in first] == [(24, 40)] * 3 and all(f.dtype == np.float32 for f in first)
    second = extract_features(CountingFbank(n_mels=40), wavs, cache_dir=cache, progress=False)
    assert CountingFbank.calls == 3  # all hits
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(first[0], fe(sf.read(wavs[0], dtype="float32")[0]).numpy(), atol=1e-6)
    entries = sorted(cache.rglob("*.npy"))
    assert len(entries) == 3 and not list(cache.rglob("*.tmp"))  # nothing half-written left behind
    spec_dir = entries[0].parent.parent
    assert json.loads((spec_dir / "spec.json").read_text()) == fe.spec


def test_spec_change_and_file_change_invalidate(tmp_path, wavs):
    cache = tmp_path / "cache"
    extract_features(CountingFbank(n_mels=40), wavs, cache_dir=cache, progress=False)
    extract_features(CountingFbank(n_mels=32), wavs, cache_dir=cache, progress=False)
    assert CountingFbank.calls == 6  # other spec: all misses
    _write_wav(wavs[1], seed=99)  # same name, new content
    out = extract_features(CountingFbank(n_mels=40), wavs, cache_dir=cache, progress=False)
    assert CountingFbank.calls == 7  # only the edited file is recomputed
    assert out[1].shape == (24, 40)


def test_damaged_entry_is_recomputed(tmp_path, wavs):
    cache = tmp_path / "cache"
    extract_features(CountingFbank(), wavs[:1], cache_dir=cache, progress=False)
    entry = next(cache.rglob("*.npy"))
    entry.write_bytes(b"not an npy")
    out = extract_features(CountingFbank(), wavs[:1], cache_dir=cache, progress=False)
    assert CountingFbank.calls == 2 and out[0].shape == (24, 80)
    assert np.load(entry).shape == (24, 80)


def test_audio_is_resampled_to_the_front_end_rate(tmp_path):
    wav8k = _write_wav(tmp_path / "low.wav", seconds=1.0, sr=8000)
    (out,) = extract_features(FbankFrontend(), [wav8k], cache_dir=tmp_path / "c", progress=False)
    assert out.shape == (49, 80)  # 1 s at 16 kHz
    assert next((tmp_path / "c").rglob("*.npy")).name.endswith("_16000.npy")


def test_default_dir_env_progress_and_errors(tmp_path, wavs, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "envcache"))
    assert default_cache_dir() == tmp_path / "envcache"
    extract_features(FbankFrontend(), wavs[:1], progress=True)  # not a TTY under pytest: no bar, no error
    assert len(list((tmp_path / "envcache").rglob("*.npy"))) == 1
    monkeypatch.delenv(CACHE_ENV)
    assert default_cache_dir().parts[-3:] == (".cache", "ptsnn", "features")
    with pytest.raises(InputError, match="not found"):
        extract_features(FbankFrontend(), [tmp_path / "missing.wav"], cache_dir=tmp_path, progress=False)
    (tmp_path / "bad.wav").write_bytes(b"RIFF nonsense")
    with pytest.raises(InputError, match="bad.wav"):
        extract_features(FbankFrontend(), [tmp_path / "bad.wav"], cache_dir=tmp_path, progress=False)


# ---------------------------------------------------------------- features directory

@pytest.fixture()
def feat_dir(tmp_path):
    root = tmp_path / "feats"
    (root / "Session1" / "spk").mkdir(parents=True)
    np.save(root / "Ses01_a.npy", np.ones((10, 8), np.float32))
    np.save(root / "Session1" / "spk" / "b.npy", np.full((7, 8), 2.0, np.float64))
    return root


def test_lookup_by_id_relative_path_and_audio_root(tmp_path, feat_dir):
    fe = FeatureDirFrontend(feat_dir)
    assert fe.dim == 8 and fe.frame_rate == 50.0 and not fe.needs_audio
    assert fe.load("Ses01_a").shape == (10, 8)
    b = fe.load("Session1/spk/b.wav")
    assert b.dtype == torch.float32 and b.shape == (7, 8) and float(b[0, 0]) == 2.0
    assert fe.load("/somewhere/else/Ses01_a.flac").shape == (10, 8)  # falls back to the file stem
    audio_root = tmp_path / "audio"
    rooted = FeatureDirFrontend(feat_dir, audio_root=audio_root)
    assert rooted.load(audio_root / "Session1" / "spk" / "b.wav").shape == (7, 8)
    out = extract_features(fe, ["Ses01_a", "Session1/spk/b.wav"], cache_dir=tmp_path / "unused", progress=False)
    assert [o.shape for o in out] == [(10, 8), (7, 8)]
    assert not (tmp_path / "unused").exists()


def test_features_spec_round_trip(feat_dir):
    fe = build_frontend("features", path=str(feat_dir), frame_rate=100.0)
    spec = json.loads(json.dumps(fe.spec))
    assert spec == {"kind": "features", "dir": str(feat_dir.resolve()), "dim": 8, "frame_rate": 100.0}
    again = build_frontend(spec)
    assert again.dim == 8 and again.frame_rate == 100.0
    assert build_frontend(f"features:{feat_dir}").dim == 8
    assert build_frontend({"kind": "features", "dim": 8}, path=str(feat_dir)).dim == 8  # a config preset + path
    with pytest.raises(InputError, match="no 'dir'"):
        build_frontend({"kind": "features", "dim": 8})


def test_features_errors(tmp_path, feat_dir):
    fe = FeatureDirFrontend(feat_dir, dim=8)
    with pytest.raises(InputError, match="no features for 'nope'"):
        fe.load("nope")
    np.save(feat_dir / "utt.npy", np.zeros(8, np.float32))
    with pytest.raises(InputError, match=r"\[frames, dim\].*granularity"):
        fe.load("utt")
    np.save(feat_dir / "utt.npy", np.zeros((4, 9), np.float32))
    with pytest.raises(InputError, match="dim 9 != 8"):
        fe.load("utt")
    np.save(feat_dir / "utt.npy", np.array([[np.nan] * 8], np.float32))
    with pytest.raises(InputError, match="NaN"):
        fe.load("utt")
    np.save(feat_dir / "utt.npy", np.zeros((0, 8), np.float32))
    with pytest.raises(InputError, match="0 frames"):
        fe.load("utt")
    (feat_dir / "utt.npy").write_bytes(b"junk")
    with pytest.raises(InputError, match="not a readable"):
        fe.load("utt")
    with pytest.raises(InputError, match="cannot compute"):
        fe(np.zeros(1600, np.float32))
    with pytest.raises(InputError, match="not found"):
        FeatureDirFrontend(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no .npy"):
        FeatureDirFrontend(tmp_path / "empty")
    with pytest.raises(InputError, match="directory"):
        build_frontend("features")
