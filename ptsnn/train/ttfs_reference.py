"""Pure-numpy integer reference of the TTFS network on the deployment grid (no torch, no floats).

Input: ``IntegerTTFS.export()`` (plain numpy integers) and the grid input ``q0`` ``[B, C, H, W]`` (0..K).
It runs one global clock ``t = 0 .. final_step`` and, per step and layer, exactly the Loihi operations of
docs/ttfs.md with the integer rules of ``ptsnn.numerics.loihi`` (netx ``iDecay = 0``, ``vDecay = 0``: Lava
``du = -1``, ``dv = 0``, no bias; the decays are still applied, so the constants are checked, not assumed).
It does not use ptsnn/chip's kernels: it is the independent statement they are tested against. What a spike at step ``s`` does reaches its targets' current at ``s + 1``.
Every neuron's spikes are counted over the whole run, so "fires once" is checked, not assumed.

This is the function a chip kernel (ptsnn/chip) and a Lava run are compared against, spike time for
spike time.
"""

from __future__ import annotations

import numpy as np

from ptsnn.numerics import loihi


def patch_index(source_shape, kernel, stride: int, padding: int) -> np.ndarray:
    """``idx[l, p]``: flat source index of input ``p`` of output position ``l`` (``C*H*W`` for an absent,
    padded input). ``p`` runs over ``(c, kh, kw)`` as a weight ``[O, C, kh, kw]`` is flattened."""
    c, h, w = source_shape
    kh, kw = kernel
    ho = (h + 2 * padding - kh) // stride + 1
    wo = (w + 2 * padding - kw) // stride + 1
    oy, ox = np.meshgrid(np.arange(ho) * stride - padding, np.arange(wo) * stride - padding, indexing="ij")
    ky, kx = np.meshgrid(np.arange(kh), np.arange(kw), indexing="ij")
    y = oy.reshape(-1, 1, 1) + ky.reshape(1, 1, -1)  # [L, 1, kh*kw]
    x = ox.reshape(-1, 1, 1) + kx.reshape(1, 1, -1)
    ch = np.arange(c).reshape(1, -1, 1)
    inside = (y >= 0) & (y < h) & (x >= 0) & (x < w)
    flat = ch * h * w + np.clip(y, 0, h - 1) * w + np.clip(x, 0, w - 1)
    return np.where(inside, flat, c * h * w).reshape(ho * wo, -1)


class Synapse:
    """Integer synaptic input ``a[b, o] = sum_j weight[o, j] * spikes[b, j]`` of a conv or pool stage."""

    def __init__(self, layer: dict):
        self.out = int(np.prod(layer["shape"]))
        if layer["kind"] == "maxpool":
            c, h, w = layer["source_shape"]
            p = layer["pool_size"]
            per_channel = patch_index((1, h, w), (p, p), p, 0)  # [L, p*p]
            self.idx = (np.arange(c)[:, None, None] * h * w + per_channel[None]).reshape(-1, p * p)
            self.weight = None
        else:
            wm = np.asarray(layer["weight_mant"], np.int64) << int(layer["weight_exp"])
            self.idx = patch_index(layer["source_shape"], wm.shape[2:], layer["stride"], layer["padding"])
            self.weight = wm.reshape(wm.shape[0], -1)  # [O, P]

    def __call__(self, spikes: np.ndarray) -> np.ndarray:
        ext = np.concatenate([spikes.astype(np.int64), np.zeros((spikes.shape[0], 1), np.int64)], 1)
        patches = ext[:, self.idx]  # [B, L, P]
        if self.weight is None:  # max pooling: weight 1 from each input of the window
            return patches.sum(-1)
        a = patches @ self.weight.T  # [B, L, O] exact int64
        return a.transpose(0, 2, 1).reshape(spikes.shape[0], -1)


