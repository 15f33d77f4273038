"""Checkpoints: a dict of plain types and tensors only, written atomically, read only with ``weights_only``.

Format (``format: "ptsnn-checkpoint"``, ``format_version: 1``)::

    state_dict      {name: tensor}  the model's parameters and buffers (quantization state included)
    config          Config.to_dict()
    label_map       {label: class index}
    frontend        the front end's spec (``build_frontend(spec)`` rebuilds it)
    versions        {"ptsnn", "torch", "python"}
    quantized       bool (must agree with the state dict's ``quantized_flag``)
    metrics         plain dict (JSON types)
    calibration     optional: the score temperature fitted on the validation split and its NLL/ECE before and
                    after (``ptsnn.train.calibration.calibrate``); absent in older checkpoints (T = 1)
    format, format_version

Saving goes through a temporary file in the target folder and ``os.replace``, so a reader never sees a
half-written checkpoint. Loading uses ``torch.load(path, map_location="cpu", weights_only=True)`` (no
arbitrary pickled objects can run code) and validates everything; each problem is a one-line
:class:`~ptsnn.errors.InputError` naming the file.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import platform
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ptsnn import safeio
from ptsnn.errors import InputError, PtsnnError
from ptsnn.fileio import atomic_output

FORMAT = "ptsnn-checkpoint"
# dtypes a ptsnn state dict holds (float weights, long exponents, the bool quantized flag); complex or other
# dtypes are refused before they reach the model
ALLOWED_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.int32, torch.bool)
EXPONENT_RANGE = (-40, 14)  # per-layer weight exponents choose_scale can produce (14 is its cap)
EXPONENT_BUFFERS = ("scale_exponent", "readout_exponent")
FORMAT_VERSION = 1
REQUIRED = ("format", "format_version", "state_dict", "config", "label_map", "frontend", "versions", "quantized")


def versions() -> dict[str, str]:
    from ptsnn import __version__

    return {"ptsnn": str(__version__), "torch": str(torch.__version__), "python": platform.python_version()}


def _plain(value: Any, where: str = "metrics") -> Any:
    """JSON-typed copy (dict/list/str/int/float/bool/None); numpy scalars and 0-d tensors become numbers."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v, where) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, where) for v in value]
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    if hasattr(value, "item") and hasattr(value, "dtype"):  # numpy scalar
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{where}: {type(value).__name__} is not a plain type")


@dataclass
class Checkpoint:
    path: Path
    state_dict: dict[str, torch.Tensor]
    config: Any  # ptsnn.train.config.Config
    label_map: dict[str, int]
    frontend: dict
    versions: dict[str, str]
    quantized: bool
    metrics: dict = field(default_factory=dict)
    calibration: dict = field(default_factory=dict)  # {} when the checkpoint has no fitted temperature

    @property
    def classes(self) -> list[str]:
        return [k for k, _ in sorted(self.label_map.items(), key=lambda kv: kv[1])]

    @property
    def temperature(self) -> float | None:
        """The score temperature fitted at training time, or None (older checkpoints: use T = 1)."""
        return self.calibration.get("temperature")


def save_checkpoint(path: str | os.PathLike[str], model: torch.nn.Module, config, label_map: Mapping[str, int],
                    frontend: Mapping[str, Any], metrics: Mapping[str, Any] | None = None,
                    calibration: Mapping[str, Any] | None = None) -> Path:
    """Write ``model`` (a PTSSNN, unwrapped from DDP) and its context to ``path`` atomically; ``calibration``
    is the score temperature record of ``ptsnn.train.calibration.calibrate`` (optional)."""
    p = Path(path)
    module = getattr(model, "module", model)
    state = {k: v.detach().to("cpu").clone() for k, v in module.state_dict().items()}
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "state_dict": state,
        "config": _plain(config.to_dict() if hasattr(config, "to_dict") else config, "config"),
        "label_map": {str(k): int(v) for k, v in label_map.items()},
        "frontend": _plain(dict(frontend), "frontend"),
        "versions": versions(),
        "quantized": bool(getattr(module, "quantized", False)),
        "metrics": _plain(dict(metrics or {}), "metrics"),
    }
    if calibration is not None:
        payload["calibration"] = _plain(dict(calibration), "calibration")
    return save_payload(payload, p)


def save_payload(payload: dict, p: Path) -> Path:
    """``torch.save`` of a checkpoint dict, atomically and on disk before the rename makes it visible."""
    with atomic_output(p) as tmp, open(tmp, "wb") as f:
        torch.save(payload, f)
        f.flush()
        os.fsync(f.fileno())
    return p


