"""Audio (or features) to emotion label through a bundle, on any registered backend (``deploy.backends``).

Streaming as on hardware: the host sends one payload step per chip step, then ``flush_steps`` empty steps so
the last frames reach the readout; the label is read from the Sigma accumulator after the last step. Scores
are ``softmax(logits / T)`` with the temperature ``T`` fitted on the validation split at training time (the
manifest's ``scores``); bundles without one use T = 1 and say so (:func:`score_temperature`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ptsnn.deploy.backends import chip_steps, get_backend, names as backend_names
from ptsnn.deploy import readout
from ptsnn.deploy.bundle_io import Bundle, logits_from_readout
from ptsnn.errors import InputError

BACKENDS = tuple(backend_names())


@dataclass
class UtteranceResult:
    name: str
    label: str
    scores: dict[str, float]  # softmax(logits / temperature)
    logits: np.ndarray
    steps: int
    spike_counts: dict[str, int]  # per population, over the utterance's window
    spikes: dict[str, np.ndarray] | None = None  # per population [T, N] bool, when asked for


@dataclass(frozen=True)
class ScoreTemperature:
    value: float
    fitted: bool  # False: the bundle has none (older checkpoint or NIR import), value is 1

    def describe(self) -> str:
        if self.fitted:
            return f"scores: softmax(logits / T), T = {self.value:.3g} fitted on the validation split"
        return ("scores: softmax(logits), T = 1: this bundle has no fitted temperature (trained before score "
                "calibration, or not from a ptsnn checkpoint), so scores are not calibrated confidences")


def score_temperature(bundle: Bundle) -> ScoreTemperature:
    """The manifest's ``scores.temperature`` (a finite positive number), or T = 1 when there is none."""
    scores = bundle.manifest.get("scores")
    if scores is None:
        return ScoreTemperature(1.0, False)
    t = scores.get("temperature") if isinstance(scores, dict) else None
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or t <= 0:
        raise InputError(f"{bundle.path / 'manifest.json'}: field scores.temperature must be a finite positive "
                         f"number (got {t!r})")
    return ScoreTemperature(float(t), True)


def calibrated_softmax(logits: np.ndarray, temperature: float) -> np.ndarray:
    z = np.asarray(logits, np.float64) / temperature
    e = np.exp(z - z.max())
    return e / e.sum()


def chip_run(bundle: Bundle, payloads: list[np.ndarray], backend: str = "fast", timeout_s: float = 600.0,
             keep_spikes: bool = False, log_dir=None) -> list[dict]:
    """Run payloads ``[steps_i, F]`` through the chip part. Returns per utterance ``{"steps", "readout",
    "spikes": {population: [T, N] bool}}`` with T = steps_i + flush."""
    run = get_backend(backend, timeout_s=timeout_s, log_dir=log_dir).run(bundle, payloads)
    steps = chip_steps(bundle, payloads)
    totals = readout.totals_fast(bundle.graph, run, steps)  # an accumulator, or a NIR graph's output spikes
    return [dict(steps=int(s), readout=totals[i], spikes={k: v[i, :s] for k, v in run.spikes.items()})
            for i, s in enumerate(steps)]


def classify(bundle: Bundle, payloads: list[np.ndarray], names: list[str], backend: str = "fast",
             timeout_s: float = 600.0, keep_spikes: bool = False, log_dir=None,
             temperature: float | None = None) -> list[UtteranceResult]:
    """Labels and scores; ``temperature`` defaults to the bundle's (:func:`score_temperature`)."""
    t = score_temperature(bundle).value if temperature is None else float(temperature)
    runs = chip_run(bundle, payloads, backend, timeout_s, keep_spikes, log_dir)
    results = []
    for name, r in zip(names, runs):
        logits = logits_from_readout(bundle, r["readout"], np.asarray(r["steps"]))
        probs = calibrated_softmax(logits, t)
        results.append(UtteranceResult(
            name=name, label=bundle.classes[int(np.argmax(logits))],
            scores={c: float(p) for c, p in zip(bundle.classes, probs)}, logits=logits, steps=int(r["steps"]),
            spike_counts={k: int(np.count_nonzero(v)) for k, v in r["spikes"].items()},
            spikes=r["spikes"] if keep_spikes else None))
    return results
