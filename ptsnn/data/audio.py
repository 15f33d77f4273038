"""Read, check and write audio: every waveform that enters ptsnn passes :func:`check_waveform`.

Policy (see docs/data.md): problems a model cannot learn from are refused with a one-line
:class:`~ptsnn.errors.InputError` naming the file and the problem (unreadable, truncated, empty, too short,
NaN/Inf, silent); problems with one obvious repair are repaired (multichannel -> mean of channels,
other sample rates -> polyphase resampling, integer PCM -> floats in [-1, 1]).
"""

from __future__ import annotations

import math
import os
import re
import struct
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from ptsnn import safeio
from ptsnn.errors import InputError
from ptsnn.fileio import atomic_output

DEFAULT_SAMPLE_RATE = 16000
MIN_DURATION_S = 0.1  # below this no SSL front end yields even a handful of frames (50 Hz -> 5 frames)
SILENCE_PEAK = 1e-4  # -80 dBFS, about 3 steps of 16-bit PCM: dither or a dead input, no speech
_MAX_CHANNELS_FIRST = 8  # a 2-D array with <= 8 rows and more columns is read as (channels, frames)
# libsndfile logs "data : <declared> (should be <present>)" when a WAV's data chunk is cut short.
_WAV_DATA_SHORT = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
_STREAMING_SIZES = {0, 0xFFFFFFFF, 0x7FFFFFFF}  # placeholders written by recorders that never finalise
# float samples beyond +24 dBFS are no recording (a clipped mix stays within a few dB of full scale): corrupt data
MAX_SAMPLE_MAGNITUDE = 16.0
# WAV sample containers libsndfile decodes exactly; it silently reads other widths (7, 12 bits) as the next one
_WAV_BITS = {1: (8, 16, 24, 32), 3: (32, 64), 6: (8,), 7: (8,)}  # PCM, IEEE float, A-law, mu-law
_WAV_EXTENSIBLE = 0xFFFE
# file name endings of the formats libsndfile (soundfile) decodes, for finding audio in folders; MP3 only when
# this libsndfile build has it (>= 1.1)
AUDIO_SUFFIXES = tuple(ext for ext, fmt in (
    (".wav", "WAV"), (".flac", "FLAC"), (".ogg", "OGG"), (".oga", "OGG"), (".opus", "OGG"), (".mp3", "MP3"),
    (".aif", "AIFF"), (".aiff", "AIFF"), (".au", "AU"), (".caf", "CAF"), (".w64", "W64"), (".rf64", "RF64"),
) if fmt in sf.available_formats())


def load_audio(
    path: str | os.PathLike[str],
    target_sr: int = DEFAULT_SAMPLE_RATE,
    *,
    min_duration: float = MIN_DURATION_S,
    silence_peak: float = SILENCE_PEAK,
) -> np.ndarray:
    """Read an audio file as a mono float32 1-D array at ``target_sr``.

    Raises :class:`InputError` (one line, naming ``path``) for a missing, unreadable, truncated, empty,
    too short, non-finite or silent file. Multichannel audio is averaged to mono; other sample rates are
    resampled with :func:`scipy.signal.resample_poly`; integer PCM is scaled to [-1, 1].
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: audio file not found")
    if not p.is_file():
        raise InputError(f"{p}: not a file (expected an audio file)")
    safeio.check_file(p, "audio file")
    _check_wav_format(p)
    try:
        info = sf.info(str(p))
        data, sr = sf.read(str(p), dtype="float32", always_2d=True)
    except Exception as exc:  # libsndfile raises several types; all mean "cannot decode"
        reason = str(getattr(exc, "error_string", "") or exc or type(exc).__name__)
        reason = re.sub(r"^Error\s*:\s*", "", reason.strip()).rstrip(".")
        raise InputError(f"{p}: not a readable audio file ({reason}; corrupt or truncated?)") from None
    _check_not_truncated(p, info, data.shape[0])
    return check_waveform(
        data, int(sr), str(p), target_sr=target_sr, min_duration=min_duration, silence_peak=silence_peak
    )


def _check_wav_format(path: Path) -> None:
    """A RIFF/WAVE file's ``fmt`` chunk must declare a sample width libsndfile decodes as written."""
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
            return  # not a WAV: libsndfile identifies (or refuses) it
        order = "<" if head[:4] == b"RIFF" else ">"
        for _ in range(64):  # fmt comes first in practice; a bounded walk over a few chunks
            chunk = f.read(8)
            if len(chunk) < 8:
                return
            cid, size = chunk[:4], struct.unpack(order + "I", chunk[4:])[0]
            if cid != b"fmt ":
                f.seek(size + (size & 1), 1)
                continue
            body = f.read(min(size, 64))
            if len(body) < 16:
                return  # cut inside the header: libsndfile's own message says so
            tag, channels, rate, _, _, bits = struct.unpack(order + "HHIIHH", body[:16])
            if tag == _WAV_EXTENSIBLE and len(body) >= 26:
                tag = struct.unpack(order + "H", body[24:26])[0]
            allowed = _WAV_BITS.get(tag)
            if allowed is not None and bits not in allowed:
                raise InputError(f"{path}: WAV fmt bits_per_sample = {bits} is not a supported sample width "
                                 f"({', '.join(map(str, allowed))} bits for format {tag})")
            if channels == 0 or rate == 0:
                raise InputError(f"{path}: WAV fmt declares {channels} channels at {rate} Hz")
            return