def _cuba_step(u, v, a_in, params: loihi.CubaParams, vth: np.ndarray):
    """One step of Lava's bit-accurate CUBA LIF (``PyLifModelBitAcc``); returns ``(u, v, spikes)``."""
    u = loihi.wrap_current(loihi.decay(u, params.du + loihi.CURRENT_DECAY_OFFSET) + (a_in << loihi.ACTIVATION_SHIFT))
    v = loihi.decay(v, params.dv + loihi.VOLTAGE_DECAY_OFFSET) + u + loihi.effective_bias(params.bias_mant,
                                                                                          params.bias_exp)
    v = loihi.saturate_voltage(v)
    spikes = v > (vth << loihi.THRESHOLD_SHIFT)
    return u, np.where(spikes, 0, v), spikes


def timing_current(layer: dict, t: int, n: int) -> np.ndarray:
    """Current the layer's timing sources deliver at step ``t`` (their spikes at ``t - 1``), per neuron."""
    total = np.zeros(n, np.int64)
    for ev in layer["timing"]:
        if ev["step"] == t - 1:
            value = np.asarray(ev["mant"], np.int64) << int(ev["exp"])
            total += np.broadcast_to(value.reshape(-1) if value.ndim else value, (n,))
    return total


def run_ttfs_reference(exported: dict, q0: np.ndarray, record_voltage: bool = False) -> dict:
    """Returns ``{layer: first spike step [B, *shape] (-1: never)}``, ``{layer + '.count': spikes per neuron}``,
    ``input`` (input spike steps) and ``output`` (readout potential ``v >> 6`` at its read step ``[B, classes]``).
    ``record_voltage``: also ``{layer + '.v': v after each step's reset, [B, T, neurons]}`` (for debugging a
    kernel step by step)."""
    k = int(exported["steps_per_window"])
    q0 = np.asarray(q0, np.int64)
    if q0.min(initial=0) < 0 or q0.max(initial=0) > k:
        raise ValueError(f"grid input must lie in 0..{k}")
    batch = q0.shape[0]
    steps = int(exported["final_step"]) + 1
    input_steps = int(exported["input_window_start"]) + k - q0.reshape(batch, -1)
    trains = {"input": np.arange(steps)[None, :, None] == input_steps[:, None, :]}  # [B, T, N] spikes
    out = {"input": input_steps.reshape(q0.shape)}
    for layer in exported["layers"]:
        syn = Synapse(layer)
        n = syn.out
        src = trains[layer["source"]]
        readout = layer["kind"] == "readout"
        params = loihi.CubaParams.from_netx(i_decay=0, v_decay=0, vth_mant=int(layer["vth"]))
        vth = np.int64(params.vth)
        inhibit = int(layer["inhibit_mant"]) << int(layer["inhibit_exp"])
        u = np.zeros((batch, n), np.int64)
        v = np.zeros((batch, n), np.int64)
        spikes = np.zeros((batch, steps, n), bool)
        volts = np.zeros((batch, steps, n), np.int64) if record_voltage else None
        potential = None
        for t in range(steps):
            a_in = timing_current(layer, t, n)[None, :].repeat(batch, 0)
            if t > 0:
                a_in = a_in + syn(src[:, t - 1]) - inhibit * spikes[:, t - 1]
            u, v, spikes[:, t] = _cuba_step(u, v, a_in, params, vth)
            if volts is not None:
                volts[:, t] = v
            if readout and t == layer["read_step"]:
                potential = v >> loihi.ACTIVATION_SHIFT
        shape = (batch, *layer["shape"])
        if volts is not None:
            out[layer["name"] + ".v"] = volts
        if readout:
            if spikes.any():
                raise ValueError(f"readout {layer['name']} fired: its potential left the 17-bit threshold")
            out["output"] = potential
            continue
        trains[layer["name"]] = spikes
        fired = spikes.any(1)
        first = np.where(fired, spikes.argmax(1), -1)
        out[layer["name"]] = first.reshape(shape)
        out[layer["name"] + ".count"] = spikes.sum(1).reshape(shape)
    return out
