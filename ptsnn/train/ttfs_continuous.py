"""The TTFS SNN in continuous time: exact spike times of non-leaky neurons with persistent currents.

Neuron i of population n (window ``[t_min(n), t_max(n)]``, its inputs spike in ``[t_min(n-1), t_max(n-1)]``):

    V_i(t) = alpha_i (t - t_min(n-1)) + sum_j J_ij (t - t_j)^+  -  M_i [t < t_min(n)]

It fires once, at the first ``t`` with ``V_i(t) >= theta_i``, and at ``t_max(n)`` if it has not fired by
then. The parameters are the reference's (Stanojevic et al. 2023; docs/ttfs.md):
``J_ij = alpha_i W_ij / (1 - sum_j W_ij)``, ``D_i = B_n sum_j J_ij - (alpha_i + sum_j J_ij) b_i`` and
``theta_i = alpha_i (t_max(n) - t_min(n-1)) + D_i``, which make ``t_max(n) - t_i = ReLU(W x + b)_i``.
``alpha`` is chosen per neuron: ``unit_slope`` (default) takes ``alpha_i = 1 - sum_j W_ij`` so that
``J = W`` and the slope after all inputs is 1 (valid for any weights); ``anchor`` takes ``alpha = 1`` as the
IBM implementation does, which needs ``sum_j W_ij < 1`` (a positive slope). Both give the same spike times.
``M_i`` (the hold) keeps the neuron below threshold while its inputs still arrive, so no neuron can fire
before ``t_min(n)``: an activation beyond the window is then clipped to ``B_n`` instead of corrupting the
spike time (the anchor relies on ``B_n`` being large enough instead). With windows that cover the
activations, nothing is clipped and the SNN equals the ReLU twin.

The solver is event based: it sorts each neuron's input spike times, follows the piecewise-linear
``V_i`` from breakpoint to breakpoint and solves for the first threshold crossing. It never evaluates the
ReLU. The output layer does not spike: its potential is read at its ``t_min`` (the anchor's readout).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from ptsnn.errors import InputError
from ptsnn.train.ttfs import Stage, TTFSNet

ALPHA_MODES = ("unit_slope", "anchor")
_CHUNK_ELEMENTS = 1 << 22  # bound on the [batch, patch, position, out] working set (~32 MB per float64 tensor)


@dataclass
class Window:
    t_min: float
    t_max: float


@dataclass
class ContinuousLayer:
    """Parameters of one spiking population in the reference's terms (all float64, per neuron ``[O, H, W]``)."""

    stage: Stage
    j_scale: torch.Tensor  # J_ij = j_scale_i * W_ij
    alpha: torch.Tensor
    theta: torch.Tensor
    hold: torch.Tensor  # M_i
    source: Window
    window: Window


def windows_in_time(net: TTFSNet, widths: dict[str, float]) -> dict[str, Window]:
    """Adjacent windows: the input owns ``[0, B_0]``; each spiking population starts where its source's
    window ends; max pooling shares its source's window (no latency in continuous time); the readout's
    ``t_min`` is the end of its source's window."""
    out = {"input": Window(0.0, float(widths["input"]))}
    for st in net.stages():
        src = out[st.source]
        if st.kind == "maxpool":
            out[st.name] = src
        elif st.kind == "spiking":
            out[st.name] = Window(src.t_max, src.t_max + float(widths[st.name]))
        else:
            out[st.name] = Window(src.t_max, src.t_max)
    return out


def map_layer(stage: Stage, source: Window, window: Window, alpha_mode: str = "unit_slope") -> ContinuousLayer:
    """The reference's ``set_params`` for one spiking population: J, D and theta from W, b and the windows."""
    if alpha_mode not in ALPHA_MODES:
        raise InputError(f"alpha mode must be one of {', '.join(ALPHA_MODES)}, not {alpha_mode!r}")
    w_sum = stage.present_weight_sum()
    b = stage.bias.view(-1, 1, 1).expand_as(w_sum)
    b_n = window.t_max - window.t_min
    if alpha_mode == "anchor":
        if bool((w_sum >= 1).any()):
            raise InputError(f"{stage.name}: alpha = 1 needs sum_j W_ij < 1 for every neuron (largest "
                             f"{float(w_sum.max()):.3g}); use alpha mode unit_slope")
        alpha = torch.ones_like(w_sum)
    else:
        alpha = 1.0 - w_sum
    j_scale = torch.where(w_sum == 1, torch.ones_like(w_sum), alpha / (1.0 - w_sum))
    j_sum = j_scale * w_sum
    d = b_n * j_sum - (alpha + j_sum) * b
    theta = alpha * (window.t_max - source.t_min) + d
    # While inputs arrive, V <= (alpha^+ + sum_j J_ij^+) (t - t_min(n-1)) < (alpha^+ + J^+) B_{n-1}
    j_pos = F.conv2d(torch.ones((1, *stage.source_shape), dtype=torch.float64), stage.weight.clamp(min=0),
                     stride=stage.stride, padding=stage.padding)[0] * j_scale
    bound = (alpha.clamp(min=0) + j_pos) * (source.t_max - source.t_min)
    hold = (bound - theta).clamp(min=0) + 1.0
    return ContinuousLayer(stage, j_scale, alpha, theta, hold, source, window)