def _torch_load(p: Path) -> Any:
    if p.is_file() and p.stat().st_size == 0:
        raise InputError(f"{p}: empty file (truncated checkpoint?)")
    safeio.check_file(p, "checkpoint")
    with open(p, "rb") as f:
        head = f.read(4)
    is_zip_start = head == b"PK\x03\x04"
    if is_zip_start and not zipfile.is_zipfile(p):
        raise InputError(f"{p}: truncated or damaged checkpoint (its zip directory is missing)")
    if is_zip_start:
        _check_records(p)
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        if "Unsupported global" in text or "not an allowed global" in text:
            raise InputError(f"{p}: refused: the file holds pickled Python objects other than tensors and plain "
                             "types (loading it could run code; not a ptsnn checkpoint)") from None
        # torch prefixes every unpickling failure with a long weights_only notice; keep the actual cause
        cause = text.split("Unpickler error:")[-1] if "Unpickler error:" in text else text
        raise InputError(f"{p}: not a PyTorch checkpoint (cannot unpickle: {_short(Exception(cause))})") from None
    except Exception as exc:  # RuntimeError, EOFError, struct.error, ...: unreadable either way
        if is_zip_start:
            raise InputError(f"{p}: truncated or damaged checkpoint ({_short(exc)})") from None
        raise InputError(f"{p}: not a PyTorch checkpoint file ({_short(exc)})") from None


def _check_records(p: Path) -> None:
    """torch.load does not verify the zip's CRC-32s, so a flipped bit in tensor data would load as a silently
    different model; check every record (bounded by the declared sizes) first."""
    try:
        with zipfile.ZipFile(p) as zf:
            declared = sum(i.file_size for i in zf.infolist())
            limit = safeio.limits().max_total_bytes
            if declared > limit:
                raise InputError(f"{p}: checkpoint records declare {declared:,} bytes, above the limit of {limit:,} "
                                 "(PTSNN_MAX_TOTAL_BYTES)")
            bad = zf.testzip()
    except InputError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, RuntimeError) as exc:
        raise InputError(f"{p}: truncated or damaged checkpoint ({_short(exc)})") from None
    if bad is not None:
        raise InputError(f"{p}: damaged checkpoint: record {bad!r} fails its CRC-32 check (bit flips or an edit)")


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:160] + ("..." if len(text) > 160 else "")


