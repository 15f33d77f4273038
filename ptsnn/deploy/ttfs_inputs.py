"""What a TTFS bundle runs on: eye clips -> grid inputs ``q0`` -> per-sample host payloads.

One input source for ``ptsnn run``, ``ptsnn verify`` and ``ptsnn report`` on TTFS bundles:

* :func:`eye_clips`: ``synthetic-eye`` or ``see:PATH`` (``ptsnn.data.eye.load_eye_dataset``), the test split
  as in training (the data options the checkpoint was trained with, when the bundle carries them);
* :func:`sequence_clips`: sequence folders of numbered frames and AEDAT4 recordings (``read_sequence``);
* :func:`grid_input` (``q0 = round(x K / input_max)``, clipped) and :func:`sample_payloads` (one
  ``{input, timing}`` payload per sample, the form ``ptsnn.deploy.backends`` take).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ptsnn.errors import InputError
from ptsnn.train import ttfs_chip
from ptsnn.train.ttfs_config import TTFSConfig

CHANNELS_BY_COUNT = {1: "frame", 2: "event", 3: "frame+event"}  # the eye readers' channel layouts


@dataclass
class EyeClips:
    x: torch.Tensor  # [N, C, H, W] float64, the encoded clips (network input before the grid)
    labels: np.ndarray | None  # [N] class indices, or None
    names: list[str]
    lighting: list[str] | None = None


def _source_kind(spec: str | None) -> str | None:
    return None if spec is None else "see" if str(spec).startswith("see:") else str(spec)


def data_options_for(cfg: TTFSConfig, trained_with: dict | None = None, data: str | None = None) -> dict:
    """``load_eye_dataset`` options: those the network was trained with (``spec`` dropped) when ``data`` is
    the same kind of source (synthetic options mean nothing to a SEE folder), else the frame size and
    channel layout its input needs."""
    trained_with = dict(trained_with or {})
    same = data is None or _source_kind(trained_with.get("spec")) in (None, _source_kind(data))
    opts = {k: v for k, v in trained_with.items() if k != "spec"} if same else {}
    if not opts:
        h, w = cfg.frame_size
        if h != w or cfg.frame_channels not in CHANNELS_BY_COUNT:
            raise InputError(f"the bundle's network takes {cfg.frame_channels} channel(s) of {h}x{w}: the eye "
                             "readers make square frames with 1 (frame), 2 (event) or 3 (frame+event) channels")
        opts = dict(size=int(h), channels=CHANNELS_BY_COUNT[cfg.frame_channels])
    return opts


def eye_clips(data: str, cfg: TTFSConfig, limit: int, trained_with: dict | None = None) -> EyeClips:
    """The first ``limit`` sequences of the test split (all sequences when there is none) of ``data``
    (``synthetic-eye`` or ``see:PATH``), encoded as the network's input."""
    from ptsnn.data.eye import load_eye_dataset
    from ptsnn.train.ttfs_train import encode_dataset

    try:
        ds = load_eye_dataset(data, **data_options_for(cfg, trained_with, data))
    except TypeError as exc:  # an option the source does not take
        raise InputError(f"--data {data}: {exc}") from None
    part = ds.subset("test") if len(ds.subset("test")) else ds
    part = part.select(np.arange(min(int(limit), len(part))))
    if not len(part):
        raise InputError(f"--data {data}: no sequences")
    x = encode_dataset(part, cfg).double()
    if tuple(x.shape[1:]) != tuple(cfg.input_shape):
        raise InputError(f"--data {data}: clips encode to {tuple(x.shape[1:])}, the bundle's network takes "
                         f"{tuple(cfg.input_shape)}")
    labels = part.labels if len(part.classes) == cfg.num_classes else None  # another class list: no accuracy
    return EyeClips(x, labels, list(part.names), [str(v) for v in part.lighting])