def _first_spike_times(t_in: torch.Tensor, layer: ContinuousLayer) -> torch.Tensor:
    """Exact first-crossing times ``[B, O, H, W]`` for input spike times ``t_in`` ``[B, C, H, W]``."""
    st = layer.stage
    o, ho, wo = st.shape
    kh, kw = st.weight.shape[2:]
    pad = (st.padding,) * 4
    late = layer.window.t_min  # absent (padded) inputs: placed last, with no synapse
    patches = F.unfold(F.pad(t_in, pad, value=late), (kh, kw), stride=st.stride)  # [B, P, L]
    present = F.unfold(F.pad(torch.ones((1, *st.source_shape), dtype=t_in.dtype), pad), (kh, kw),
                       stride=st.stride)  # [1, P, L]
    w_flat = st.weight.reshape(o, -1).T  # [P, O]
    scale = layer.j_scale.reshape(o, -1).T  # [L, O]
    alpha = layer.alpha.reshape(o, -1).T
    theta = layer.theta.reshape(o, -1).T
    hold = layer.hold.reshape(o, -1).T
    t_prev, t_min, t_max = layer.source.t_min, layer.window.t_min, layer.window.t_max
    n_p, n_l = patches.shape[1:]
    chunk = max(1, _CHUNK_ELEMENTS // max(1, n_p * n_l * o))
    out = []
    for start in range(0, t_in.shape[0], chunk):
        tj, perm = torch.sort(patches[start:start + chunk], dim=1)  # [b, P, L]
        pres = torch.gather(present.expand(tj.shape[0], -1, -1), 1, perm)
        j = w_flat[perm] * pres[..., None] * scale  # [b, P, L, O]: J of the k-th earliest input
        cum_j = torch.cumsum(j, 1)
        cum_jt = torch.cumsum(j * tj[..., None], 1)
        # V at each input's arrival (its own term is still 0) and at the hold release t_min(n)
        v_at = (alpha + cum_j) * tj[..., None] - alpha * t_prev - cum_jt
        v_min = (alpha + cum_j[:, -1]) * t_min - alpha * t_prev - cum_jt[:, -1]  # [b, L, O]
        v_brk = torch.cat([v_at, v_min[:, None]], 1)  # V at breakpoints 1..P+1
        t_brk = torch.cat([tj[..., None].expand_as(v_at), torch.full_like(v_min[:, None], t_min)], 1)
        # early crossing (before t_min(n), against theta + M): first breakpoint where V reached it
        early = v_brk >= (theta + hold)
        k = torch.argmax(early.to(torch.int8), 1, keepdim=True)  # first True (0 if none)
        any_early = early.any(1)
        # the segment that ends at breakpoint k starts at breakpoint k-1 (or at t_min(n-1), V = 0)
        v_start = torch.where(k > 0, torch.gather(v_brk, 1, (k - 1).clamp(min=0)), torch.zeros_like(k, dtype=v_brk.dtype))
        t_start = torch.where(k > 0, torch.gather(t_brk, 1, (k - 1).clamp(min=0)),
                              torch.full_like(v_start, t_prev))
        slope = alpha + torch.where(k > 0, torch.gather(cum_j, 1, (k - 1).clamp(min=0, max=n_p - 1)),
                                    torch.zeros_like(v_start))
        t_early = (t_start + (theta + hold - v_start) / slope.clamp(min=1e-300))[:, 0]
        # after t_min(n): every input has arrived, V = v_min + slope_all (t - t_min), threshold theta
        slope_all = alpha + cum_j[:, -1]
        rising = slope_all > 0
        t_late = torch.where(v_min >= theta, torch.full_like(v_min, t_min),
                             torch.where(rising, t_min + (theta - v_min) / torch.where(rising, slope_all, 1.0),
                                         torch.full_like(v_min, t_max)))
        t_late = t_late.clamp(max=t_max)  # the forced spike at t_max(n)
        t_out = torch.where(any_early, t_early, t_late)  # [b, L, O]
        out.append(t_out.permute(0, 2, 1).reshape(-1, o, ho, wo))
    return torch.cat(out, 0)


class ContinuousTTFS:
    """The continuous-time TTFS SNN of a ReLU twin with calibrated window widths ``B_n``."""

    def __init__(self, net: TTFSNet, widths: dict[str, float], alpha_mode: str = "unit_slope"):
        self.net = net
        self.stages = net.stages()
        self.windows = windows_in_time(net, widths)
        self.layers = {st.name: map_layer(st, self.windows[st.source], self.windows[st.name], alpha_mode)
                       for st in self.stages if st.kind == "spiking"}

    @torch.no_grad()
    def run(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Spike times of every population (``input`` included) and the readout potential ``output``."""
        x = x.double().clamp(0, self.net.cfg.input_max)
        times = {"input": self.windows["input"].t_max - x}
        for st in self.stages:
            t_in = times[st.source]
            if st.kind == "spiking":
                times[st.name] = _first_spike_times(t_in, self.layers[st.name])
            elif st.kind == "maxpool":  # earliest spike wins
                times[st.name] = -F.max_pool2d(-t_in, st.pool_size)
            else:  # potential at t_min(L): alpha (t_min(L) - t_min(L-1)) + sum_j W_ij (t_min(L) - t_j), alpha = b / B
                t_read = self.windows[st.name].t_min
                src = self.windows[st.source]
                ramp = F.conv2d(t_read - t_in, st.weight, stride=st.stride, padding=st.padding)
                alpha = st.bias / (src.t_max - src.t_min)
                times[st.name] = (ramp + (alpha * (t_read - src.t_min)).view(1, -1, 1, 1)).flatten(1)
        return times

    def activations(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``t_max(n) - t_i`` per population: what must equal the ReLU twin's activations."""
        times = self.run(x)
        acts = {}
        for name, t in times.items():
            acts[name] = t if name == "output" else self.windows[name].t_max - t
        return acts
