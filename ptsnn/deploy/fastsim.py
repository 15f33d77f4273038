"""Fast bit-exact simulator for netx networks.

Executes the integer arithmetic of Lava's ``fixed_pt`` models (``ptsnn.numerics.loihi``) layer by layer:
the synaptic input of a feed-forward layer is computed for *all* time steps and samples at once (one matrix
product per distinct delay), then the neuron recurrence runs over time, vectorised over batch and neurons.
Timing is Lava's raw timing: each synapse layer adds one step (a spike at step t reaches the next neuron at
t + 1 + delay), and the output is what a ``RingBuffer`` sink on the network's output port records.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ptsnn.formats.netx import DenseLayerSpec, InputLayerSpec, LayerSpec
from ptsnn.numerics import loihi

_EXACT_FLOAT = 2**52  # float64 matmul is exact while every partial sum stays below this


@dataclass
class SimResult:
    output: np.ndarray  # [batch, neurons, time], lava-dl layout, what the output RingBuffer records
    layer_spikes: list[np.ndarray]  # per neuron layer: [batch, time, neurons] bool


def _synaptic_input(layer: DenseLayerSpec, x: np.ndarray, graded: bool) -> np.ndarray:
    """Integer synaptic input ``[B, T, out]`` that the layer's neurons receive, Lava timing included."""
    syn = loihi.netx_dense_weights(layer.weight)
    s = x.astype(np.float64) if graded else (x != 0).astype(np.float64)
    bound = float(np.abs(syn.weights).sum(axis=1).max(initial=0)) * float(np.abs(s).max(initial=0))
    if bound >= _EXACT_FLOAT:
        raise OverflowError("synaptic sums could exceed exact float64 range")
    delays = layer.full_delay()
    batch, steps, _ = x.shape
    a_in = np.zeros((batch, steps, syn.weights.shape[0]), np.int64)
    for d in np.unique(delays):
        w_d = np.where(delays == d, syn.weights, 0).astype(np.float64)
        lag = 1 + int(d)  # one step of synapse latency plus the programmed delay
        if lag >= steps:
            continue
        acc = np.rint(s[:, : steps - lag] @ w_d.T).astype(np.int64)
        a_in[:, lag:] += loihi.shift_exp(acc, syn.weight_exp)
    return a_in


def _neuron_params(neuron, bias) -> loihi.CubaParams:
    return loihi.CubaParams.from_netx(neuron.i_decay, neuron.v_decay, neuron.vth_mant,
                                      0 if bias is None else np.asarray(bias, np.int64))


def simulate(layers: list[LayerSpec], inputs: np.ndarray, input_message_bits: int = 0) -> SimResult:
    """Run ``inputs`` (``[batch, *input_shape, time]`` or ``[*input_shape, time]``) through ``layers``."""
    x = np.asarray(inputs)
    squeeze = x.ndim == 2
    if squeeze:
        x = x[None]
    batch, steps = x.shape[0], x.shape[-1]
    x = x.reshape(batch, -1, steps).transpose(0, 2, 1).astype(np.int64)  # [B, T, N]
    graded = input_message_bits > 0
    spikes: list[np.ndarray] = []
    for layer in layers:
        if isinstance(layer, InputLayerSpec):
            if layer.neuron is None:
                continue
            a_in = x  # netx's Input block wires its in-port straight to the neuron's a_in
            neuron, bias = layer.neuron, layer.bias
        elif isinstance(layer, DenseLayerSpec):
            a_in = _synaptic_input(layer, x, graded)
            neuron, bias = layer.neuron, layer.bias
        else:  # pragma: no cover - read_netx only yields the types above
            raise TypeError(type(layer).__name__)
        out = loihi.cuba_run(a_in, _neuron_params(neuron, bias))
        spikes.append(out)
        x = out.astype(np.int64)
        graded = neuron.message_bits > 0  # the next synapse multiplies payloads instead of counting spikes
    output = x.transpose(0, 2, 1).astype(np.int32)
    return SimResult(output[0] if squeeze else output, spikes)
