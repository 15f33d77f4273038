"""Verification chain: float PyTorch <-> quantized PyTorch <-> fast simulator <-> Lava, per layer and step.

Latency alignment is handled here, once: the model, the chip IR, the fast simulator and the Lava graph all
run in *chip time* (every synapse delivers one step after the presynaptic spike, plus its delay), so every
layer's spike train is compared at the same step index in every backend: the alignment offset is 0 for
every layer by construction (:func:`alignment`). The host payload fed to the chip is the quantized model's
own; ``host.onnx`` is checked against it separately.

The fixed-point chain (quantized PyTorch, fast simulator, Lava) must agree exactly; float vs quantized is
reported as an agreement percentage (it is not expected to be exact).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ptsnn.batching import pad_batch
from ptsnn.deploy.bundle_io import Bundle, logits_from_readout
from ptsnn.deploy.run import chip_run


def alignment(layer: str) -> int:
    """Steps to shift ``layer``'s chip spike train to compare it with PyTorch: 0 (chip time everywhere)."""
    return 0


@dataclass
class Divergence:
    pair: str
    layer: str
    utterance: str
    step: int
    neuron: int


@dataclass
class Overflow:
    layer: str
    utterance: str
    step: int
    neuron: int
    register: str  # current (wraps modulo 2**24) or voltage (saturates)
    value: int


@dataclass
class VerifyReport:
    layers: list[dict]  # per layer: agreement percentages per pair, spike counts
    predictions: dict[str, dict]  # backend -> {"wa", "ua", "agree_with_quantized"}
    divergences: list[Divergence] = field(default_factory=list)
    host_payload_mismatches: int | None = None  # host.onnx vs PyTorch, boundary ties not counted
    lava_utterances: int = 0
    overflows: list[Overflow] = field(default_factory=list)  # first 24-bit state overflow per layer
    host_payload_boundary_ties: int = 0  # differences by 1 where PyTorch's value is within tolerance of k+0.5

    @property
    def exact(self) -> bool:
        chip_exact = not [d for d in self.divergences if d.pair != "float~quantized"]
        return chip_exact and not self.host_payload_mismatches  # boundary ties are not mismatches


def run_fast_and_lava(bundle, payloads: list[np.ndarray], lava_count: int, timeout_s: float, log_dir,
                      step) -> tuple[list[dict], list[dict]]:
    """Every payload on the fast backend and the first ``lava_count`` in Lava (fixed_pt): what both
    verifications compare."""
    step("fast simulator")
    fast = chip_run(bundle, payloads, "fast")
    lava = []
    if lava_count > 0:
        step(f"Lava fixed_pt on {min(lava_count, len(payloads))} utterance(s)")
        lava = chip_run(bundle, payloads[:lava_count], "lava", timeout_s=timeout_s, log_dir=log_dir)
    return fast, lava


def _first_divergence(a: np.ndarray, b: np.ndarray) -> tuple[int, int] | None:
    diff = np.argwhere(a != b)
    if not len(diff):
        return None
    step, neuron = diff[np.lexsort((diff[:, 1], diff[:, 0]))][0]
    return int(step), int(neuron)


def _wa_ua(pred: list[int], labels: list[int] | None, classes: int) -> dict:
    if not labels:
        return {}
    pred, labels = np.asarray(pred), np.asarray(labels)
    recalls = [float((pred[labels == c] == c).mean()) for c in range(classes) if (labels == c).any()]
    return dict(wa=float((pred == labels).mean()), ua=float(np.mean(recalls)))


