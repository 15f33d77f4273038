"""fbank front end: numbers against a plain numpy reference, frame alignment, spec round trip, ONNX export."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import torch

from ptsnn.errors import InputError
from ptsnn.frontend import FbankFrontend, build_frontend, export_onnx, spec_hash
from ptsnn.frontend.fbank import mel_filterbank, window_function

SR = 16000


def _noise(n: int, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(n) * 0.1).astype(np.float32)


def _reference(x: np.ndarray, n_mels: int = 80, floor: float = 1e-10) -> np.ndarray:
    """Kaldi-style fbank written out frame by frame in float64 (DC removal, pre-emphasis, Povey window)."""
    x = x.astype(np.float64)
    win, hop, nfft = 400, 320, 512
    w = window_function("povey", win)
    mel = mel_filterbank(n_mels, nfft, SR, 20.0, SR / 2)
    rows = []
    for i in range(1 + (len(x) - win) // hop):
        f = x[i * hop : i * hop + win].copy()
        f -= f.mean()
        f = np.concatenate([[f[0] * (1 - 0.97)], f[1:] - 0.97 * f[:-1]]) * w
        power = np.abs(np.fft.rfft(f, nfft)) ** 2
        rows.append(np.log(np.maximum(power @ mel, floor)))
    return np.array(rows)


def test_matches_numpy_reference_and_frame_rate():
    fe = FbankFrontend()
    x = _noise(SR + 123)
    y = fe(x)
    assert y.dtype == torch.float32 and y.shape == (50, 80)  # 1 + (16123 - 400) // 320
    assert fe.dim == 80 and fe.frame_rate == 50.0 and fe.sample_rate == SR
    np.testing.assert_allclose(y.numpy(), _reference(x), atol=1e-4)


@pytest.mark.parametrize("n", [399, 400, 719, 720, 16000, 48000])
def test_frame_count_equals_wav2vec2(n):
    # wav2vec2's conv stack (receptive field 400, stride 320) yields 1 + (n - 400) // 320 frames
    fe = FbankFrontend(n_mels=40)
    expected = 1 + (max(n, 400) - 400) // 320
    assert fe(_noise(n)).shape == (expected, 40) == (fe.num_frames(n), 40)


def test_tone_peaks_in_its_mel_band():
    fe = FbankFrontend()
    t = np.arange(SR) / SR
    y = fe(np.sin(2 * math.pi * 1000 * t).astype(np.float32) * 0.5)
    mel = mel_filterbank(80, 512, SR, 20.0, SR / 2)
    assert int(y.mean(0).argmax()) == int(mel[round(1000 * 512 / SR)].argmax())


def test_silence_hits_the_floor_not_minus_inf():
    y = FbankFrontend(log_floor=1e-8)(np.zeros(4000, np.float32))
    assert torch.isfinite(y).all() and torch.allclose(y, torch.full_like(y, math.log(1e-8)))


def test_normalize_per_utterance():
    y = FbankFrontend(normalize=True)(_noise(3 * SR))
    assert torch.allclose(y.mean(0), torch.zeros(80), atol=1e-4)
    assert torch.allclose(y.std(0, unbiased=False), torch.ones(80), atol=1e-3)


@pytest.mark.parametrize("normalize", [False, True])
def test_batched_extract_equals_single(normalize):
    fe = FbankFrontend(normalize=normalize)
    waves = [_noise(n, seed=n) for n in (16000, 5000, 300, 9999)]
    for a, w in zip(fe.extract(waves), waves):
        torch.testing.assert_close(a, fe(w), atol=1e-5, rtol=1e-5)


def test_accepts_tensor_and_row_vector_and_is_frozen():
    fe = FbankFrontend()
    x = _noise(8000)
    a = fe(torch.from_numpy(x).requires_grad_(True).unsqueeze(0))
    assert not a.requires_grad
    torch.testing.assert_close(a, fe(x))


def test_spec_round_trip_and_hash():
    fe = FbankFrontend(n_mels=64, window="hann", normalize=True)
    spec = json.loads(json.dumps(fe.spec))
    assert spec["kind"] == "fbank" and spec["n_mels"] == 64
    again = build_frontend(spec)
    x = _noise(5000)
    torch.testing.assert_close(again(x), fe(x))
    assert spec_hash(spec) == again.spec_hash()
    assert spec_hash(FbankFrontend(n_mels=80).spec) != spec_hash(FbankFrontend(n_mels=81).spec)
    assert build_frontend("fbank", n_mels=32).dim == 32


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_mels": 0},
        {"window": "kaiser"},
        {"f_min": 9000.0},
        {"hop_ms": 30.0},
        {"preemph": 1.5},
        {"log_floor": 0.0},
        {"n_fft": 256},
        {"version": 99},
    ],
)
def test_bad_options_are_input_errors(kwargs):
    with pytest.raises(InputError):
        FbankFrontend(**kwargs)


def test_unknown_option_and_bad_waves():
    with pytest.raises(InputError, match="unknown option"):
        build_frontend("fbank", n_mel=40)
    with pytest.raises(InputError, match="unknown"):
        build_frontend("mfcc")
    fe = FbankFrontend()
    bads = (
        np.zeros((2, 800), np.float32),
        np.full(800, np.nan, np.float32),
        np.zeros(800, np.int16),
        np.zeros(0, np.float32),
    )
    for bad in bads:
        with pytest.raises(InputError):
            fe(bad)


@pytest.mark.parametrize("dynamo", [False, True])
def test_onnx_export_matches_onnxruntime(tmp_path, dynamo):
    ort = pytest.importorskip("onnxruntime")
    fe = FbankFrontend(normalize=True)
    path = tmp_path / "fbank.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter announces its deprecation
        export_onnx(fe, path, dynamo=dynamo)
    assert [p.name for p in tmp_path.iterdir()] == ["fbank.onnx"]  # one self-contained file
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = _noise(3 * SR)
    for batch in (x[None, :400], x[None], np.stack([x[:20000], x[5000:25000], x[1:20001]])):
        got = sess.run(None, {"wave": batch})[0]
        want = fe.module(torch.from_numpy(batch)).numpy()
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=1e-4)
