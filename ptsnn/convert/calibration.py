"""Calibration data: float vs quantized error per layer and the 24-bit overflow estimate.

Like MetaTF's quantization analysis: for each population, the symmetric mean absolute percentage error
(SMAPE) between the float and the quantized model's per-neuron spike counts, the share of saturated neurons
(firing on > 90 % of steps) and of silent ones, and for the readout the logit SMAPE and how often both
models predict the same class. The chip IR is also simulated on the calibration payloads to record the
largest synaptic input each population receives (for the state-overflow design rule).
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from ptsnn.chip.ir import ChipGraph
from ptsnn.chip.simulator import simulate

SATURATED_RATE = 0.9


def smape(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over entries of |a - b| / (|a| + |b|), in percent; entries where both are 0 count as 0."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    den = np.abs(a) + np.abs(b)
    ratio = np.divide(np.abs(a - b), den, out=np.zeros_like(den), where=den > 0)
    return float(100 * ratio.mean()) if ratio.size else 0.0


@torch.no_grad()
def quantization_error(model, features: torch.Tensor, lengths: torch.Tensor) -> dict:
    """Per-population float-vs-quantized statistics; ``model`` must be quantized."""
    float_model = copy.deepcopy(model)
    float_model.quantized_flag.fill_(False)
    float_model.eval()
    model.eval()
    out_q = model(features, lengths, record=True)
    out_f = float_model(features, lengths, record=True)
    window = torch.arange(out_q.spikes["input"].shape[1])[None, :] < out_q.steps[:, None]
    rows = {}
    for name, sq in out_q.spikes.items():
        if name == "input":
            continue
        sf = out_f.spikes[name]
        cq = (sq * window[..., None]).sum(1).numpy()
        cf = (sf * window[..., None]).sum(1).numpy()
        rate_q = cq / out_q.steps[:, None].numpy()
        rows[name] = dict(smape_counts=smape(cf, cq), rate_float=float(cf.sum() / (out_f.steps.sum() * sq.shape[-1])),
                          rate_quantized=float(cq.sum() / (out_q.steps.sum() * sq.shape[-1])),
                          saturated_pct=float(100 * (rate_q > SATURATED_RATE).mean()),
                          silent_pct=float(100 * (cq.sum(0) == 0).mean()))
    readout = dict(smape_logits=smape(out_f.logits.numpy(), out_q.logits.numpy()),
                   prediction_agreement_pct=float(100 * (out_f.logits.argmax(1) == out_q.logits.argmax(1)).float().mean()))
    return dict(populations=rows, readout=readout, payload=out_q.spikes["input"].numpy(), steps=out_q.steps.numpy())


def max_synaptic_input(graph: ChipGraph, payload: np.ndarray) -> dict[str, int]:
    """Largest |a_in| each population receives when the IR runs on ``payload`` (the simulator's own record)."""
    peaks = simulate(graph, payload, record_peak_input=True).peak_input
    return {p.name: peaks[p.name] for p in graph.populations}


def state_overflows(graph: ChipGraph, payload: np.ndarray) -> dict[str, dict]:
    """Per CUBA population, where its 24-bit registers first leave their range on ``payload`` ``[B, T, F]``:
    ``{layer: {register, sample, step, neuron, value}}`` (the accumulated current, not only one step's input;
    ``ptsnn.numerics.overflow``). Replayed on the simulator's own spike trains."""
    from ptsnn.chip.ir import CubaPopulation
    from ptsnn.chip.synapses import edge_input
    from ptsnn.numerics.overflow import first_state_overflow

    payload = np.asarray(payload, np.int64)
    run = simulate(graph, payload)
    acts = {graph.inputs[0].name: np.moveaxis(payload, 1, 0)}
    acts.update({k: np.moveaxis(np.asarray(v, np.int64), 1, 0) for k, v in run.spikes.items()})
    found = {}
    for pop in graph.populations:
        if type(pop) is not CubaPopulation:
            continue
        a_in = sum(edge_input(e, acts[e.source], graph.message_bits(e.source) > 0) for e in graph.incoming(pop.name))
        hit = first_state_overflow(np.moveaxis(a_in, 1, 0), pop.params())
        if hit is not None:
            found[pop.name] = dict(register=hit.register, sample=hit.sample, step=hit.step, neuron=hit.neuron,
                                   value=hit.value)
    return found