def read_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Load and validate a checkpoint's container (format, fields, tensors finite); the state dict is
    checked against the model by :func:`load_model`."""
    from ptsnn.train.config import Config, check_frontend_spec

    p = Path(path)
    obj = _torch_load(p)
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        what = f"a {type(obj).__name__}" if not isinstance(obj, dict) else "a dict without format='ptsnn-checkpoint'"
        if isinstance(obj, dict) and all(isinstance(v, torch.Tensor) for v in obj.values()) and obj:
            what = "a bare state dict"
        raise InputError(f"{p}: not a ptsnn checkpoint (it holds {what})")
    if obj.get("model_kind", "ptssnn") != "ptssnn":
        raise InputError(f"{p}: a {obj.get('model_kind')!r} checkpoint, not a PTS-SNN one (ptsnn.train.ttfs_checkpoint "
                         "reads TTFS checkpoints)")
    fv = obj.get("format_version")
    if not isinstance(fv, int) or isinstance(fv, bool):
        raise InputError(f"{p}: ptsnn checkpoint without a valid format_version")
    if fv > FORMAT_VERSION:
        raise InputError(f"{p}: checkpoint format_version {fv} is newer than this ptsnn reads ({FORMAT_VERSION}); "
                         "upgrade ptsnn")
    missing = [k for k in REQUIRED if k not in obj]
    if missing:
        raise InputError(f"{p}: ptsnn checkpoint is missing field(s) {', '.join(missing)}")
    state = obj["state_dict"]
    if not isinstance(state, dict) or not state:
        raise InputError(f"{p}: state_dict is empty or not a dict")
    bound = safeio.limits().max_abs_value
    for name, t in state.items():
        if not isinstance(t, torch.Tensor):
            raise InputError(f"{p}: state_dict entry {name!r} is a {type(t).__name__}, not a tensor")
        if t.dtype not in ALLOWED_DTYPES or t.is_sparse or t.layout != torch.strided:
            raise InputError(f"{p}: tensor {name!r} has dtype {t.dtype} ({t.layout}); a ptsnn state dict holds "
                             "dense float, integer or bool tensors only")
        if t.is_floating_point():
            bad = int((~torch.isfinite(t)).sum())
            if bad:
                raise InputError(f"{p}: tensor {name!r} contains {bad} NaN/Inf value(s) (diverged training?)")
            peak = float(t.abs().max()) if t.numel() else 0.0
            if peak > bound:
                raise InputError(f"{p}: tensor {name!r} holds {peak:.3g}, beyond |x| <= {bound:g} (corrupt weights)")
        if name.rsplit(".", 1)[-1] in EXPONENT_BUFFERS:
            lo, hi = EXPONENT_RANGE
            if t.dtype != torch.int64 or t.numel() != 1 or not lo <= int(t) <= hi:
                raise InputError(f"{p}: tensor {name!r} (a power-of-two weight exponent) must be one integer in "
                                 f"{lo}..{hi}, got {t.dtype} {t.flatten()[:3].tolist()}")
    for key, kind in (("config", dict), ("label_map", dict), ("frontend", dict), ("versions", dict),
                      ("quantized", bool)):
        if not isinstance(obj[key], kind):
            raise InputError(f"{p}: field {key!r} is a {type(obj[key]).__name__}, expected {kind.__name__}")
    label_map = obj["label_map"]
    if sorted(label_map.values()) != list(range(len(label_map))) or not all(isinstance(k, str) for k in label_map):
        raise InputError(f"{p}: label_map must map label names to 0..N-1")
    try:
        safeio.check_depth(obj["config"], "config")
        safeio.check_depth(obj["frontend"], "frontend")
        config = Config.from_dict(obj["config"], "config")
        check_frontend_spec(obj["frontend"], "frontend")
    except PtsnnError as exc:
        raise InputError(f"{p}: {exc}") from None
    except (TypeError, ValueError, AttributeError) as exc:
        raise InputError(f"{p}: invalid config ({_short(exc)})") from None
    if config.model.num_classes != len(label_map):
        raise InputError(f"{p}: config has {config.model.num_classes} classes but label_map has {len(label_map)}")
    flag = state.get("quantized_flag")
    if flag is not None and flag.numel() == 1 and bool(flag) != obj["quantized"]:
        raise InputError(f"{p}: 'quantized' is {obj['quantized']} but the state dict's quantized_flag is {bool(flag)}")
    metrics = obj.get("metrics") or {}
    return Checkpoint(p, dict(state), config, dict(label_map), dict(obj["frontend"]), dict(obj["versions"]),
                      bool(obj["quantized"]), metrics if isinstance(metrics, dict) else {},
                      _calibration(p, obj.get("calibration")))


def _calibration(p: Path, cal: Any) -> dict:
    """The optional ``calibration`` field: absent, or a dict whose temperature is a finite positive number."""
    if cal is None:
        return {}
    t = cal.get("temperature") if isinstance(cal, dict) else None
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or t <= 0:
        raise InputError(f"{p}: field 'calibration' needs a finite positive 'temperature' (got {t!r})")
    return dict(cal, temperature=float(t))


def check_state_dict(path: Path, model: torch.nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    extra = [k for k in state if k not in expected]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} ({_names(missing)})")
        if extra:
            parts.append(f"unexpected {len(extra)} ({_names(extra)})")
        raise InputError(f"{path}: state_dict does not match the model of its config: {'; '.join(parts)}")
    for k, t in expected.items():
        if tuple(state[k].shape) != tuple(t.shape):
            raise InputError(f"{path}: state_dict tensor {k!r} has shape {tuple(state[k].shape)}, "
                             f"the model expects {tuple(t.shape)}")
        if state[k].dtype != t.dtype:
            raise InputError(f"{path}: state_dict tensor {k!r} has dtype {state[k].dtype}, the model expects {t.dtype}")


def _names(keys: list[str], limit: int = 3) -> str:
    return ", ".join(keys[:limit]) + (", ..." if len(keys) > limit else "")


def load_model(path: str | os.PathLike[str], device: str | torch.device = "cpu"):
    """``(PTSSNN in eval mode, Checkpoint)``: the model of the checkpoint's config with its weights and its
    quantization state (a QAT checkpoint gives a quantized model)."""
    from ptsnn.train.model import PTSSNN

    ckpt = read_checkpoint(path)
    model = PTSSNN(ckpt.config.model)
    check_state_dict(ckpt.path, model, ckpt.state_dict)
    model.load_state_dict(ckpt.state_dict, strict=True)
    model.to(device).eval()
    return model, ckpt


def write_json(path: str | os.PathLike[str], data: Any) -> Path:
    """Atomic JSON (metrics, summaries); NaN becomes null."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)

    def clean(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, list):
            return [clean(x) for x in v]
        return v

    from ptsnn.fileio import atomic_write_text

    return atomic_write_text(p, json.dumps(clean(_plain(data, str(p))), indent=2) + "\n")
