"""Log-mel filterbank front end in pure torch: the embedded default (no weights, nothing to download).

Per frame it does what Kaldi's ``compute-fbank`` does (without dither): remove the DC offset, pre-emphasis,
window (Povey by default), power spectrum, HTK-mel triangular filters, log with a floor. Frames are 25 ms
with a 20 ms hop (50 Hz) and no padding at the edges, so an utterance of ``T`` samples gives
``1 + (T - 400) // 320`` frames: exactly the frame count of wav2vec2 / HuBERT / WavLM / emotion2vec.

All per-frame steps before the power spectrum are linear, so they are folded with the real DFT into one
fixed ``conv1d`` kernel (stride = hop). :class:`FbankModule` is therefore a conv1d, a square, a matmul
and a log: it exports to ONNX with either torch exporter and runs in onnxruntime.
"""

from __future__ import annotations

import inspect
import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ptsnn.errors import InputError
from ptsnn.frontend.base import SAMPLE_RATE, FrontEnd, Wave, as_wave_tensor, pad_to

WINDOWS = ("povey", "hann", "hamming", "rectangular")
_NORM_EPS = 1e-5
SPEC_VERSION = 1  # bump when the numbers an fbank spec produces change


def mel_scale(freq: np.ndarray | float) -> np.ndarray:
    """HTK mel: 1127 ln(1 + f/700)."""
    return 1127.0 * np.log1p(np.asarray(freq, dtype=np.float64) / 700.0)