@torch.no_grad()
def verify(bundle: Bundle, model, features: list[np.ndarray], names: list[str], labels: list[int] | None = None,
           lava_count: int = 2, timeout_s: float = 600.0, host=None, host_inputs=None, log_dir=None,
           progress=None) -> VerifyReport:
    """``model``: the quantized PTSSNN of the bundle's checkpoint; ``features``: per utterance ``[frames, F]``."""
    import copy

    step = progress or (lambda msg: None)
    float_model = copy.deepcopy(model)
    float_model.quantized_flag.fill_(False)
    lengths = torch.tensor([len(f) for f in features])
    batch = torch.as_tensor(pad_batch(features, dtype=np.float32)[0])
    step("PyTorch float and quantized")
    out_q = model(batch, lengths, record=True)
    out_f = float_model(batch, lengths, record=True)
    steps = out_q.steps.numpy()
    payloads = [out_q.spikes["input"][i, : int(lengths[i]) * model.cfg.steps_per_frame].numpy().astype(np.int64)
                for i in range(len(features))]
    host_mismatch, ties = None, 0
    if host is not None and host_inputs is not None:
        host_mismatch, ties = _host_agreement(model, batch, lengths, host, host_inputs, payloads)
    fast, lava = run_fast_and_lava(bundle, payloads, lava_count, timeout_s, log_dir, step)

    divergences: list[Divergence] = []
    rows = []
    for pop in bundle.graph.populations:
        name = pop.name
        agree = {"float~quantized": [], "quantized==fast": [], "fast==lava": []}
        counts = {"float": 0, "quantized": 0, "fast": 0, "lava": 0}
        found = {k: None for k in agree}
        for i, s in enumerate(steps):
            off = alignment(name)
            q = out_q.spikes[name][i, off:s].numpy().astype(bool)
            f = out_f.spikes[name][i, off:s].numpy().astype(bool)
            fs = fast[i]["spikes"][name]
            pairs = [("float~quantized", f, q), ("quantized==fast", q, fs)]
            counts["float"] += int(f.sum())
            counts["quantized"] += int(q.sum())
            counts["fast"] += int(fs.sum())
            if i < len(lava):
                lv = lava[i]["spikes"][name]
                pairs.append(("fast==lava", fs, lv))
                counts["lava"] += int(lv.sum())
            for pair, a, b in pairs:
                agree[pair].append(float((a == b).mean()))
                hit = _first_divergence(a, b)
                if hit and found[pair] is None:
                    found[pair] = Divergence(pair, name, names[i], *hit)
        divergences += [d for d in found.values() if d is not None]
        rows.append(dict(layer=name, neurons=pop.size, **{f"spikes_{k}": v for k, v in counts.items()},
                         **{k: (100 * float(np.mean(v)) if v else None) for k, v in agree.items()}))

    classes = len(bundle.classes)
    pred_q = out_q.logits.argmax(1).tolist()
    pred = {"float": out_f.logits.argmax(1).tolist(), "quantized": pred_q,
            "fast": [int(np.argmax(logits_from_readout(bundle, r["readout"], np.asarray(r["steps"])))) for r in fast]}
    if lava:
        pred["lava"] = [int(np.argmax(logits_from_readout(bundle, r["readout"], np.asarray(r["steps"])))) for r in lava]
    predictions = {}
    for backend, p in pred.items():
        ref = pred_q[: len(p)]
        predictions[backend] = dict(utterances=len(p), agree_with_quantized=100 * float(np.mean(np.equal(p, ref))),
                                    **_wa_ua(p, labels[: len(p)] if labels else None, classes))
    # the fixed-point readout must also match exactly
    for i, r in enumerate(fast):
        q_total = out_q.logits[i].double().numpy() * (2.0 ** bundle.graph.accumulators[0].scale_exponent * steps[i])
        if not np.allclose(q_total, r["readout"], rtol=0, atol=1e-6 * max(1.0, float(np.abs(q_total).max()))):
            divergences.append(Divergence("quantized==fast", "readout", names[i], int(steps[i]) - 1, -1))
    for i, r in enumerate(lava):
        if not np.array_equal(r["readout"], fast[i]["readout"]):
            divergences.append(Divergence("fast==lava", "readout", names[i], int(steps[i]) - 1, -1))
    return VerifyReport(rows, predictions, divergences, host_mismatch, len(lava),
                        overflows=state_overflows(bundle.graph, payloads, fast, names), host_payload_boundary_ties=ties)


def state_overflows(graph, payloads: list[np.ndarray], fast: list[dict], names: list[str]) -> list[Overflow]:
    """Replay each population's 24-bit registers on the spike trains the fast simulator produced and report,
    per layer, the first utterance/step/neuron where the current wrapped or the voltage saturated (the chain
    can be exact and still overflow: every backend wraps the same way)."""
    from ptsnn.chip.ir import CubaPopulation
    from ptsnn.chip.synapses import edge_input
    from ptsnn.numerics.overflow import first_state_overflow

    found = []
    host = graph.inputs[0]
    for pop in graph.populations:
        if type(pop) is not CubaPopulation:  # fire-once and sigma-delta neurons have their own registers
            continue
        for i, (p, r) in enumerate(zip(payloads, fast)):
            acts = {host.name: np.zeros((r["steps"], 1, p.shape[1]), np.int64)}  # time-major [T, B=1, N]
            acts[host.name][: len(p), 0] = p
            acts.update({k: np.asarray(v, np.int64)[:, None] for k, v in r["spikes"].items()})
            a_in = sum(edge_input(e, acts[e.source], graph.message_bits(e.source) > 0)
                       for e in graph.incoming(pop.name))
            hit = first_state_overflow(np.moveaxis(a_in, 1, 0), pop.params())
            if hit is not None:
                found.append(Overflow(pop.name, names[i], hit.step, hit.neuron, hit.register, hit.value))
                break
    return found


def _host_agreement(model, batch, lengths, host, host_inputs, payloads) -> tuple[int, int]:
    """``(mismatches, boundary ties)`` of host.onnx's payloads against PyTorch's; a value may round the
    other way only where PyTorch's pre-rounding value is within the tolerance of k + 0.5
    (:mod:`ptsnn.convert.host_check`). The chip chain above runs from PyTorch's payloads either way."""
    from ptsnn.convert.host_check import boundary_ties

    spf = model.cfg.steps_per_frame
    scaled = (model.host(batch, False) * model.host.levels).repeat_interleave(spf, dim=1).double().numpy()
    bad = ties = 0
    for i, (x, p) in enumerate(zip(host_inputs, payloads)):
        got = host(x)
        if got.shape != p.shape:
            bad += int(max(got.size, p.size))
            continue
        b, t = boundary_ties(p, got, scaled[i, : int(lengths[i]) * spf])
        bad, ties = bad + b, ties + t
    return bad, ties
