"""Read torchaudio bundle checkpoints (``.pth`` state dicts of ``torchaudio.models.Wav2Vec2Model``).

torchaudio cannot be imported next to CPU torch (docs/frontend.md), but its checkpoints are plain state
dicts. ``torchaudio.models.wav2vec2.utils.import_huggingface_model`` copies a transformers model into
torchaudio's modules; the key table below is that mapping written as data, and loading a bundle applies it
backwards into the equivalent transformers model (Wav2Vec2Model for wav2vec2 / HuBERT, WavLMModel).

Architecture: everything is read from tensor shapes except four numbers, which follow the conventions of
torchaudio's own factory functions unless a JSON sidecar (``model.json`` or ``model.pth.json``) or the
``arch`` argument sets them:

* ``num_heads``: known for the bundle sizes (768 -> 12, 1024 -> 16, 1280 -> 16); WavLM stores it in shapes.
* ``conv_stride``: (5, 2, 2, 2, 2, 2, 2) when the kernels are the standard (10, 3, 3, 3, 3, 2, 2).
* ``layer_norm_first``: True exactly when the conv extractor uses layer norm (all large models).
* ``max_distance`` (WavLM): 800.
"""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ptsnn.errors import InputError
from ptsnn.frontend.base import SAMPLE_RATE, Layer, check_sha256
from ptsnn.frontend.ssl import SSLFrontend, _read_json, cached_sha256, quiet_transformers

# (transformers Wav2Vec2Model/WavLMModel key prefix, torchaudio Wav2Vec2Model key prefix)
KEY_PREFIXES: tuple[tuple[str, str], ...] = (
    ("feature_extractor.conv_layers.", "feature_extractor.conv_layers."),
    ("feature_projection.", "encoder.feature_projection."),
    ("encoder.pos_conv_embed.", "encoder.transformer.pos_conv_embed."),
    ("encoder.layer_norm.", "encoder.transformer.layer_norm."),
    ("encoder.layers.", "encoder.transformer.layers."),
)
# Weight norm of the positional conv: torch parametrizations (transformers) vs nn.utils.weight_norm names,
# which torchaudio's published checkpoints use.
KEY_SUFFIXES: tuple[tuple[str, str], ...] = (
    (".parametrizations.weight.original0", ".weight_g"),
    (".parametrizations.weight.original1", ".weight_v"),
)
# WavLM: torchaudio wraps an nn.MultiheadAttention (fused q/k/v, see fuse_qkv) inside its attention block.
WAVLM_INFIXES: tuple[tuple[str, str], ...] = ((".attention.out_proj.", ".attention.attention.out_proj."),)
# transformers-only parameters with no torchaudio counterpart (unused at inference).
HF_ONLY = ("masked_spec_embed",)
# torchaudio-only parameters: the CTC head of ASR bundles, not part of the encoder.
TORCHAUDIO_ONLY_PREFIXES = ("aux.",)

STANDARD_KERNELS = (10, 3, 3, 3, 3, 2, 2)
STANDARD_STRIDES = (5, 2, 2, 2, 2, 2, 2)
KNOWN_HEADS = {768: 12, 1024: 16, 1280: 16}
WAVLM_MAX_DISTANCE = 800
TORCHAUDIO_NORM_EPS = 1e-5  # torchaudio bundles normalise with F.layer_norm(wave, wave.shape)
ARCH_KEYS = ("family", "num_heads", "conv_stride", "layer_norm_first", "max_distance")


def _rename(key: str, table: tuple[tuple[str, str], ...], *, prefix: bool) -> str:
    for src, dst in table:
        if prefix and key.startswith(src):
            return dst + key[len(src) :]
        if not prefix and key.endswith(src):
            return key[: -len(src)] + dst
    return key


