"""The ReLU twin of a TTFS network, the clip encoding, and the layer list both spiking forms share.

``TTFSNet`` is an ordinary PyTorch ReLU network (conv -> ReLU -> optional pool, ..., dense -> ReLU, ...,
output layer): fast to train with autograd, and what an architecture search trains. Its parameters are the
only parameters: the continuous-time SNN (``ttfs_continuous.py``) and the integer grid form
(``ttfs_integer.py``) are computed from them, following the exact mapping of Stanojevic et al. 2023
(docs/ttfs.md).

:meth:`TTFSNet.stages` lowers the network to what a spiking realisation sees: a chain of *populations*.
Every conv and hidden dense layer is a spiking population fed by one synapse stage written as a
convolution (a dense layer is a convolution whose kernel covers its whole input map); max pooling is a
population of its own ("earliest spike wins"); average pooling is linear and is folded into the next
layer's weights (kernel and stride grow by the pool size, each weight spread over the pool window / p^2);
the output layer is a readout (potential, no spike).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ptsnn.errors import InputError
from ptsnn.train.ttfs_config import TTFSConfig


# ------------------------------------------------------------------------------------------ clip input
def encode_clip(frames: torch.Tensor, cfg: TTFSConfig) -> torch.Tensor:
    """``frames`` ``[B, T, C0, H, W]`` (values in [0, input_max]) -> the static network input ``[B, C, H, W]``.

    ``frames_per_clip`` frames are sampled evenly over the clip (first and last included), then stacked
    (``stack``) or turned into the first frame plus ON/OFF difference channels (``onoff``)."""
    if frames.dim() != 5:
        raise InputError(f"clip must be [batch, frames, channels, H, W], got shape {list(frames.shape)}")
    b, t, c, h, w = frames.shape
    if (c, h, w) != (cfg.frame_channels, *cfg.frame_size):
        raise InputError(f"clip frames are {c}x{h}x{w}, the config expects "
                         f"{cfg.frame_channels}x{cfg.frame_size[0]}x{cfg.frame_size[1]}")
    if t < 1:
        raise InputError("clip has no frames")
    idx = torch.linspace(0, t - 1, cfg.frames_per_clip).round().long()
    picked = frames[:, idx].clamp(0, cfg.input_max)
    if cfg.temporal_encoding == "stack":
        return picked.reshape(b, -1, h, w)
    diff = picked[:, 1:] - picked[:, :-1]
    parts = [picked[:, :1], diff.clamp(min=0), (-diff).clamp(min=0)]
    return torch.cat(parts, 1).reshape(b, -1, h, w)


# --------------------------------------------------------------------------------------- the ReLU twin
class TTFSNet(nn.Module):
    """conv blocks (Conv2d -> ReLU -> MaxPool2d/AvgPool2d) -> flatten -> dense blocks (Linear -> ReLU) -> output."""

    def __init__(self, cfg: TTFSConfig):
        super().__init__()
        self.cfg = cfg.validate()
        self.convs = nn.ModuleList()
        c = cfg.input_channels
        for spec in cfg.conv:
            self.convs.append(nn.Conv2d(c, spec.out_channels, spec.kernel, spec.stride, spec.padding))
            c = spec.out_channels
        shape = cfg.feature_shapes()[-1] if cfg.conv else cfg.input_shape
        width = shape[0] * shape[1] * shape[2]
        self.dense = nn.ModuleList()
        for out in cfg.dense:
            self.dense.append(nn.Linear(width, out))
            width = out
        self.output = nn.Linear(width, cfg.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activations(x)["output"]

    def activations(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every population's activation (the names of :meth:`stages`) and ``output`` (the logits)."""
        acts = {}
        x = x.clamp(0, self.cfg.input_max)  # the TTFS input range: a spike time within the input window
        for i, (spec, conv) in enumerate(zip(self.cfg.conv, self.convs)):
            x = torch.relu(conv(x))
            acts[f"conv{i}"] = x
            if spec.pool == "max":
                x = F.max_pool2d(x, spec.pool_size)
                acts[f"conv{i}.pool"] = x
            elif spec.pool == "avg":
                x = F.avg_pool2d(x, spec.pool_size)
        x = x.flatten(1)
        for i, layer in enumerate(self.dense):
            x = torch.relu(layer(x))
            acts[f"dense{i}"] = x
        acts["output"] = self.output(x)
        return acts

    @torch.no_grad()
    def stages(self) -> list["Stage"]:
        """The network as populations in data-flow order (float64 weights, average pooling folded)."""
        out: list[Stage] = []
        shape = self.cfg.input_shape
        source = "input"
        pending_avg = 1  # pool size of an average pooling not yet folded into weights

        def synapse(name, weight, bias, stride, padding, kind):
            nonlocal shape, source, pending_avg
            weight = weight.detach().double().clone()
            if pending_avg > 1:
                p = pending_avg
                weight = weight.repeat_interleave(p, 2).repeat_interleave(p, 3) / (p * p)
                stride, padding = stride * p, padding * p
            c, h, w = shape
            kh, kw = weight.shape[2:]
            new = (weight.shape[0], (h + 2 * padding - kh) // stride + 1, (w + 2 * padding - kw) // stride + 1)
            out.append(Stage(name, kind, source, shape, new, weight, bias.detach().double().clone(), stride, padding))
            shape, source, pending_avg = new, name, 1

        for i, (spec, conv) in enumerate(zip(self.cfg.conv, self.convs)):
            synapse(f"conv{i}", conv.weight, conv.bias, spec.stride, spec.padding, "spiking")
            if spec.pool == "max":
                c, h, w = shape
                new = (c, h // spec.pool_size, w // spec.pool_size)
                out.append(Stage(f"conv{i}.pool", "maxpool", source, shape, new, pool_size=spec.pool_size))
                shape, source = new, f"conv{i}.pool"
            elif spec.pool == "avg":
                pending_avg = spec.pool_size
        layers = [(f"dense{i}", layer, "spiking") for i, layer in enumerate(self.dense)]
        for name, layer, kind in layers + [("output", self.output, "readout")]:
            c, h, w = shape
            hp, wp = h // pending_avg, w // pending_avg  # the map the dense layer really sees
            weight = layer.weight.reshape(layer.out_features, c, hp, wp)
            synapse(name, weight, layer.bias, 1, 0, kind)
        return out


@dataclass
class Stage:
    """One population of the spiking realisation and the synapses that feed it.

    ``kind``: ``spiking`` (fire-once neurons fed by a convolution ``weight`` ``[O, C, kh, kw]`` with ``stride``
    and zero ``padding``: padded positions are absent synapses), ``maxpool`` (earliest spike of each
    ``pool_size`` x ``pool_size`` window) or ``readout`` (the output layer: its potential is the logits)."""

    name: str
    kind: str
    source: str
    source_shape: tuple[int, int, int]
    shape: tuple[int, int, int]
    weight: torch.Tensor | None = None
    bias: torch.Tensor | None = None
    stride: int = 1
    padding: int = 0
    pool_size: int = 0

    def present_weight_sum(self, weight: torch.Tensor | None = None) -> torch.Tensor:
        """``sum_j W_ij`` over the synapses neuron i really has (padding excluded): ``[O, H, W]``."""
        w = self.weight if weight is None else weight
        ones = torch.ones((1, *self.source_shape), dtype=w.dtype)
        return F.conv2d(ones, w, stride=self.stride, padding=self.padding)[0]


# ---------------------------------------------------------------------------------------- calibration
@torch.no_grad()
def calibrate_windows(net: TTFSNet, x: torch.Tensor) -> dict[str, float]:
    """The window ``B_n`` of every population: the largest activation the twin reaches on ``x`` (the
    anchor's data-based normalisation), times ``1 + window_margin``; max pooling inherits its source's
    window, the input owns ``input_max``. Fixed ``cfg.windows`` are checked against the data instead: a
    window that cannot hold the activations is an error."""
    cfg = net.cfg
    acts = net.activations(x.to(next(net.parameters()).dtype))
    windows = {"input": float(cfg.input_max)}
    spiking = [s for s in net.stages() if s.kind == "spiking"]
    for i, stage in enumerate(spiking):
        largest = float(acts[stage.name].max()) if acts[stage.name].numel() else 0.0
        if cfg.windows is not None:
            b = float(cfg.windows[i])
            if largest > b:
                raise InputError(f"ttfs window of {stage.name}: B = {b:g} cannot hold the activation {largest:g} "
                                 f"seen in calibration (raise windows[{i}] or calibrate)")
        else:
            b = largest * (1.0 + cfg.window_margin) if largest > 0 else 1.0  # a silent layer: any window works
        windows[stage.name] = b
    for stage in net.stages():
        if stage.kind == "maxpool":
            windows[stage.name] = windows[stage.source]
    return windows
