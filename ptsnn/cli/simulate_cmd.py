"""`ptsnn simulate`: run a netx HDF5 network on an input array, in the fast bit-exact simulator or in Lava.

Arrays are ``[batch, *shape, time]`` (the batch axis may be left out). ``--layout lava`` (default) orders
``shape`` as Lava's ports do, (x, y, z) = (W, H, C); ``--layout lava-dl`` (or ``slayer``) as lava-dl's tensors
do, (C, H, W). Flat ``[batch, neurons, time]`` inputs are accepted too (C-order flattening of the layout's
shape). A file whose first block is a convolution and which has no input layer takes its input shape from
``--input-shape`` (in the layout's order) or from the input array (``ptsnn.deploy.netx_inputs``). Values
outside a Loihi register that Lava still simulates are simulated as Lava does, with one warning line each.
``--reset-interval`` / ``--reset-offset`` (CUBA blocks become ``LIFReset``), ``--spike-exp`` and ``--skip-layers``
are ``hdf5.Network``'s.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np
import typer

from ptsnn.cli._app import console, err_console
from ptsnn import safeio
from ptsnn.errors import InputError, RegisterWarning
from ptsnn.fileio import atomic_output

BACKENDS = ("fast", "lava")


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
                                           help="> 0: the input carries graded payloads (netx's input_message_bits)."),
    layout: str = typer.Option("lava", "--layout", help="Axis order of shape: lava (W,H,C) or lava-dl (C,H,W; "
                                                        "also called slayer)."),
    input_shape: str = typer.Option(None, "--input-shape", help="Input shape in the --layout's order (e.g. 2,8,6): "
                                    "for a conv-first file without an input layer (else taken from the input array)."),
    num_layers: int = typer.Option(None, "--num-layers", min=1,
                                   help="Only the first N netx layers (netx's num_layers)."),
    skip: int = typer.Option(0, "--skip-layers", min=0, help="Leave out the neuron layers among the first N "
                             "entries, as netx's skip_layers does: the input then feeds the first kept layer."),
    reset_interval: int = typer.Option(None, "--reset-interval", min=1,
                                       help="Zero every CUBA neuron's state every N steps, as netx's "
                                            "reset_interval does (LIFReset; sigma-delta neurons ignore it)."),
    reset_offset: int = typer.Option(0, "--reset-offset", min=0,
                                     help="Phase of --reset-interval (netx's reset_offset)."),
    spike_exp: int = typer.Option(6, "--spike-exp", min=0, max=16,
                                  help="Fraction bits of sigma-delta neurons' graded spikes (netx's spike_exp)."),
    timeout: float = typer.Option(600.0, "--timeout", min=1.0, help="Seconds before a Lava run is killed."),
) -> None:
    """Simulate NET on an input array and write the output layer's activity (what a RingBuffer sink on the
    network's output port records: 0/1 spikes, or graded payloads for sigma-delta layers)."""
    from ptsnn.deploy import fastsim, netx_inputs
    from ptsnn.formats.netx import SkippedLayerSpec, read_netx

    if backend not in BACKENDS:
        raise InputError(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    layout = netx_inputs.layout_name(layout)
    if out.suffix != ".npy":
        raise InputError(f"--out {out}: the output is written as .npy; give a path ending in .npy")
    given = netx_inputs.parse_input_shape(input_shape, layout) if input_shape is not None else None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RegisterWarning)
        layers = read_netx(net, num_layers=num_layers, skip=skip)
    for w in caught:  # one line per register Lava simulates beyond Loihi's range
        if issubclass(w.category, RegisterWarning):
            err_console.print(f"warning: {w.message}", highlight=False, soft_wrap=True, markup=False)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    raw = _load_array(input)
    shape, tell_lava = netx_inputs.resolve_input_shape(layers, raw.shape, layout, given, str(net), str(input))
    try:
        if layout == "lava-dl" and len(shape) > 1:
            raw = netx_inputs.lava_dl_to_lava(raw, shape)
        _check_run_size(raw, shape, steps, input)
        x, batched = fastsim.prepare_inputs(raw, shape, steps)
    except InputError as exc:
        raise InputError(exc if str(exc).startswith(str(input)) else f"{input}: {exc}") from None
    lava_shape = (given or shape) if tell_lava else None  # the file's input: differs from shape when skipped
    t0 = time.perf_counter()
    if backend == "fast":
        y = fastsim.simulate(layers, x, input_message_bits=input_message_bits, input_shape=lava_shape,
                             reset_interval=reset_interval, reset_offset=reset_offset, spike_exp=spike_exp).output
    else:
        from ptsnn.deploy import lava_runner

        y = lava_runner.run_netx(net, x, input_message_bits=input_message_bits, timeout_s=timeout,
                                 num_layers=num_layers, input_shape=lava_shape, reset_interval=reset_interval,
                                 reset_offset=reset_offset, spike_exp=spike_exp, skip_layers=skip).output
    seconds = time.perf_counter() - t0
    if layout == "lava-dl":
        y = netx_inputs.reverse_space(y, True)
    if not batched:
        y = y[0]
    save_array_atomic(out, y.astype(np.int32))
    n_skipped = sum(isinstance(layer, SkippedLayerSpec) for layer in layers)
    skipped = f" ({n_skipped} skipped)" if n_skipped else ""
    console.print(f"{backend}: {x.shape[0]} sample(s) x {x.shape[-1]} steps through {len(layers)} netx layers"
                  f"{skipped} in {seconds:.2f} s; output {tuple(y.shape)}, {int(np.count_nonzero(y))} non-zero "
                  f"-> {out}",
                  highlight=False, soft_wrap=True, markup=False)