def _swap(table: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    return tuple((b, a) for a, b in table)


def hf_key_to_torchaudio(key: str, *, wavlm: bool = False) -> str | None:
    """torchaudio name of a transformers parameter (``None``: no counterpart)."""
    if key.endswith(HF_ONLY):
        return None
    if not any(key.startswith(src) for src, _ in KEY_PREFIXES):
        raise KeyError(key)
    key = _rename(_rename(key, KEY_PREFIXES, prefix=True), KEY_SUFFIXES, prefix=False)
    if wavlm:
        for src, dst in WAVLM_INFIXES:
            key = key.replace(src, dst, 1)
    return key


def torchaudio_key_to_hf(key: str, *, wavlm: bool = False) -> str | None:
    """transformers name of a torchaudio parameter (``None``: no counterpart); the inverse table."""
    if key.startswith(TORCHAUDIO_ONLY_PREFIXES):
        return None
    if not any(key.startswith(dst) for _, dst in KEY_PREFIXES):
        raise KeyError(key)
    if wavlm:
        for src, dst in _swap(WAVLM_INFIXES):
            key = key.replace(src, dst, 1)
    return _rename(_rename(key, _swap(KEY_SUFFIXES), prefix=False), _swap(KEY_PREFIXES), prefix=True)


_QKV = ("q_proj", "k_proj", "v_proj")
_LAYER_ATTN = re.compile(r"^(encoder\.transformer\.layers\.\d+\.attention)\.attention\.in_proj_(weight|bias)$")


def hf_to_torchaudio_state(state: Mapping[str, torch.Tensor], *, wavlm: bool) -> dict[str, torch.Tensor]:
    """Rename a transformers state dict into torchaudio's layout (what ``import_huggingface_model`` does)."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        ta = hf_key_to_torchaudio(key, wavlm=wavlm)
        if ta is not None:
            out[ta] = value
    return fuse_qkv(out) if wavlm else out


def fuse_qkv(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """WavLM: separate q/k/v projections -> nn.MultiheadAttention's ``in_proj_{weight,bias}``."""
    out = dict(state)
    for key in [k for k in state if k.endswith(".attention.q_proj.weight")]:
        base = key[: -len(".q_proj.weight")]
        for kind in ("weight", "bias"):
            parts = [out.pop(f"{base}.{p}.{kind}") for p in _QKV]
            out[f"{base}.attention.in_proj_{kind}"] = torch.cat(parts, dim=0)
    return out


def torchaudio_to_hf_state(state: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], bool]:
    """Inverse of :func:`hf_to_torchaudio_state`; returns the transformers state dict and whether it is WavLM."""
    wavlm = is_wavlm(state)
    split: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        m = _LAYER_ATTN.match(key)
        if m:  # split the fused projection back into q, k, v
            for name, part in zip(_QKV, value.chunk(3, dim=0)):
                split[f"{m.group(1)}.{name}.{m.group(2)}"] = part
        else:
            split[key] = value
    out: dict[str, torch.Tensor] = {}
    for key, value in split.items():
        try:
            hf = torchaudio_key_to_hf(key, wavlm=wavlm)
        except KeyError:
            raise InputError(f"unexpected parameter {key!r} (not part of a torchaudio Wav2Vec2Model)") from None
        if hf is not None:
            out[hf] = value
    return out, wavlm


def is_wavlm(state: Mapping[str, Any]) -> bool:
    return any(k.endswith(("attention.in_proj_weight", "rel_attn_embed.weight", "gru_rel_pos_const")) for k in state)


def _indices(state: Mapping[str, Any], pattern: str) -> list[int]:
    rx = re.compile(pattern)
    return sorted({int(m.group(1)) for k in state if (m := rx.match(k))})


