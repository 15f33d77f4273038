"""The front-end interface: a frozen map from a 16 kHz mono waveform to frame features ``[frames, dim]``.

Every front end has a JSON-serialisable :attr:`FrontEnd.spec` (``kind`` plus everything that changes its
output, and for learned models a sha256 of the weights). A checkpoint stores that spec, so the exact
feature path can be rebuilt with :func:`ptsnn.frontend.build_frontend` and checked against the weights.
"""

from __future__ import annotations

import abc
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Union

import numpy as np
import torch
from torch import nn

from ptsnn.errors import InputError
from ptsnn.fileio import sha256_file

Wave = Union[np.ndarray, torch.Tensor]
Layer = Union[str, int]  # "last", "all" or a hidden-state index

SAMPLE_RATE = 16000
FRAME_RATE = 50.0  # wav2vec2 / emotion2vec: 20 ms hop


class FrontEnd(abc.ABC):
    """A frozen feature extractor. Subclasses implement :meth:`_forward` on a 1-D float32 tensor."""

    kind: str = ""  # a class constant, except for SSLFrontend which serves both "hf" and "torchaudio"
    #: False for front ends that read precomputed features instead of computing them from audio.
    needs_audio: ClassVar[bool] = True

    @property
    @abc.abstractmethod
    def dim(self) -> int:
        """Feature size (last axis)."""

    @property
    def frame_rate(self) -> float:
        return FRAME_RATE

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    @property
    @abc.abstractmethod
    def spec(self) -> dict[str, Any]:
        """JSON-serialisable description; ``build_frontend(spec)`` rebuilds an equal front end."""

    @abc.abstractmethod
    def _forward(self, wave: torch.Tensor) -> torch.Tensor:
        """``wave``: 1-D float32 at :attr:`sample_rate`; returns ``[frames, dim]`` (or ``[layers, frames, dim]``)."""

    def __call__(self, wave: Wave) -> torch.Tensor:
        x = as_wave_tensor(wave)
        # no_grad, not inference_mode: the features feed a model that is trained with autograd.
        with torch.no_grad():
            return self._forward(x).float()

    def extract(self, waves: Sequence[Wave]) -> list[torch.Tensor]:
        """Features for several waveforms (one tensor each; lengths differ)."""
        return [self(w) for w in waves]

    def load(self, path: str | os.PathLike[str]) -> torch.Tensor:
        """Features for an audio file, read (and resampled) by :func:`ptsnn.data.audio.load_audio`."""
        from ptsnn.data.audio import load_audio  # lazy: keeps `import ptsnn.frontend` light

        return self(load_audio(path, target_sr=self.sample_rate))

    def spec_hash(self) -> str:
        """Identity of the numbers this front end produces (cache key); see :func:`output_identity`."""
        return spec_hash(output_identity(self.spec))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({json.dumps(self.spec, sort_keys=True)})"


def as_wave_tensor(wave: Wave, name: str = "waveform") -> torch.Tensor:
    """A 1-D contiguous float32 CPU tensor; ``[1, T]`` is accepted as mono."""
    if isinstance(wave, np.ndarray):
        if wave.dtype.kind != "f":
            raise InputError(f"{name}: dtype {wave.dtype} (expected float samples in [-1, 1])")
        t = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))
    elif isinstance(wave, torch.Tensor):
        if not wave.is_floating_point():
            raise InputError(f"{name}: dtype {wave.dtype} (expected float samples in [-1, 1])")
        t = wave.detach().to("cpu", torch.float32)
    else:
        raise InputError(f"{name}: expected a numpy array or torch tensor, got {type(wave).__name__}")
    if t.ndim == 2 and t.shape[0] == 1:
        t = t[0]
    if t.ndim != 1:
        raise InputError(f"{name}: shape {tuple(t.shape)} (expected a 1-D mono waveform)")
    if t.numel() == 0:
        raise InputError(f"{name}: empty waveform")
    if not torch.isfinite(t).all():
        raise InputError(f"{name}: waveform contains NaN or infinite samples")
    return t.contiguous()


