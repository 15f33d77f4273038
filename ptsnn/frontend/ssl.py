"""Self-supervised speech models (wav2vec2, HuBERT, WavLM, data2vec-audio) as frozen front ends.

:func:`load_hf` reads a HuggingFace-format folder (``config.json`` + safetensors/bin weights, optional
``preprocessor_config.json``) strictly offline. :class:`SSLFrontend` wraps any such transformers model;
the torchaudio-bundle loader (:mod:`ptsnn.frontend.torchaudio_bundle`) builds the same wrapper.

Utterances are run one at a time: batching zero-padded audio changes the outputs of group-norm models
(the norm spans the padding), and a frozen front end must give the same features however it is called.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from ptsnn.errors import InputError
from ptsnn.frontend.base import (
    SAMPLE_RATE,
    FrontEnd,
    Layer,
    check_layer,
    check_sha256,
    files_sha256,
    pad_to,
    select_layer,
)

# config.json model_type -> transformers class name (all share the wav2vec2 conv + transformer layout)
HF_MODEL_CLASSES: dict[str, str] = {
    "wav2vec2": "Wav2Vec2Model",
    "hubert": "HubertModel",
    "wavlm": "WavLMModel",
    "data2vec-audio": "Data2VecAudioModel",
}
# Weights never used at inference: the learned mask vector for SpecAugment-style pre-training.
IGNORABLE_MISSING = ("masked_spec_embed",)
_WEIGHT_PATTERNS = (
    "model*.safetensors",
    "model.safetensors.index.json",
    "pytorch_model*.bin",
    "pytorch_model.bin.index.json",
)
HF_NORM_EPS = 1e-7  # transformers' Wav2Vec2FeatureExtractor.zero_mean_unit_var_norm
_hash_memo: dict[tuple[str, ...], str] = {}


class SSLFrontend(FrontEnd):
    """A frozen transformers speech encoder; ``layer`` picks ``"last"``, one hidden state, or ``"all"``."""

    def __init__(
        self,
        model: torch.nn.Module,
        *,
        kind: str,
        layer: Layer,
        normalize: bool,
        sample_rate: int,
        spec: dict[str, Any],
        norm_eps: float = HF_NORM_EPS,
    ):
        cfg = model.config
        self.model = model.eval().requires_grad_(False)
        self.num_hidden = int(cfg.num_hidden_layers) + 1
        self.layer = check_layer(layer, self.num_hidden)
        self.normalize = bool(normalize)
        self.norm_eps = float(norm_eps)
        self._sample_rate = int(sample_rate)
        self._dim = int(cfg.hidden_size)
        self._convs = list(zip((int(k) for k in cfg.conv_kernel), (int(s) for s in cfg.conv_stride)))
        self.kind = kind
        self._spec = {
            **spec,
            "kind": kind,
            "layer": self.layer,
            "normalize": self.normalize,
            "sample_rate": self._sample_rate,
            "dim": self._dim,
            "num_hidden": self.num_hidden,
        }

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def frame_rate(self) -> float:
        return self._sample_rate / math.prod(s for _, s in self._convs)

    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    @property
    def spec(self) -> dict[str, Any]:
        return dict(self._spec)

    @property
    def receptive_field(self) -> int:
        """Samples that make up one output frame (400 for the standard wav2vec2 conv stack)."""
        field, jump = 1, 1
        for k, s in self._convs:
            field += (k - 1) * jump
            jump *= s
        return field

    def num_frames(self, num_samples: int) -> int:
        n = max(num_samples, self.receptive_field)
        for k, s in self._convs:
            n = (n - k) // s + 1
        return n

    def _forward(self, wave: torch.Tensor) -> torch.Tensor:
        if self.normalize:
            wave = (wave - wave.mean()) / torch.sqrt(wave.var(unbiased=False) + self.norm_eps)
        x = pad_to(wave, self.receptive_field).unsqueeze(0)
        out = self.model(x, output_hidden_states=self.layer != "last", return_dict=True)
        return select_layer(out.hidden_states, out.last_hidden_state, self.layer)[0]


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """transformers prints load reports and progress bars; we report problems as one-line errors."""
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def _read_json(path: Path) -> dict[str, Any]:
    from ptsnn import safeio

    return safeio.read_json(path, "JSON file", expect_object=True)


def cached_sha256(paths: list[Path]) -> str:
    """Hash weights once per process (keyed by name, size, mtime): a large model takes seconds."""
    key = tuple(f"{p.resolve()}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in paths)
    if key not in _hash_memo:
        _hash_memo[key] = files_sha256(paths)
    return _hash_memo[key]


def _weight_files(folder: Path) -> list[Path]:
    found = {p for pattern in _WEIGHT_PATTERNS for p in folder.glob(pattern) if p.is_file()}
    return sorted(found, key=lambda p: p.name)


def _looks_like_funasr(folder: Path) -> bool:
    return (folder / "config.yaml").exists() or any(folder.glob("*.pt"))


def load_hf(
    path: str | os.PathLike[str],
    *,
    layer: Layer = "last",
    normalize: bool | None = None,
    sha256: str | None = None,
) -> SSLFrontend:
    """Load a HuggingFace-format model folder offline as a frozen front end.

    ``normalize=None`` follows ``do_normalize`` in ``preprocessor_config.json`` (transformers' default,
    True, when the file or the key is absent). ``sha256``, when given (from a checkpoint's spec), must match
    the digest of config.json + weight files.
    """
    folder = Path(path).expanduser()
    if not folder.exists():
        raise InputError(f"{folder}: model directory not found")
    if not folder.is_dir():
        raise InputError(f"{folder}: not a directory (expected a HuggingFace model folder with config.json)")
    config_path = folder / "config.json"
    if not config_path.is_file():
        hint = ""
        if _looks_like_funasr(folder):
            hint = (
                " (looks like a FunASR/fairseq checkpoint such as emotion2vec: "
                "use the 'features' front end, see docs/frontend.md)"
            )
        raise InputError(f"{folder}: no config.json (expected a HuggingFace model folder){hint}")
    model_type = _read_json(config_path).get("model_type")
    if model_type not in HF_MODEL_CLASSES:
        raise InputError(
            f"{config_path}: model_type {model_type!r} is not supported "
            f"(supported: {', '.join(sorted(HF_MODEL_CLASSES))})"
        )
    weights = _weight_files(folder)
    if not weights:
        raise InputError(f"{folder}: no weights (expected model.safetensors or pytorch_model.bin)")
    digest = cached_sha256([config_path, *weights])
    check_sha256("model", str(folder), sha256, digest)

    prep_path = folder / "preprocessor_config.json"
    prep = _read_json(prep_path) if prep_path.is_file() else {}
    sample_rate = int(prep.get("sampling_rate", SAMPLE_RATE))
    if normalize is None:
        normalize = bool(prep.get("do_normalize", True))

    model = _from_pretrained(folder, model_type)
    spec = {"path": str(folder.resolve()), "model_type": model_type, "sha256": digest}
    return SSLFrontend(model, kind="hf", layer=layer, normalize=normalize, sample_rate=sample_rate, spec=spec)


def _from_pretrained(folder: Path, model_type: str) -> torch.nn.Module:
    import transformers

    cls = getattr(transformers, HF_MODEL_CLASSES[model_type])
    with quiet_transformers():
        try:
            model, info = cls.from_pretrained(
                str(folder), local_files_only=True, output_loading_info=True, dtype=torch.float32
            )
        except Exception as exc:  # safetensors, torch and transformers each raise their own types
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if "mismatch" in str(exc).lower() or "ignore_mismatched_sizes" in str(exc):
                first = "weight shapes do not match config.json"
            raise InputError(f"{folder}: cannot load {model_type} weights ({first})") from None
    missing = sorted(k for k in info.get("missing_keys", ()) if not k.endswith(IGNORABLE_MISSING))
    if missing:
        raise InputError(f"{folder}: weights lack {len(missing)} parameter(s) of the model, e.g. {missing[0]}")
    return model


def from_spec(spec: dict[str, Any], **overrides: Any) -> SSLFrontend:
    """Rebuild an ``hf`` front end from its spec (``path`` may be overridden if the model moved)."""
    args = {**spec, **overrides}
    if "path" not in args:
        raise InputError("hf front-end spec: no 'path'")
    return load_hf(
        args["path"], layer=args.get("layer", "last"), normalize=args.get("normalize"), sha256=args.get("sha256")
    )
