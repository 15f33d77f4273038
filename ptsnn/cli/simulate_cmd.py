"""`ptsnn simulate`: run a netx HDF5 network on an input array, in the fast bit-exact simulator or in Lava.

Arrays use lava-dl's layout ``[batch, *shape, time]`` (the batch axis may be left out). ``--layout lava``
(default) means the shape in Lava's (x, y, z) = (W, H, C) order, what ``hdf5.Network``'s ports and a
``RingBuffer`` sink use; ``--layout slayer`` means slayer's (C, H, W) order (tensors ``NCHWT``). Flat
``[batch, neurons, time]`` inputs are accepted too (Lava order, C-order flattening).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import typer

from ptsnn.cli._app import console
from ptsnn import safeio
from ptsnn.errors import InputError
from ptsnn.fileio import atomic_output

BACKENDS = ("fast", "lava")
LAYOUTS = ("lava", "slayer")


def _reverse_space(x: np.ndarray, batched: bool) -> np.ndarray:
    """lava (x, y, z) <-> slayer (C, H, W): reverse the axes between batch and time."""
    first = 1 if batched else 0
    k = x.ndim - 1 - first
    if k <= 1:
        return x
    axes = (*range(first), *range(x.ndim - 2, first - 1, -1), x.ndim - 1)
    return np.ascontiguousarray(x.transpose(axes))


def _slayer_to_lava(x: np.ndarray, lava_shape: tuple[int, ...]) -> np.ndarray:
    """slayer-ordered input (full ``[B, C, H, W, T]`` / ``[C, H, W, T]`` or flat in C,H,W order) -> Lava order."""
    chw = tuple(lava_shape[::-1])
    n = int(np.prod(chw))
    if x.ndim == len(chw) + 2 and x.shape[1:-1] == chw:
        return _reverse_space(x, True)
    if x.ndim == len(chw) + 1 and x.shape[:-1] == chw:
        return _reverse_space(x, False)
    if x.ndim == 3 and x.shape[1] == n:
        return _reverse_space(x.reshape(x.shape[0], *chw, x.shape[-1]), True)
    if x.ndim == 2 and x.shape[0] == n:
        return _reverse_space(x.reshape(*chw, x.shape[-1]), False)
    want = ", ".join(map(str, chw))
    raise InputError(f"input shape {x.shape} does not fit the network input in slayer order ({want}): expected "
                     f"(batch, {want}, time) or ({want}, time)")


def _load_array(path: Path) -> np.ndarray:
    x = safeio.load_npy(path, "input")
    if x.ndim < 2:
        raise InputError(f"{path}: array of shape {x.shape}; expected (batch, *shape, time) or (*shape, time)")
    return x


def _check_run_size(raw: np.ndarray, shape: tuple[int, ...], steps: int | None, path: Path) -> None:
    """Refuse a run whose input (padded to ``--steps``) would exceed the limits before allocating it."""
    lim = safeio.limits()
    t = int(steps) if steps is not None else int(raw.shape[-1])
    safeio.check_count(t, f"{path}: time steps (--steps or the input's last axis)", lim.max_steps, "PTSNN_MAX_STEPS")
    neurons = int(np.prod(shape)) if shape else 1
    batch = max(1, raw.size // max(1, raw.shape[-1]) // max(1, neurons))
    safeio.check_count(batch * neurons * t, f"{path}: batch x neurons x steps", lim.max_elements, "PTSNN_MAX_ELEMENTS")


def save_array_atomic(path: Path, array: np.ndarray) -> None:
    """``np.save`` to a temporary file in the target folder, then rename over the target."""
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        np.save(f, array, allow_pickle=False)


def simulate(
    net: Path = typer.Argument(..., help="netx HDF5 network (e.g. exported by lava-dl's export_hdf5)."),
    input: Path = typer.Option(..., "--input", "-i", help="Input .npy: [batch, *shape, time] or [*shape, time]."),
    out: Path = typer.Option(..., "--out", "-o", help="Output .npy for the last layer, same layout as the input."),
    backend: str = typer.Option("fast", "--backend", "-b", help="fast (bit-exact numpy simulator) or lava (Lava CPU, fixed_pt)."),
    steps: int = typer.Option(None, "--steps", min=1, help="Time steps to run: pads the input with zeros or truncates it."),
    input_message_bits: int = typer.Option(0, "--input-message-bits", min=0, max=24,
                                           help="> 0: the input carries graded payloads (hdf5.Network(input_message_bits))."),
    layout: str = typer.Option("lava", "--layout", help="Axis order of shape: lava (W,H,C) or slayer (C,H,W)."),
    num_layers: int = typer.Option(None, "--num-layers", min=1, help="Only the first N netx layers (hdf5.Network(num_layers))."),
    timeout: float = typer.Option(600.0, "--timeout", min=1.0, help="Seconds before a Lava run is killed."),
) -> None:
    """Simulate NET on an input array and write the output layer's activity (what a RingBuffer sink on the
    network's output port records: 0/1 spikes, or graded payloads for sigma-delta layers)."""
    from ptsnn.deploy import fastsim
    from ptsnn.formats.netx import read_netx

    if backend not in BACKENDS:
        raise InputError(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if layout not in LAYOUTS:
        raise InputError(f"--layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if out.suffix != ".npy":
        raise InputError(f"--out {out}: the output is written as .npy; give a path ending in .npy")
    layers = read_netx(net, num_layers=num_layers)
    shape = fastsim.input_shape(layers)
    raw = _load_array(input)
    if layout == "slayer" and len(shape) > 1:
        raw = _slayer_to_lava(raw, shape)
    _check_run_size(raw, shape, steps, input)
    x, batched = fastsim.prepare_inputs(raw, shape, steps)
    t0 = time.perf_counter()
    if backend == "fast":
        y = fastsim.simulate(layers, x, input_message_bits=input_message_bits).output
    else:
        from ptsnn.deploy import lava_runner

        y = lava_runner.run_netx(net, x, input_message_bits=input_message_bits, timeout_s=timeout,
                                 num_layers=num_layers).output
    seconds = time.perf_counter() - t0
    if layout == "slayer":
        y = _reverse_space(y, True)
    if not batched:
        y = y[0]
    save_array_atomic(out, y.astype(np.int32))
    console.print(f"{backend}: {x.shape[0]} sample(s) x {x.shape[-1]} steps through {len(layers)} netx layers in "
                  f"{seconds:.2f} s; output {tuple(y.shape)}, {int(np.count_nonzero(y))} non-zero -> {out}",
                  highlight=False, soft_wrap=True, markup=False)