def pad_to(wave: torch.Tensor, min_len: int) -> torch.Tensor:
    """Zero-pad a too-short waveform so it yields one frame instead of failing inside a conv."""
    if wave.shape[-1] >= min_len:
        return wave
    return torch.nn.functional.pad(wave, (0, min_len - wave.shape[-1]))


def check_layer(layer: Layer, num_hidden: int) -> Layer:
    """Validate a layer choice against ``num_hidden`` hidden states (transformer layers + 1).

    Index 0 is the transformer input (after the convolutional positional embedding), index ``i`` the
    output of transformer layer ``i``; negative indices count from the end. Digit strings (from a CLI)
    are read as integers.
    """
    if isinstance(layer, str) and layer.lstrip("-").isdigit():
        layer = int(layer)
    if isinstance(layer, bool) or not isinstance(layer, (str, int)):
        raise InputError(f"layer: {layer!r} (expected 'last', 'all' or an integer index)")
    if isinstance(layer, str):
        if layer not in ("last", "all"):
            raise InputError(f"layer: {layer!r} (expected 'last', 'all' or an integer index)")
        return layer
    if not -num_hidden <= layer < num_hidden:
        raise InputError(f"layer: index {layer} out of range (the model has hidden states 0..{num_hidden - 1})")
    return layer


def select_layer(hidden_states: Sequence[torch.Tensor], last: torch.Tensor, layer: Layer) -> torch.Tensor:
    """Pick ``[B, frames, dim]`` (or stack ``[B, layers, frames, dim]`` for ``"all"``)."""
    if layer == "last":
        return last
    if layer == "all":
        return torch.stack(tuple(hidden_states), dim=1)
    return hidden_states[int(layer)]


class LayerWeightedSum(nn.Module):
    """Learnable softmax-weighted sum over stacked SSL layers (SUPERB-style), for the trainable model.

    Input ``[..., layers, frames, dim]`` (as returned by a front end with ``layer="all"``), output
    ``[..., frames, dim]``. Weights start equal, so training begins from the layer average.
    """

    def __init__(self, num_layers: int):
        super().__init__()
        if num_layers < 1:
            raise ValueError("num_layers must be >= 1")
        self.num_layers = int(num_layers)
        self.logits = nn.Parameter(torch.zeros(self.num_layers))

    def weights(self) -> torch.Tensor:
        return torch.softmax(self.logits, dim=0)

    def forward(self, stacked: torch.Tensor) -> torch.Tensor:
        if stacked.ndim < 3 or stacked.shape[-3] != self.num_layers:
            raise ValueError(
                f"LayerWeightedSum expected [..., {self.num_layers}, frames, dim], got {tuple(stacked.shape)}"
            )
        w = self.weights().to(stacked.dtype)
        return torch.einsum("l,...lfd->...fd", w, stacked)

    def extra_repr(self) -> str:
        return f"num_layers={self.num_layers}"


def spec_hash(spec: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON form of a spec (key order and whitespace do not matter)."""
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def output_identity(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a spec that decides the numbers: where weights are hashed, their path does not."""
    return {k: v for k, v in spec.items() if not (k == "path" and "sha256" in spec)}


file_sha256 = sha256_file  # the front end's name for it (exported by ptsnn.frontend)


def files_sha256(paths: Sequence[Path]) -> str:
    """One digest over several files (name and content each), e.g. config.json + weight shards."""
    h = hashlib.sha256()
    for p in paths:
        h.update(p.name.encode("utf-8") + b"\0" + file_sha256(p).encode("ascii") + b"\0")
    return h.hexdigest()


def check_sha256(kind: str, path: str, expected: str | None, actual: str) -> None:
    """A spec from a checkpoint names the weights it was trained on; refuse different ones."""
    if expected and expected != actual:
        raise InputError(
            f"{path}: {kind} weights differ from the ones the spec records "
            f"(sha256 {actual[:12]}... != {expected[:12]}...)"
        )