def read_sequence(path: Path, cfg: TTFSConfig) -> np.ndarray:
    """``[T, C, H, W]`` float32 in [0, 1] from a frame folder (grey) or an ``.aedat4`` file (ON/OFF events)."""
    from ptsnn.data.eye import recording_sequence

    h, w = cfg.frame_size
    if h != w:
        raise InputError(f"{path}: the eye readers make square frames; the bundle expects {h}x{w}")
    if path.is_dir():
        from ptsnn.data.eye.see import _frame_files, _read_grey  # the SEE reader's own checks (gaps, corrupt images)

        seq = np.stack([_read_grey(f, h) for f in _frame_files(path)])[:, None]
        layout = "frame"
    elif path.suffix.lower() == ".aedat4":
        seq = recording_sequence(path, frames=RECORDING_FRAMES, size=h)
        layout = "event"
    else:
        raise InputError(f"{path}: expected a folder of numbered frames or an .aedat4 recording")
    if seq.shape[1] != cfg.frame_channels:
        raise InputError(f"{path}: gives {seq.shape[1]} '{layout}' channel(s), the bundle's network takes "
                         f"{cfg.frame_channels} per frame (train it with --set data.channels={layout})")
    return seq


RECORDING_FRAMES = 16  # frames an AEDAT4 recording is binned into (the training CLI's default clip length)


def sequence_clips(paths: list[Path], cfg: TTFSConfig) -> EyeClips:
    """Sequence folders / AEDAT4 recordings, each encoded as one clip (no labels)."""
    from ptsnn.train.ttfs import encode_clip

    if not paths:
        raise InputError("no sequences given")
    x = torch.cat([encode_clip(torch.from_numpy(read_sequence(Path(p), cfg))[None], cfg) for p in paths])
    return EyeClips(x.double(), None, [Path(p).name for p in paths])


def grid_input(x: torch.Tensor, cfg: TTFSConfig) -> np.ndarray:
    """``q0 = clamp(floor(x K / input_max + 1/2), 0, K)`` ``[N, C, H, W]`` int64 (the host's quantization)."""
    k = cfg.steps_per_window
    q0 = torch.floor(x.double().clamp(0, cfg.input_max) * (k / cfg.input_max) + 0.5)
    return q0.clamp(0, k).numpy().astype(np.int64)


def sample_payloads(graph, q0: np.ndarray) -> list[dict[str, np.ndarray]]:
    """One ``{input: [steps, size], timing: [steps, channels]}`` per sample (what a backend runs)."""
    batch = ttfs_chip.payloads(graph, q0)
    return [{name: a[i] for name, a in batch.items()} for i in range(len(q0))]


def bundle_config(bundle) -> TTFSConfig:
    """The TTFS config a bundle's chip graph was built from (``graph.meta["config"]``)."""
    meta = bundle.graph.meta or {}
    if meta.get("model_kind") != ttfs_chip.MODEL_KIND or "config" not in meta:
        raise InputError(f"{getattr(bundle, 'path', 'bundle')}: not a TTFS bundle (no ttfs config in chip_graph meta)")
    return TTFSConfig.from_dict(meta["config"])


def bundle_clips(bundle, data: str, limit: int) -> EyeClips:
    """``--data`` for a TTFS bundle: ``synthetic-eye``, ``see:PATH``, a sequence folder or an ``.aedat4``
    recording (a folder of sequence folders: each of them, sorted)."""
    cfg = bundle_config(bundle)
    if data == "synthetic-eye" or data.startswith("see:"):
        return eye_clips(data, cfg, limit, (bundle.graph.meta or {}).get("data_options"))
    path = Path(data)
    if not path.exists():
        raise InputError(f"--data {data}: expected synthetic-eye, see:PATH, a sequence folder or an .aedat4 recording")
    if path.is_dir() and not any(f.is_file() for f in path.iterdir()):
        subs = sorted(p for p in path.iterdir() if p.is_dir())[: int(limit)]
        if not subs:
            raise InputError(f"--data {data}: an empty folder")
        return sequence_clips(subs, cfg)
    return sequence_clips([path], cfg)
