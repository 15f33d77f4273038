"""Training a TTFS network on eye-emotion data: the ReLU twin is trained (fast, ordinary backprop), its windows
are calibrated on the training clips, the grid form is derived, and both are evaluated with the metrics the
SEE authors report (WAR, UAR, per lighting condition). The checkpoint (``ttfs_checkpoint``) stores twin +
windows; ``ptsnn-convert`` turns it into a bundle.

The data come as :class:`ptsnn.data.eye.EyeDataset` (``load_eye_dataset("synthetic-eye" | "see:PATH")``):
sequences ``[N, T, C, H, W]`` in [0, 1] that :func:`~ptsnn.train.ttfs.encode_clip` turns into one static input.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from ptsnn.errors import InputError
from ptsnn.train.metrics import eye_emotion_metrics
from ptsnn.train.ttfs import TTFSNet, calibrate_windows, encode_clip
from ptsnn.train.ttfs_checkpoint import save_ttfs_checkpoint
from ptsnn.train.ttfs_config import TTFSConfig
from ptsnn.train.ttfs_integer import quantize_ttfs


@dataclasses.dataclass
class TTFSTrainResult:
    checkpoint: Path
    metrics: dict


def config_for(ds, **fields) -> TTFSConfig:
    """A TTFS config whose input matches the data set's frames (channels, size, classes)."""
    _, _, c, h, w = ds.sequences.shape
    return TTFSConfig(**{**dict(frame_channels=int(c), frame_size=(int(h), int(w)), num_classes=len(ds.classes)),
                         **fields}).validate()


def encode_dataset(ds, cfg: TTFSConfig) -> torch.Tensor:
    """Every sequence of ``ds`` as the network's static input ``[N, C, H, W]`` (float32)."""
    return _encode(ds, cfg)


def _encode(ds, cfg: TTFSConfig) -> torch.Tensor:
    return encode_clip(torch.from_numpy(np.ascontiguousarray(ds.sequences, np.float32)), cfg)


def _evaluate(pred: np.ndarray, part) -> dict:
    from ptsnn.data.eye import LIGHTINGS

    return eye_emotion_metrics(part.labels, pred, list(part.classes), part.lighting, LIGHTINGS)


def train_ttfs(ds, cfg: TTFSConfig, out: str | Path, epochs: int = 30, lr: float = 3e-3, batch: int = 32,
               seed: int = 0, progress=None, data_options: dict | None = None) -> TTFSTrainResult:
    """Train on ``ds``'s train split (validation split for the best epoch, by UAR), calibrate windows, write
    ``OUT/ttfs.pt`` and return WAR/UAR (+ per lighting) of the ReLU twin and of the grid (= chip) network on
    the test split (the validation split when there is no test split)."""
    step = progress or (lambda msg: None)
    train, valid, test = (ds.subset(s) for s in ("train", "valid", "test"))
    if not len(train):
        raise InputError(f"{ds.name}: no sequences in the train split")
    valid = valid if len(valid) else train
    test = test if len(test) else valid
    if epochs < 1:
        raise InputError(f"--epochs must be >= 1, not {epochs}")
    torch.manual_seed(seed)
    net = TTFSNet(cfg)
    x_tr, y_tr = _encode(train, cfg), torch.from_numpy(train.labels)
    x_va, x_te = _encode(valid, cfg), _encode(test, cfg)
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=1e-4)
    gen = torch.Generator().manual_seed(seed)
    best, best_state = -1.0, None
    for epoch in range(epochs):
        net.train()
        for idx in torch.randperm(len(x_tr), generator=gen).split(batch):
            loss = F.cross_entropy(net(x_tr[idx]), y_tr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            uar = _evaluate(net(x_va).argmax(1).numpy(), valid)["uar"]
        step(f"epoch {epoch + 1}/{epochs}: loss {float(loss.detach()):.3f}, valid UAR {100 * uar:.1f} %")
        if uar > best:
            best, best_state = uar, {k: v.clone() for k, v in net.state_dict().items()}
    net.load_state_dict(best_state)
    net.eval()
    step("calibrating windows on the train clips and quantizing onto the time grid")
    windows = calibrate_windows(net, x_tr)
    grid = quantize_ttfs(net, windows)
    with torch.no_grad():
        twin_pred = net(x_te).argmax(1).numpy()
    grid_pred = grid.twin(x_te.double())["output"].argmax(1).numpy()  # == the chip, spike for spike (tests)
    metrics = dict(data=ds.name, data_options=dict(data_options or {}), split="test" if len(ds.subset("test")) else "valid",
                   steps_per_window=cfg.steps_per_window, valid_uar_best=best,
                   relu_twin=_evaluate(twin_pred, test), grid=_evaluate(grid_pred, test))
    label_map = {name: i for i, name in enumerate(ds.classes)}
    path = save_ttfs_checkpoint(Path(out) / "ttfs.pt", net, windows, label_map, metrics)
    return TTFSTrainResult(path, metrics)