def infer_arch(state: Mapping[str, torch.Tensor], overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """transformers config kwargs for a torchaudio state dict (see the module docstring for the rules)."""
    over = dict(overrides or {})
    unknown = sorted(set(over) - set(ARCH_KEYS))
    if unknown:
        raise InputError(f"torchaudio arch: unknown key(s) {', '.join(unknown)} (allowed: {', '.join(ARCH_KEYS)})")
    convs = _indices(state, r"^feature_extractor\.conv_layers\.(\d+)\.conv\.weight$")
    layers = _indices(state, r"^encoder\.transformer\.layers\.(\d+)\.")
    proj = state.get("encoder.feature_projection.projection.weight")
    contiguous = convs == list(range(len(convs))) and layers == list(range(len(layers)))
    if not convs or not layers or proj is None or not contiguous:
        raise InputError(
            "not a torchaudio Wav2Vec2Model state dict (conv layers, projection or transformer layers missing; "
            "emotion2vec / data2vec 2.0 checkpoints are not supported, see docs/frontend.md)"
        )
    conv_w = [state[f"feature_extractor.conv_layers.{i}.conv.weight"] for i in convs]
    norms = [f"feature_extractor.conv_layers.{i}.layer_norm.weight" in state for i in convs]
    if all(norms):
        extractor = "layer"
    elif norms[0] and not any(norms[1:]):
        extractor = "group"
    else:
        raise InputError(
            "conv feature extractor without normalisation is not supported (transformers has no such mode)"
        )
    hidden = int(proj.shape[0])
    pos_names = ("weight_v", "parametrizations.weight.original1", "weight")
    pos = next(
        (state[k] for n in pos_names if (k := f"encoder.transformer.pos_conv_embed.conv.{n}") in state), None
    )
    ffn = state.get("encoder.transformer.layers.0.feed_forward.intermediate_dense.weight")
    if pos is None or ffn is None:
        raise InputError("not a torchaudio Wav2Vec2Model state dict (positional conv or feed-forward weights missing)")

    wavlm = is_wavlm(state)
    family = "wavlm" if wavlm else "wav2vec2"
    if over.get("family", family) != family:
        raise InputError(f"torchaudio arch: family {over['family']!r} but the weights are {family}")
    kernels = tuple(int(w.shape[2]) for w in conv_w)
    strides = over.get("conv_stride")
    if strides is None:
        if kernels != STANDARD_KERNELS:
            raise InputError(f"conv kernels {kernels} are not the standard stack: give conv_stride in a JSON sidecar")
        strides = STANDARD_STRIDES
    if len(strides) != len(kernels):
        raise InputError(f"torchaudio arch: conv_stride has {len(strides)} entries for {len(kernels)} conv layers")
    rel = state.get("encoder.transformer.layers.0.attention.rel_attn_embed.weight")
    heads = over.get("num_heads")
    if heads is None:
        heads = int(rel.shape[1]) if rel is not None else KNOWN_HEADS.get(hidden)
    if heads is None:
        raise InputError(f"cannot infer num_heads for hidden size {hidden}: give num_heads in a JSON sidecar")
    if hidden % int(heads):
        raise InputError(f"torchaudio arch: num_heads {heads} does not divide hidden size {hidden}")
    arch: dict[str, Any] = {
        "family": family,
        "num_heads": int(heads),
        "conv_stride": [int(s) for s in strides],
        "layer_norm_first": bool(over.get("layer_norm_first", extractor == "layer")),
    }
    if wavlm:
        arch["max_distance"] = int(over.get("max_distance", WAVLM_MAX_DISTANCE))
    config = {
        "hidden_size": hidden,
        "num_hidden_layers": len(layers),
        "num_attention_heads": int(heads),
        "intermediate_size": int(ffn.shape[0]),
        "conv_dim": [int(w.shape[0]) for w in conv_w],
        "conv_kernel": list(kernels),
        "conv_stride": arch["conv_stride"],
        "conv_bias": "feature_extractor.conv_layers.0.conv.bias" in state,
        "feat_extract_norm": extractor,
        "num_conv_pos_embeddings": int(pos.shape[2]),
        "num_conv_pos_embedding_groups": hidden // int(pos.shape[1]),
        "do_stable_layer_norm": arch["layer_norm_first"],
        # torchaudio: exact GELU everywhere, default LayerNorm eps; no masking at inference
        "hidden_act": "gelu",
        "feat_extract_activation": "gelu",
        "layer_norm_eps": 1e-5,
        "mask_time_prob": 0.0,
        "mask_feature_prob": 0.0,
    }
    if wavlm:
        config["num_buckets"] = int(rel.shape[0]) if rel is not None else 320
        config["max_bucket_distance"] = arch["max_distance"]
    return {"arch": arch, "config": config}


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """``torch.load(weights_only=True)``; refuses pickled objects, unwraps ``{"state_dict"|"model": ...}``."""
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise InputError(
            f"{path}: not a plain state dict (holds pickled objects that weights_only=True refuses; "
            "fairseq/FunASR checkpoints such as emotion2vec are not supported, see docs/frontend.md)"
        ) from None
    except Exception as exc:  # zip/pickle/EOF errors all mean "not a torch file"
        raise InputError(f"{path}: not a PyTorch checkpoint ({type(exc).__name__})") from None
    if isinstance(obj, Mapping):
        for wrapper in ("state_dict", "model"):
            inner = obj.get(wrapper)
            if isinstance(inner, Mapping) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                obj = inner
                break
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise InputError(f"{path}: not a state dict (expected a mapping of parameter names to tensors)")
    return {str(k): v for k, v in obj.items()}


def _sidecar(path: Path) -> dict[str, Any]:
    for side in (path.with_suffix(".json"), Path(str(path) + ".json")):
        if side.is_file():
            return _read_json(side)
    return {}


def _adapt_weight_norm(state: dict[str, torch.Tensor], target_keys: set[str]) -> None:
    """Match the positional conv's weight-norm naming to the model's (an unnormalised weight also works)."""
    base = "encoder.pos_conv_embed.conv."
    names = {"g": (base + "parametrizations.weight.original0", base + "weight_g"),
             "v": (base + "parametrizations.weight.original1", base + "weight_v")}
    if base + "weight" in state and base + "weight" not in target_keys:
        v = state.pop(base + "weight")  # weight = g * v / |v| with g = |v| (norm over all but dim 2)
        state[names["g"][0]] = v.norm(dim=(0, 1), keepdim=True)
        state[names["v"][0]] = v
    for para, legacy in names.values():
        if para in state and para not in target_keys and legacy in target_keys:
            state[legacy] = state.pop(para)


def load_torchaudio(
    path: str | os.PathLike[str],
    *,
    layer: Layer = "last",
    normalize: bool | None = None,
    arch: Mapping[str, Any] | None = None,
    sha256: str | None = None,
) -> SSLFrontend:
    """Load a torchaudio bundle ``.pth`` as a frozen front end (transformers model inside).

    ``normalize=None`` normalises the waveform exactly when the model is a layer-norm ("large") model, as
    torchaudio's bundles do. ``arch`` overrides the sidecar, which overrides the inferred conventions.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise InputError(f"{p}: torchaudio checkpoint not found")
    if not p.is_file():
        raise InputError(f"{p}: not a file (expected a torchaudio .pth state dict)")
    digest = cached_sha256([p])
    check_sha256("torchaudio", str(p), sha256, digest)
    state = read_state_dict(p)
    try:
        inferred = infer_arch(state, {**_sidecar(p), **dict(arch or {})})
        hf_state, wavlm = torchaudio_to_hf_state(state)
    except InputError as exc:
        raise InputError(f"{p}: {exc}") from None
    model = _build(inferred["config"], wavlm)
    _adapt_weight_norm(hf_state, set(model.state_dict()))
    try:
        result = model.load_state_dict(hf_state, strict=False)
    except RuntimeError as exc:
        shape = re.search(r"size mismatch for ([\w.]+)", str(exc))
        where = f" ({shape.group(1)})" if shape else ""
        raise InputError(f"{p}: weight shapes are inconsistent{where}") from None
    missing = sorted(k for k in result.missing_keys if not k.endswith(HF_ONLY))
    if missing:
        example = hf_key_to_torchaudio(missing[0], wavlm=wavlm)
        raise InputError(f"{p}: checkpoint lacks {len(missing)} parameter(s), e.g. {example}")
    if result.unexpected_keys:
        example = hf_key_to_torchaudio(result.unexpected_keys[0], wavlm=wavlm)
        raise InputError(f"{p}: unexpected parameter {example!r}")
    if normalize is None:
        normalize = inferred["config"]["feat_extract_norm"] == "layer"
    spec = {"path": str(p.resolve()), "sha256": digest, "arch": inferred["arch"]}
    return SSLFrontend(
        model, kind="torchaudio", layer=layer, normalize=normalize, sample_rate=SAMPLE_RATE, spec=spec,
        norm_eps=TORCHAUDIO_NORM_EPS,
    )


def _build(config: dict[str, Any], wavlm: bool) -> torch.nn.Module:
    import transformers

    cfg_cls, model_cls = (
        (transformers.WavLMConfig, transformers.WavLMModel) if wavlm
        else (transformers.Wav2Vec2Config, transformers.Wav2Vec2Model)
    )
    dropouts = ("hidden_dropout", "attention_dropout", "activation_dropout", "feat_proj_dropout", "layerdrop")
    zero = {k: 0.0 for k in dropouts}
    with quiet_transformers():
        return model_cls(cfg_cls(**config, **zero)).eval()


def from_spec(spec: dict[str, Any], **overrides: Any) -> SSLFrontend:
    """Rebuild a ``torchaudio`` front end from its spec (``path`` may be overridden if the file moved)."""
    args = {**spec, **overrides}
    if "path" not in args:
        raise InputError("torchaudio front-end spec: no 'path'")
    return load_torchaudio(
        args["path"], layer=args.get("layer", "last"), normalize=args.get("normalize"),
        arch=args.get("arch"), sha256=args.get("sha256"),
    )
