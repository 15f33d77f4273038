"""Fast bit-exact simulator for netx networks.

Executes the integer arithmetic of Lava's ``fixed_pt`` models (``ptsnn.numerics.loihi``) block by block, the
way ``lava.lib.dl.netx.hdf5.Network`` builds them: Input (neuron only), Dense / DelayDense, RecurrentDense,
Conv, flatten, with CUBA LIF or sigma-delta (Delta / SigmaDelta / Sigma) neurons.

* Synapses are computed for *all* time steps and samples at once: one matrix product per distinct delay
  (dense) or one convolution over ``batch x time`` images (conv, PyTorch in float64, exact for these
  integer sums). Only neuron recurrences loop over time, vectorised over batch and neurons; recurrent
  dense layers loop over time for their feedback synapse.
* Timing is Lava's raw timing: each synapse adds one step (a spike at step t reaches the next neuron at
  t + 1 + delay); an input layer with a neuron adds none (the data enters its ``a_in`` directly). The
  output is exactly what a ``RingBuffer`` sink on each block's ``out`` port records over the same steps.
* Arrays use Lava's layout: ``[batch, *shape, time]`` with the block's shape in Lava's (x, y, z) = (W, H, C)
  order; flat ``[batch, neurons, time]`` inputs are reshaped in C order, as ``RingBuffer`` data would be.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ptsnn.errors import InputError
from ptsnn.formats.netx import (
    ConvLayerSpec,
    CubaNeuronSpec,
    DenseLayerSpec,
    InputLayerSpec,
    LayerShapes,
    LayerSpec,
    SdnnNeuronSpec,
    SkippedLayerSpec,
    network_shapes,
    read_netx,
)
from ptsnn.chip import kernels
from ptsnn.chip.synapses import conv_input, dense_input, payload
from ptsnn.numerics import loihi

MAX_SPIKE_EXP = 16  # fraction bits of a graded spike: beyond this the shifted thresholds leave int32


@dataclass
class SimResult:
    output: np.ndarray  # [batch, *out_shape, time] int32, Lava order: what the output RingBuffer records
    layer_outputs: list[np.ndarray]  # per Lava block (netx ``net.layers``): [batch, *shape, time] int32
    layer_graded: list[bool]  # per block: output is a graded payload (SDNN) rather than 0/1 spikes

    @property
    def layer_spikes(self) -> list[np.ndarray]:
        """Per block ``[batch, time, neurons]`` (neurons flattened in Lava's C order): bool for spiking
        layers, int32 payloads for graded ones."""
        out = []
        for y, graded in zip(self.layer_outputs, self.layer_graded):
            flat = y.reshape(y.shape[0], -1, y.shape[-1]).transpose(0, 2, 1)
            out.append(flat if graded else flat.astype(bool))
        return out


# ------------------------------------------------------------------------------------------- layouts
def _to_lava(y: np.ndarray) -> np.ndarray:
    """Internal time-major ``[T, B, *chw]`` -> Lava ``[B, *reversed(chw), T]`` (int32)."""
    k = y.ndim - 2
    axes = (1, *range(k + 1, 1, -1), 0)
    return y.transpose(axes).astype(np.int32, order="C")  # one pass: the transpose and the cast together


def _from_lava(x: np.ndarray) -> np.ndarray:
    """Lava ``[B, *xyz, T]`` -> internal time-major ``[T, B, *reversed(xyz)]``."""
    k = x.ndim - 2
    axes = (x.ndim - 1, 0, *range(k, 0, -1))
    return x.transpose(axes)


def prepare_inputs(inputs, input_shape: tuple[int, ...], steps: int | None = None) -> tuple[np.ndarray, bool]:
    """Validate and normalise user inputs to Lava's ``[batch, *input_shape, time]`` int64.

    Accepts ``[batch, *input_shape, time]``, ``[*input_shape, time]``, or the flat forms ``[batch, N, time]`` /
    ``[N, time]`` with ``N = prod(input_shape)``. ``steps`` pads with zeros or truncates the time axis.
    Returns the array and whether the caller gave a batch dimension."""
    x = np.asarray(inputs)
    if x.dtype == bool:
        x = x.astype(np.int64)
    if not np.issubdtype(x.dtype, np.number):
        raise InputError(f"input must be numeric, got dtype {x.dtype}")
    n = int(np.prod(input_shape))
    k = len(input_shape)
    shape = tuple(x.shape)
    if x.ndim == k + 2 and shape[1:-1] == tuple(input_shape):
        batched = True
    elif x.ndim == k + 1 and shape[:-1] == tuple(input_shape):
        x, batched = x[None], False
    elif k > 1 and x.ndim == 3 and shape[1] == n:
        x, batched = x.reshape(shape[0], *input_shape, shape[-1]), True
    elif k > 1 and x.ndim == 2 and shape[0] == n:
        x, batched = x.reshape(*input_shape, shape[-1])[None], False
    else:
        want = ", ".join(map(str, input_shape))
        raise InputError(f"input shape {shape} does not fit the network input ({want}): expected "
                         f"(batch, {want}, time) or ({want}, time)" + (f" or flat (batch, {n}, time)" if k > 1 else ""))
    if x.shape[-1] == 0 or x.shape[0] == 0:
        raise InputError(f"input shape {shape} has no time steps or no samples")
    if np.issubdtype(x.dtype, np.floating):
        if not np.all(np.isfinite(x)) or np.any(x != np.trunc(x)):
            raise InputError("input values must be integers (spikes 0/1 or graded integer payloads)")
    if x.size and (x.max() > np.iinfo(np.int32).max or x.min() < np.iinfo(np.int32).min):
        raise InputError("input values must fit in int32 (Lava's RingBuffer source holds int32)")
    x = x.astype(np.int64)
    if steps is not None:
        if steps < 1:
            raise InputError(f"steps must be >= 1, got {steps}")
        t = x.shape[-1]
        if steps < t:
            x = x[..., :steps]
        elif steps > t:
            x = np.concatenate([x, np.zeros((*x.shape[:-1], steps - t), np.int64)], axis=-1)
    return x, batched


def input_shape(layers: list[LayerSpec], given: tuple[int, ...] | None = None) -> tuple[int, ...]:
    """Shape (Lava order) of one time step of network input; ``given`` is ``hdf5.Network(input_shape=...)``
    (Lava order), needed by a conv-first file without an input layer shape."""
    try:
        return network_shapes(layers, given)[0]
    except ValueError as exc:
        raise InputError(str(exc)) from None


# -------------------------------------------------------------------------------------------- neurons
def _bias_internal(bias, chw: tuple[int, ...]) -> np.ndarray | int:
    """netx's bias broadcast (``AbstractBlock._neuron``) in the internal (C, H, W) layout."""
    if bias is None:
        return 0
    b = np.asarray(bias, np.int64)
    if len(chw) == 1:
        return b.reshape(chw)
    if b.shape == (chw[0],):  # channel-wise: bias_mant[:, :] = bias on the (W, H, C) neuron
        return b.reshape(chw[0], *([1] * (len(chw) - 1)))
    return b.transpose(tuple(range(b.ndim - 1, -1, -1)))  # neuron-wise, given in Lava's (W, H, C) order


def _cuba_params(neuron: CubaNeuronSpec, bias) -> loihi.CubaParams:
    return loihi.CubaParams.from_netx(neuron.i_decay, neuron.v_decay, neuron.vth_mant, 0 if bias is None else bias)


def _run_neurons(neuron, a_in: np.ndarray, bias, is_input: bool, reset: np.ndarray | None = None,
                 spike_exp: int = loihi.SDNN_SPIKE_EXP) -> np.ndarray:
    """Feed-forward neuron population over time: ``a_in`` ``[T, B, *chw]`` -> outputs of the same shape.
    ``reset``: LIFReset's schedule (CUBA only: netx warns and ignores it for sigma-delta neurons);
    ``spike_exp``: the graded spikes' fraction bits of Delta / SigmaDelta neurons (``hdf5.Network``'s)."""
    if neuron is None:  # netx's default integrator: threshold 1 << 17 is above the saturated voltage
        return np.zeros(a_in.shape, bool)
    if isinstance(neuron, CubaNeuronSpec):
        return kernels.run_cuba(a_in, _cuba_params(neuron, bias), reset=reset)
    if is_input:
        return kernels.delta_run(a_in, neuron.vth_mant, spike_exp)
    if neuron.sigma_output:
        return kernels.sigma_run(a_in)
    return kernels.sigma_delta_run(a_in, neuron.vth_mant, 0 if bias is None else bias, spike_exp)


def _run_recurrent(layer: DenseLayerSpec, s: np.ndarray, graded: bool, bias,
                   reset: np.ndarray | None = None, spike_exp: int = loihi.SDNN_SPIKE_EXP) -> np.ndarray:
    """RecurrentDense: the feed-forward synapse is vectorised, the feedback synapse runs step by step."""
    syn, rec = loihi.netx_recurrent_weights(layer.weight, layer.weight_rec, allow_zeroed=True)
    delays = layer.full_delay() if layer.delay is not None else None
    weight_exp = syn.weight_exp if delays is None else 0  # netx gives DelayDense no weight_exp here
    ff = dense_input(syn.weights, weight_exp, delays, s, graded)
    steps, batch, n = ff.shape
    rec_delays = delays if delays is not None else None
    if rec_delays is not None and rec_delays.shape != rec.weights.shape:
        raise InputError(f"layer {layer.name}: dense_rec delays {rec_delays.shape} do not fit weight_rec "
                         f"{rec.weights.shape} (netx reuses the input delays)")
    groups = [(0, rec.weights)] if rec_delays is None else [
        (int(d), np.where(rec_delays == d, rec.weights, 0)) for d in np.unique(rec_delays)]
    pending = np.zeros((steps + loihi.MAX_DELAY + 2, batch, n), np.int64)
    neuron = layer.neuron
    out_dtype = bool if isinstance(neuron, CubaNeuronSpec) or neuron is None else np.int32
    out = np.zeros((steps, batch, n), out_dtype)
    if neuron is None:
        return out
    if isinstance(neuron, CubaNeuronSpec):
        p = _cuba_params(neuron, bias)
        rec_bound = int(loihi.shift_exp(np.abs(rec.weights).sum(axis=1).max(initial=0), max(weight_exp, 0)))
        max_a6 = (float(np.abs(ff).max(initial=0)) + rec_bound) * 2**loihi.ACTIVATION_SHIFT
        fast = max_a6 < loihi.STATE_LIMIT and kernels.fast_path_params(p)
        kernel = kernels.CubaFast((batch, n), p, max_a6) if fast else kernels.CubaReference((batch, n), p)
    else:
        kind = "sigma" if neuron.sigma_output else "sigma_delta"
        kernel = kernels.SigmaDeltaKernel((batch, n), kind, neuron.vth_mant, 0 if bias is None else bias, spike_exp)
    rec_graded = graded  # netx builds the feedback synapse with the layer's *input* message bits
    for t in range(steps):
        a = loihi.wrap_int32(ff[t] + pending[t])
        if out_dtype is bool and reset is not None and reset[t]:
            kernel.reset_state()
        if out_dtype is bool:
            if fast:
                kernel.step(kernels.cuba_input6(a).astype(np.float64), out[t])
            else:
                kernel.step(a, out[t])
        else:
            out[t] = kernel.step(a)
        fed_back = payload(out[t], rec_graded)
        if not fed_back.any():
            continue
        for d, w_d in groups:
            acc = fed_back @ w_d.T
            pending[t + 1 + d] += loihi.dense_output(acc, weight_exp, rec_graded, delayed=rec_delays is not None)
    return out


# ------------------------------------------------------------------------------------------ simulate
def simulate(layers: list[LayerSpec], inputs: np.ndarray, input_message_bits: int = 0,
             steps: int | None = None, input_shape: tuple[int, ...] | None = None,
             reset_interval: int | None = None, reset_offset: int = 0,
             spike_exp: int = loihi.SDNN_SPIKE_EXP) -> SimResult:
    """Run ``inputs`` (``[batch, *input_shape, time]`` or ``[*input_shape, time]``, Lava's order; flat
    neuron axes accepted) through ``layers``. ``input_message_bits > 0`` makes the first synapse multiply
    graded input payloads (``hdf5.Network(input_message_bits=...)``); otherwise any non-zero is a spike.
    ``steps`` pads the input with zeros (or truncates it) to that many time steps. ``input_shape`` (Lava's
    (W, H, C) order) is ``hdf5.Network(input_shape=...)``: what a conv-first file without an input layer
    shape needs (``ptsnn.deploy.netx_inputs.resolve_input_shape`` takes it from the input array).
    ``reset_interval`` / ``reset_offset`` are ``hdf5.Network``'s: every CUBA block becomes a ``LIFReset``
    whose state is zeroed every ``reset_interval`` steps, block k (in netx's order) with phase
    ``reset_offset + 1 + k`` (netx counts time from 1 and shifts each block by one step). ``spike_exp`` is
    ``hdf5.Network(spike_exp=...)``: the fraction bits of sigma-delta neurons' graded spikes (default 6)."""
    if reset_interval is not None and (isinstance(reset_interval, bool) or not 1 <= reset_interval <= 2**31 - 1):
        raise InputError(f"reset interval must be an integer in 1..2**31-1, got {reset_interval!r}")
    if isinstance(spike_exp, bool) or not 0 <= spike_exp <= MAX_SPIKE_EXP:
        raise InputError(f"spike_exp must be an integer in 0..{MAX_SPIKE_EXP}, got {spike_exp!r}")
    try:
        net_in, blocks = network_shapes(layers, input_shape)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    x_lava, batched = prepare_inputs(inputs, net_in, steps)
    x = _from_lava(x_lava)  # [T, B, *chw]
    graded = input_message_bits > 0
    skipped = [entry.layer for entry in layers if isinstance(entry, SkippedLayerSpec)]
    if skipped:  # netx hands the first kept layer the message bits of the last skipped one, not the caller's
        graded = _sends_graded(skipped[-1].neuron)
    outputs, graded_flags = [], []
    for k, blk in enumerate(blocks):
        layer = layers[blk.index]
        reset = kernels.reset_steps(x.shape[0], reset_interval, reset_offset + 1 + k)
        y = _run_block(layer, blk, x, graded, reset, spike_exp)
        outputs.append(_to_lava(y))
        neuron = layer.neuron
        graded = _sends_graded(neuron)
        graded_flags.append(isinstance(neuron, SdnnNeuronSpec))
        x = y
    output = outputs[-1] if batched else outputs[-1][0]
    return SimResult(output, outputs, graded_flags)


def _sends_graded(neuron) -> bool:
    return neuron is not None and neuron.graded


def _run_block(layer: LayerSpec, blk: LayerShapes, x: np.ndarray, graded: bool,
               reset: np.ndarray | None = None, spike_exp: int = loihi.SDNN_SPIKE_EXP) -> np.ndarray:
    steps, batch = x.shape[:2]
    if isinstance(layer, InputLayerSpec):
        a_in = loihi.wrap_int32(x)  # RingBuffer -> neuron.a_in: raw int32 data, no synapse
        return _run_neurons(layer.neuron, a_in, None, is_input=True, reset=reset, spike_exp=spike_exp)
    if isinstance(layer, DenseLayerSpec):
        s = x.reshape(steps, batch, -1)  # internal (C, H, W) order == netx's flatten order; dense_input
        # takes spikes (any non-zero) or graded payloads as they are
        bias = _bias_internal(layer.bias, blk.chw)
        if layer.recurrent:
            return _run_recurrent(layer, s, graded, layer.bias, reset, spike_exp)
        syn = loihi.netx_dense_weights(layer.weight, allow_zeroed=True)  # the reader warned
        delays = layer.full_delay() if layer.delay is not None else None
        a_in = dense_input(syn.weights, syn.weight_exp, delays, s, graded)
        return _run_neurons(layer.neuron, a_in, bias if layer.bias is not None else None, is_input=False, reset=reset,
                            spike_exp=spike_exp)
    if isinstance(layer, ConvLayerSpec):
        a_in = conv_input(payload(x, graded), layer.weight, layer.shape, layer.stride, layer.padding,
                          layer.dilation, layer.groups, name=f"layer {layer.name}")
        bias = _bias_internal(layer.bias, blk.chw) if layer.bias is not None else None
        return _run_neurons(layer.neuron, a_in, bias, is_input=False, reset=reset, spike_exp=spike_exp)
    raise TypeError(type(layer).__name__)  # pragma: no cover - network_shapes only yields neuron blocks


def simulate_file(netx_path: str | os.PathLike, inputs: np.ndarray, input_message_bits: int = 0,
                  steps: int | None = None, num_layers: int | None = None,
                  input_shape: tuple[int, ...] | None = None, reset_interval: int | None = None,
                  reset_offset: int = 0, spike_exp: int = loihi.SDNN_SPIKE_EXP, skip_layers: int = 0) -> SimResult:
    """Read a netx file (``num_layers``, ``skip_layers`` as ``hdf5.Network`` takes them) and :func:`simulate` it."""
    return simulate(read_netx(netx_path, num_layers=num_layers, skip=skip_layers), inputs, input_message_bits, steps,
                    input_shape, reset_interval, reset_offset, spike_exp)
