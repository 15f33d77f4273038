"""TTFS checkpoints: the same container as ``ptsnn.train.checkpoint`` (plain types and tensors, atomic write,
``torch.load(weights_only=True)``), told apart by ``model_kind: "ttfs"``.

Fields: ``format``, ``format_version``, ``model_kind``, ``state_dict`` (the ReLU twin's float parameters),
``config`` (``TTFSConfig.to_dict()``), ``windows`` ({population: window width B > 0}, ``input`` included:
what :func:`~ptsnn.train.ttfs.calibrate_windows` measured), ``label_map``, ``frontend`` (how a clip becomes
the network's input: the clip encoding of the config), ``versions``, ``metrics``. The grid form is not
stored: :func:`~ptsnn.train.ttfs_integer.quantize_ttfs` derives it deterministically from twin + windows,
so a checkpoint cannot hold integers that disagree with its own weights.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ptsnn.errors import InputError, PtsnnError
from ptsnn.train.checkpoint import (FORMAT, FORMAT_VERSION, _plain, _short, _torch_load, check_state_dict, save_payload,
                                    versions)

MODEL_KIND = "ttfs"
REQUIRED = ("format", "format_version", "model_kind", "state_dict", "config", "windows", "label_map", "versions")


@dataclass
class TTFSCheckpoint:
    path: Path
    state_dict: dict[str, torch.Tensor]
    config: Any  # TTFSConfig
    windows: dict[str, float]
    label_map: dict[str, int]
    frontend: dict
    versions: dict[str, str]
    metrics: dict = field(default_factory=dict)

    @property
    def classes(self) -> list[str]:
        return [k for k, _ in sorted(self.label_map.items(), key=lambda kv: kv[1])]


def clip_frontend(cfg) -> dict:
    """What the host does before the chip (docs/ttfs.md): clip encoding, clipping, grid quantization."""
    return dict(kind="ttfs_clip", encoding=cfg.temporal_encoding, frames_per_clip=int(cfg.frames_per_clip),
                frame_channels=int(cfg.frame_channels), frame_height=int(cfg.frame_size[0]),
                frame_width=int(cfg.frame_size[1]),
                input_max=float(cfg.input_max), steps_per_window=int(cfg.steps_per_window))


def save_ttfs_checkpoint(path: str | os.PathLike[str], net: torch.nn.Module, windows: Mapping[str, float],
                         label_map: Mapping[str, int], metrics: Mapping[str, Any] | None = None) -> Path:
    p = Path(path)
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_kind": MODEL_KIND,
        "state_dict": {k: v.detach().to("cpu").clone() for k, v in net.state_dict().items()},
        "config": _plain(net.cfg.to_dict(), "config"),
        "windows": {str(k): float(v) for k, v in windows.items()},
        "label_map": {str(k): int(v) for k, v in label_map.items()},
        "frontend": clip_frontend(net.cfg),
        "versions": versions(),
        "metrics": _plain(dict(metrics or {}), "metrics"),
    }
    return save_payload(payload, p)


def checkpoint_kind(obj: Any) -> str:
    """``"ttfs"`` or ``"ptssnn"`` (checkpoints written before model kinds existed are PTS-SNN)."""
    return obj.get("model_kind", "ptssnn") if isinstance(obj, dict) else "ptssnn"


def peek_kind(path: str | os.PathLike[str]) -> str:
    """The model kind of a checkpoint file (loads it with ``weights_only``)."""
    return checkpoint_kind(_torch_load(Path(path)))


def read_ttfs_checkpoint(path: str | os.PathLike[str]) -> TTFSCheckpoint:
    """Load and validate a TTFS checkpoint; each problem is a one-line ``InputError`` naming the file."""
    from ptsnn.train.ttfs_config import TTFSConfig

    p = Path(path)
    obj = _torch_load(p)
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise InputError(f"{p}: not a ptsnn checkpoint")
    if checkpoint_kind(obj) != MODEL_KIND:
        raise InputError(f"{p}: model_kind is {checkpoint_kind(obj)!r}, expected 'ttfs'")
    fv = obj.get("format_version")
    if not isinstance(fv, int) or isinstance(fv, bool) or fv > FORMAT_VERSION:
        raise InputError(f"{p}: unsupported format_version {fv!r}")
    missing = [k for k in REQUIRED if k not in obj]
    if missing:
        raise InputError(f"{p}: ttfs checkpoint is missing field(s) {', '.join(missing)}")
    for key in ("state_dict", "config", "windows", "label_map", "versions"):
        if not isinstance(obj[key], dict):
            raise InputError(f"{p}: field {key!r} is a {type(obj[key]).__name__}, expected dict")
    for name, t in obj["state_dict"].items():
        if not isinstance(t, torch.Tensor):
            raise InputError(f"{p}: state_dict entry {name!r} is not a tensor")
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise InputError(f"{p}: tensor {name!r} contains NaN/Inf values")
    try:
        cfg = TTFSConfig.from_dict(obj["config"])
    except PtsnnError as exc:
        raise InputError(f"{p}: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise InputError(f"{p}: invalid ttfs config ({_short(exc)})") from None
    windows = obj["windows"]
    for name, b in windows.items():
        if isinstance(b, bool) or not isinstance(b, (int, float)) or not math.isfinite(b) or b <= 0:
            raise InputError(f"{p}: windows.{name} = {b!r} is not a width > 0")
    label_map = obj["label_map"]
    if sorted(label_map.values()) != list(range(len(label_map))) or len(label_map) != cfg.num_classes:
        raise InputError(f"{p}: label_map must map {cfg.num_classes} label names to 0..{cfg.num_classes - 1}")
    frontend = obj.get("frontend") if isinstance(obj.get("frontend"), dict) else clip_frontend(cfg)
    metrics = obj.get("metrics") if isinstance(obj.get("metrics"), dict) else {}
    return TTFSCheckpoint(p, dict(obj["state_dict"]), cfg, {str(k): float(v) for k, v in windows.items()},
                          dict(label_map), dict(frontend), dict(obj["versions"]), metrics)


def load_ttfs(path: str | os.PathLike[str]):
    """``(TTFSNet in eval mode, TTFSCheckpoint)``."""
    from ptsnn.train.ttfs import TTFSNet

    ckpt = read_ttfs_checkpoint(path)
    net = TTFSNet(ckpt.config)
    dtype = next(iter(ckpt.state_dict.values())).dtype
    net = net.to(dtype)
    check_state_dict(ckpt.path, net, ckpt.state_dict)
    net.load_state_dict(ckpt.state_dict, strict=True)
    return net.eval(), ckpt


def load_integer(path: str | os.PathLike[str]):
    """``(IntegerTTFS, TTFSNet, TTFSCheckpoint)``: the grid form derived from the stored twin and windows
    (a window that misses a population is a one-line error)."""
    from ptsnn.train.ttfs_integer import quantize_ttfs

    net, ckpt = load_ttfs(path)
    try:
        grid = quantize_ttfs(net, ckpt.windows)
    except InputError as exc:
        raise InputError(f"{ckpt.path}: {exc}") from None
    return grid, net, ckpt
