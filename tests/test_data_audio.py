"""Bad-audio policy of ptsnn.data.audio: each case is refused with one line naming the file, or repaired."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ptsnn.data.audio import check_waveform, load_audio, resample, save_audio
from ptsnn.errors import InputError, PtsnnError

SR = 16000


def tone(seconds: float = 0.5, freq: float = 440.0, sr: int = SR, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(seconds * sr))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write(path: Path, x: np.ndarray, sr: int = SR, subtype: str = "PCM_16") -> Path:
    sf.write(str(path), x, sr, subtype=subtype)
    return path


def refused(path_or_none, call, match: str) -> str:
    with pytest.raises(InputError, match=match) as info:
        call()
    message = str(info.value)
    assert "\n" not in message
    if path_or_none is not None:
        assert str(path_or_none) in message
    assert isinstance(info.value, PtsnnError)
    return message


# ---------------------------------------------------------------------------------------------- repaired
def test_mono_pcm16_reads_as_float32_1d(tmp_path):
    x = tone()
    y = load_audio(write(tmp_path / "a.wav", x))
    assert y.dtype == np.float32 and y.ndim == 1 and y.shape == x.shape
    np.testing.assert_allclose(y, x, atol=1.0 / 32768)


def test_integer_pcm_is_scaled_to_unit_range(tmp_path):
    pcm = np.zeros(SR // 2, dtype=np.int16)
    pcm[::2] = 16384  # exactly 0.5 of full scale
    pcm[1::2] = -32768  # exactly -1.0
    sf.write(str(tmp_path / "i.wav"), pcm, SR, subtype="PCM_16")
    y = load_audio(tmp_path / "i.wav")
    assert y[0] == 0.5 and y[1] == -1.0
    # the same numbers from the in-memory path
    np.testing.assert_array_equal(check_waveform(pcm, SR), y)


def test_stereo_is_downmixed_to_the_channel_mean(tmp_path):
    left, right = tone(freq=300.0), tone(freq=500.0, amp=0.25)
    y = load_audio(write(tmp_path / "s.wav", np.stack([left, right], axis=1)))
    assert y.ndim == 1 and y.shape == left.shape
    np.testing.assert_allclose(y, (left + right) / 2, atol=2.0 / 32768)


def test_channels_first_arrays_are_downmixed_too():
    left, right = tone(freq=300.0), tone(freq=500.0)
    y = check_waveform(np.stack([left, right]), SR)  # torch layout (channels, frames)
    np.testing.assert_allclose(y, (left + right) / 2, atol=1e-7)


@pytest.mark.parametrize("sr_in, n_out", [(8000, 8000), (44100, 8000), (48000, 8000)])
def test_other_sample_rates_are_resampled(tmp_path, sr_in, n_out):
    x = tone(seconds=0.5, freq=440.0, sr=sr_in)
    y = load_audio(write(tmp_path / f"r{sr_in}.wav", x, sr=sr_in), target_sr=SR)
    assert y.shape == (n_out,) and y.dtype == np.float32
    spectrum = np.abs(np.fft.rfft(y * np.hanning(y.size)))
    assert abs(np.argmax(spectrum) * SR / y.size - 440.0) < 4.0  # the tone keeps its pitch
    assert abs(np.sqrt(np.mean(y[500:-500] ** 2)) - 0.5 / np.sqrt(2)) < 0.01  # and its level


def test_resample_identity_and_ratio():
    x = tone()
    assert resample(x, SR, SR) is not None and np.array_equal(resample(x, SR, SR), x)
    assert resample(x, SR, 8000).shape == (x.size // 2,)


def test_quiet_but_audible_audio_passes(tmp_path):
    y = load_audio(write(tmp_path / "q.wav", tone(amp=0.001)))  # -60 dBFS
    assert 0.0009 < np.abs(y).max() < 0.0011


# ---------------------------------------------------------------------------------------------- refused
def test_missing_file(tmp_path):
    path = tmp_path / "nope.wav"
    refused(path, lambda: load_audio(path), "not found")


def test_directory_is_not_audio(tmp_path):
    refused(tmp_path, lambda: load_audio(tmp_path), "not a file")


def test_unreadable_bytes(tmp_path):
    path = tmp_path / "junk.wav"
    path.write_bytes(b"this is not audio at all " * 40)
    refused(path, lambda: load_audio(path), "not a readable audio file")


def test_header_cut_in_the_middle(tmp_path):
    whole = write(tmp_path / "whole.wav", tone()).read_bytes()
    path = tmp_path / "cut.wav"
    path.write_bytes(whole[:30])
    refused(path, lambda: load_audio(path), "not a readable audio file")


def test_truncated_wav_data(tmp_path):
    whole = write(tmp_path / "whole.wav", tone(seconds=1.0)).read_bytes()
    path = tmp_path / "trunc.wav"
    path.write_bytes(whole[: len(whole) // 2])
    # soundfile alone would silently return half the samples
    assert sf.read(str(path))[0].shape[0] < SR
    refused(path, lambda: load_audio(path), "truncated")


def test_truncated_flac(tmp_path):
    src = tmp_path / "whole.flac"
    sf.write(str(src), tone(seconds=1.0), SR)
    path = tmp_path / "trunc.flac"
    path.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    refused(path, lambda: load_audio(path), "truncated|not a readable")


def test_empty_file(tmp_path):
    path = write(tmp_path / "empty.wav", np.zeros(0, dtype=np.float32))
    refused(path, lambda: load_audio(path), "empty")


def test_too_short(tmp_path):
    path = write(tmp_path / "short.wav", tone(seconds=0.05))
    refused(path, lambda: load_audio(path), "too short")
    assert load_audio(path, min_duration=0.01).shape == (800,)  # the minimum is a parameter


def test_all_zero_is_silent(tmp_path):
    path = write(tmp_path / "zero.wav", np.zeros(SR, dtype=np.float32))
    refused(path, lambda: load_audio(path), "silent")


def test_below_threshold_is_silent_and_threshold_is_a_parameter(tmp_path):
    path = write(tmp_path / "hiss.wav", tone(amp=3e-5), subtype="FLOAT")
    refused(path, lambda: load_audio(path), "silent")
    assert np.abs(load_audio(path, silence_peak=1e-5)).max() > 2e-5


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples(tmp_path, bad):
    x = tone()
    x[100] = bad
    path = write(tmp_path / "nf.wav", x, subtype="FLOAT")
    message = refused(path, lambda: load_audio(path), "NaN or infinite")
    assert "1 NaN" in message


def test_check_waveform_rules_name_the_array():
    refused("feats[3]", lambda: check_waveform(np.zeros(SR, np.float32), SR, "feats[3]"), "silent")
    refused("x", lambda: check_waveform(np.zeros((2, 3, 4), np.float32), SR, "x"), "shape")
    refused("x", lambda: check_waveform(tone(), 0, "x"), "sample rate")
    refused("x", lambda: check_waveform(np.array(["a"] * 10), SR, "x"), "dtype")


def test_check_waveform_resamples_when_asked():
    assert check_waveform(tone(sr=8000), 8000, target_sr=SR).shape == (SR // 2,)
    assert check_waveform(tone(sr=8000), 8000).shape == (4000,)  # no target: untouched


# ---------------------------------------------------------------------------------------------- writing
def test_save_audio_round_trip_and_no_temp_files(tmp_path):
    x = tone()
    out = save_audio(tmp_path / "sub" / "a.wav", x, SR)
    assert out == tmp_path / "sub" / "a.wav"
    np.testing.assert_allclose(load_audio(out), x, atol=1.0 / 32768)
    save_audio(out, x * 0.5, SR)  # overwrite in place
    np.testing.assert_allclose(load_audio(out), x * 0.5, atol=1.0 / 32768)
    assert sorted(p.name for p in out.parent.iterdir()) == ["a.wav"]


def test_save_audio_failure_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    out = save_audio(tmp_path / "a.wav", tone(), SR)
    before = out.read_bytes()
    with pytest.raises(Exception):
        save_audio(out, np.zeros((2, 2, 2), np.float32), SR)  # soundfile cannot write 3-D data
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav"]


def test_save_audio_unknown_format(tmp_path):
    path = tmp_path / "a.xyz"
    refused(path, lambda: save_audio(path, tone(), SR), "unknown audio format")