def mel_filterbank(n_mels: int, n_fft: int, sample_rate: int, f_min: float, f_max: float) -> np.ndarray:
    """``[n_fft//2 + 1, n_mels]`` triangles, equally spaced and triangular on the mel scale (Kaldi's MelBanks)."""
    mel_lo, mel_hi = float(mel_scale(f_min)), float(mel_scale(f_max))
    delta = (mel_hi - mel_lo) / (n_mels + 1)
    bin_mel = mel_scale(np.arange(n_fft // 2 + 1) * (sample_rate / n_fft))[:, None]
    left = mel_lo + delta * np.arange(n_mels)[None, :]
    center, right = left + delta, left + 2 * delta
    up = (bin_mel - left) / (center - left)
    down = (right - bin_mel) / (right - center)
    w = np.where(bin_mel <= center, up, down)
    return np.where((bin_mel > left) & (bin_mel < right), w, 0.0)


def window_function(name: str, length: int) -> np.ndarray:
    """Symmetric windows as Kaldi defines them (``povey`` = Hann ** 0.85)."""
    n = np.arange(length, dtype=np.float64)
    hann = 0.5 - 0.5 * np.cos(2 * math.pi * n / (length - 1))
    if name == "povey":
        return hann**0.85
    if name == "hann":
        return hann
    if name == "hamming":
        return 0.54 - 0.46 * np.cos(2 * math.pi * n / (length - 1))
    if name == "rectangular":
        return np.ones(length)
    raise InputError(f"fbank window: {name!r} (expected one of {', '.join(WINDOWS)})")


def frame_kernel(win_length: int, n_fft: int, window: str, preemph: float, remove_dc: bool) -> np.ndarray:
    """``[2 * (n_fft//2 + 1), win_length]``: real then imaginary DFT rows of window . preemph . DC-removal."""
    a = np.eye(win_length)
    if remove_dc:
        a = a - 1.0 / win_length
    pre = np.eye(win_length) - preemph * np.eye(win_length, k=-1)
    pre[0, 0] = 1.0 - preemph  # Kaldi: the first sample is pre-emphasised against itself
    a = window_function(window, win_length)[:, None] * (pre @ a)
    k = np.arange(n_fft // 2 + 1)[:, None]
    phase = 2 * math.pi * k * np.arange(win_length)[None, :] / n_fft  # the zero padding to n_fft drops out
    return np.concatenate([np.cos(phase) @ a, -np.sin(phase) @ a], axis=0)


class FbankModule(nn.Module):
    """``[batch, samples]`` float32 -> ``[batch, frames, n_mels]`` log-mel energies (ONNX-exportable)."""

    def __init__(
        self,
        *,
        sample_rate: int,
        n_mels: int,
        win_length: int,
        hop_length: int,
        n_fft: int,
        window: str,
        preemph: float,
        remove_dc: bool,
        f_min: float,
        f_max: float,
        log_floor: float,
        normalize: bool,
    ):
        super().__init__()
        self.hop_length = hop_length
        self.n_freq = n_fft // 2 + 1
        self.log_floor = float(log_floor)
        self.normalize = bool(normalize)
        kernel = frame_kernel(win_length, n_fft, window, preemph, remove_dc)
        self.register_buffer("kernel", torch.from_numpy(kernel).float().unsqueeze(1), persistent=False)
        mel = mel_filterbank(n_mels, n_fft, sample_rate, f_min, f_max)
        self.register_buffer("mel", torch.from_numpy(mel).float(), persistent=False)

    def log_mel(self, wave: torch.Tensor) -> torch.Tensor:
        spec = nn.functional.conv1d(wave.unsqueeze(1), self.kernel, stride=self.hop_length)  # [B, 2F, N]
        re, im = spec[:, : self.n_freq], spec[:, self.n_freq :]
        power = (re * re + im * im).transpose(1, 2)  # [B, N, F]
        return torch.log(torch.clamp(torch.matmul(power, self.mel), min=self.log_floor))

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        feats = self.log_mel(wave)
        return cmvn(feats) if self.normalize else feats


def cmvn(feats: torch.Tensor) -> torch.Tensor:
    """Per-utterance mean/variance normalisation over frames (axis -2); written with export-safe ops."""
    centred = feats - feats.mean(dim=-2, keepdim=True)
    var = (centred * centred).mean(dim=-2, keepdim=True)
    return centred * torch.rsqrt(var + _NORM_EPS)


class FbankFrontend(FrontEnd):
    """Log-mel filterbank features at 50 Hz. ``normalize`` is off by default: the model has a LayerNorm."""

    kind = "fbank"

    def __init__(
        self,
        n_mels: int = 80,
        *,
        sample_rate: int = SAMPLE_RATE,
        win_ms: float = 25.0,
        hop_ms: float = 20.0,
        window: str = "povey",
        preemph: float = 0.97,
        remove_dc: bool = True,
        f_min: float = 20.0,
        f_max: float | None = None,
        log_floor: float = 1e-10,
        normalize: bool = False,
        n_fft: int | None = None,
        version: int = SPEC_VERSION,
    ):
        if version != SPEC_VERSION:
            raise InputError(f"fbank spec version {version} is not supported (this ptsnn writes {SPEC_VERSION})")
        if int(n_mels) < 1:
            raise InputError(f"fbank n_mels: {n_mels} (expected a positive integer)")
        if int(sample_rate) <= 0:
            raise InputError(f"fbank sample_rate: {sample_rate} (expected a positive integer)")
        win_length = round(sample_rate * win_ms / 1000.0)
        hop_length = round(sample_rate * hop_ms / 1000.0)
        if not 0 < hop_length <= win_length:
            raise InputError(f"fbank hop_ms/win_ms: {hop_ms}/{win_ms} (need 0 < hop <= window)")
        n_fft = int(n_fft) if n_fft is not None else 1 << (win_length - 1).bit_length()
        if n_fft < win_length:
            raise InputError(f"fbank n_fft: {n_fft} is shorter than the window ({win_length} samples)")
        nyquist = sample_rate / 2.0
        f_max = nyquist if f_max is None or f_max <= 0 else float(f_max)  # Kaldi: <= 0 counts from Nyquist
        if not 0.0 <= f_min < f_max <= nyquist:
            raise InputError(f"fbank f_min/f_max: {f_min}/{f_max} (need 0 <= f_min < f_max <= {nyquist:g})")
        if not 0.0 <= preemph < 1.0:
            raise InputError(f"fbank preemph: {preemph} (expected 0 <= preemph < 1)")
        if not log_floor > 0:
            raise InputError(f"fbank log_floor: {log_floor} (expected > 0)")
        window_function(window, 2)  # validates the name
        self._spec: dict[str, Any] = {
            "kind": self.kind,
            "version": SPEC_VERSION,
            "sample_rate": int(sample_rate),
            "n_mels": int(n_mels),
            "win_ms": float(win_ms),
            "hop_ms": float(hop_ms),
            "n_fft": n_fft,
            "window": window,
            "preemph": float(preemph),
            "remove_dc": bool(remove_dc),
            "f_min": float(f_min),
            "f_max": float(f_max),
            "log_floor": float(log_floor),
            "normalize": bool(normalize),
        }
        self.win_length, self.hop_length = win_length, hop_length
        self.module = FbankModule(
            sample_rate=int(sample_rate),
            n_mels=int(n_mels),
            win_length=win_length,
            hop_length=hop_length,
            n_fft=n_fft,
            window=window,
            preemph=float(preemph),
            remove_dc=bool(remove_dc),
            f_min=float(f_min),
            f_max=float(f_max),
            log_floor=float(log_floor),
            normalize=bool(normalize),
        ).eval()

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> FbankFrontend:
        args = {k: v for k, v in spec.items() if k != "kind"}
        unknown = sorted(set(args) - set(inspect.signature(cls.__init__).parameters))
        if unknown:
            raise InputError(f"fbank spec: unknown field(s) {', '.join(unknown)}")
        return cls(**args)

    @property
    def dim(self) -> int:
        return self._spec["n_mels"]

    @property
    def frame_rate(self) -> float:
        return self._spec["sample_rate"] / self.hop_length

    @property
    def sample_rate(self) -> int:
        return self._spec["sample_rate"]

    @property
    def spec(self) -> dict[str, Any]:
        return dict(self._spec)

    def num_frames(self, num_samples: int) -> int:
        """Frames for ``num_samples`` (inputs shorter than one window are zero-padded to one frame)."""
        return 1 + (max(num_samples, self.win_length) - self.win_length) // self.hop_length

    def _forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.module(pad_to(wave, self.win_length).unsqueeze(0))[0]

    def extract(self, waves: Sequence[Wave]) -> list[torch.Tensor]:
        """One padded batch: frames only see their own samples, so padding never changes a kept frame."""
        tensors = [pad_to(as_wave_tensor(w), self.win_length) for w in waves]
        if not tensors:
            return []
        batch = nn.utils.rnn.pad_sequence(tensors, batch_first=True)
        with torch.no_grad():
            feats = self.module.log_mel(batch)
        out = [feats[i, : self.num_frames(t.numel())] for i, t in enumerate(tensors)]
        return [cmvn(f) if self._spec["normalize"] else f.clone() for f in out]


def export_onnx(
    frontend: FbankFrontend, path: str | os.PathLike[str], *, opset: int = 18, dynamo: bool = False
) -> None:
    """Write ``frontend.module`` as ONNX: input ``wave`` ``[batch, samples]``, output ``features``.

    Inputs must hold at least one window (400 samples at 16 kHz); :class:`FbankFrontend` pads shorter
    waveforms itself, the exported graph does not. The legacy TorchScript exporter (``dynamo=False``) is
    the default because it writes one self-contained file; ``dynamo=True`` works too (see docs/frontend.md).
    """
    # batch 2: torch.export specialises a dimension whose example size is 1
    dummy = torch.zeros(2, frontend.win_length + 4 * frontend.hop_length)
    kwargs: dict[str, Any] = {
        "input_names": ["wave"],
        "output_names": ["features"],
        "opset_version": opset,
        "dynamo": dynamo,
        "verbose": False,
    }
    if dynamo:
        samples = torch.export.Dim("samples", min=frontend.win_length)
        kwargs["dynamic_shapes"] = ({0: torch.export.Dim("batch"), 1: samples},)
        kwargs["external_data"] = False
    else:
        kwargs["dynamic_axes"] = {"wave": {0: "batch", 1: "samples"}, "features": {0: "batch", 1: "frames"}}
    torch.onnx.export(frontend.module, (dummy,), str(path), **kwargs)