def _check_not_truncated(path: Path, info: Any, frames_read: int) -> None:
    """libsndfile silently returns what is left of a cut-off WAV; a partial utterance must not pass."""
    match = _WAV_DATA_SHORT.search(info.extra_info or "")
    if match:
        declared, present = int(match.group(1)), int(match.group(2))
        if declared > present and declared not in _STREAMING_SIZES:
            raise InputError(
                f"{path}: truncated audio file (header declares {declared} data bytes, only {present} present)"
            )
    if 0 < frames_read < info.frames:
        raise InputError(f"{path}: truncated audio file (read {frames_read} of {info.frames} frames)")


def check_waveform(
    x: np.ndarray,
    sr: int,
    name: str = "waveform",
    *,
    target_sr: int | None = None,
    min_duration: float = MIN_DURATION_S,
    silence_peak: float = SILENCE_PEAK,
) -> np.ndarray:
    """Apply the audio policy to an in-memory array; return a mono float32 1-D array.

    ``x`` may be 1-D, or 2-D as ``(frames, channels)`` (soundfile's layout) or ``(channels, frames)``
    (torch's layout, recognised when it has at most 8 rows and more columns than rows). Integer arrays are
    read as PCM and scaled to [-1, 1]. ``target_sr`` (if given and different from ``sr``) resamples.
    ``name`` is the file or array name used in error messages.
    """
    arr = np.asarray(x)
    for rate in (sr, target_sr):
        if rate is not None and (not isinstance(rate, (int, np.integer)) or rate <= 0):
            raise InputError(f"{name}: invalid sample rate {rate!r} (expected a positive integer in Hz)")
    if arr.dtype.kind not in "iuf":
        raise InputError(f"{name}: audio samples have dtype {arr.dtype} (expected integer PCM or float)")
    if arr.size == 0:
        raise InputError(f"{name}: empty audio (0 samples)")
    arr = _to_float(arr)
    if arr.ndim == 2:
        arr = _downmix(arr)
    elif arr.ndim != 1:
        raise InputError(f"{name}: audio array has shape {arr.shape} (expected 1-D or 2-D)")
    if not np.isfinite(arr).all():
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise InputError(f"{name}: audio contains {bad} NaN or infinite samples")
    peak = float(np.max(np.abs(arr)))
    if peak > MAX_SAMPLE_MAGNITUDE:
        raise InputError(f"{name}: audio sample of magnitude {peak:.3g} (float samples must stay within "
                         f"+-{MAX_SAMPLE_MAGNITUDE:g}; full scale is 1)")
    duration = arr.size / float(sr)
    if duration < min_duration:
        raise InputError(f"{name}: audio too short ({duration:.3f} s; at least {min_duration:g} s needed)")
    peak = float(np.max(np.abs(arr)))
    if peak < silence_peak:
        raise InputError(f"{name}: audio is silent (peak {peak:.2g} is below {silence_peak:g})")
    if target_sr is not None and int(target_sr) != int(sr):
        arr = resample(arr, int(sr), int(target_sr))
    return np.ascontiguousarray(arr, dtype=np.float32)


def _to_float(arr: np.ndarray) -> np.ndarray:
    """Integer PCM to [-1, 1) the way soundfile does it, so files and arrays give the same numbers."""
    if arr.dtype.kind == "f":
        return arr.astype(np.float32, copy=False)
    if arr.dtype.kind == "u":  # unsigned PCM (8-bit WAV) is offset binary
        half = float(2 ** (8 * arr.dtype.itemsize - 1))
        return ((arr.astype(np.float64) - half) / half).astype(np.float32)
    scale = float(2 ** (8 * arr.dtype.itemsize - 1))
    return (arr.astype(np.float64) / scale).astype(np.float32)


def _downmix(arr: np.ndarray) -> np.ndarray:
    rows, cols = arr.shape
    channels_first = rows <= _MAX_CHANNELS_FIRST and cols > rows
    return arr.mean(axis=1 if not channels_first else 0, dtype=np.float64).astype(np.float32)


def resample(x: np.ndarray, sr: int, target_sr: int) -> np.ndarray:
    """Polyphase resampling by the reduced ratio ``target_sr/sr`` (exact length ceil(n*target/sr))."""
    if sr == target_sr:
        return np.asarray(x, dtype=np.float32)
    g = math.gcd(int(sr), int(target_sr))
    from scipy.signal import resample_poly  # here: scipy.signal takes ~0.5 s to import, most files need no resampling

    y = resample_poly(np.asarray(x, dtype=np.float64), target_sr // g, sr // g)
    return y.astype(np.float32)


def save_audio(
    path: str | os.PathLike[str], x: np.ndarray, sr: int, *, subtype: str | None = None
) -> Path:
    """Write ``x`` to ``path`` atomically (temporary file in the same folder, then ``os.replace``).

    The format follows the suffix (``.wav``, ``.flac``, ...); ``subtype`` defaults to soundfile's choice
    for that format (PCM_16 for WAV and FLAC, which clips samples beyond [-1, 1]; pass ``subtype="FLOAT"``
    to keep them). A reader never sees a half-written file.
    """
    p = Path(path)
    fmt = p.suffix.lstrip(".").upper()
    if not fmt or fmt not in sf.available_formats():
        raise InputError(f"{p}: unknown audio format {p.suffix!r} (use .wav or .flac)")
    with atomic_output(p) as tmp:
        sf.write(tmp, np.asarray(x), int(sr), subtype=subtype, format=fmt)
    return p
