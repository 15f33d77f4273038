"""Score calibration: one temperature ``T`` fitted on the validation split so that ``softmax(logits / T)``
can be read as a confidence (Guo et al. 2017, "On calibration of modern neural networks").

The readout's logits are time averages of an accumulator; their scale is whatever the cross-entropy and the
spiking dynamics left, so their plain softmax sits near uniform or near one-hot whatever the accuracy. Temperature
scaling changes no prediction (the argmax is the same for every ``T > 0``), only the confidence.

``T`` minimises the validation negative log-likelihood. The NLL is convex in ``beta = 1 / T`` (a log-sum-exp
of linear functions minus a linear one), hence unimodal in ``log T``, so a bounded Brent search on ``log T``
(``scipy.optimize.minimize_scalar``) finds the global minimum within the bounds. Reliability is reported as
the expected calibration error (ECE) with 15 equal-width confidence bins, before and after.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax

T_MIN, T_MAX = 0.01, 100.0  # beyond these the fit says "separable" or "no signal", not a temperature
ECE_BINS = 15


def _check(logits: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    z = np.asarray(logits, np.float64)
    y = np.asarray(labels, np.int64).reshape(-1)
    if z.ndim != 2 or z.shape[0] != y.size:
        raise ValueError(f"logits of shape {z.shape} for {y.size} labels (expected [N, classes])")
    if y.size and (y.min() < 0 or y.max() >= z.shape[1]):
        raise ValueError(f"label outside 0..{z.shape[1] - 1}")
    return z, y


def nll(logits, labels, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of ``labels`` under ``softmax(logits / temperature)``."""
    z, y = _check(logits, labels)
    if not y.size:
        return math.nan
    return float(-log_softmax(z / float(temperature), axis=1)[np.arange(y.size), y].mean())


def expected_calibration_error(probs, labels, bins: int = ECE_BINS) -> float:
    """ECE: over equal-width bins of the top probability (``(lo, hi]``, the first bin also holds 0), the
    sample-weighted mean of ``|accuracy - mean confidence|`` of each bin."""
    p, y = _check(probs, labels)
    if not y.size:
        return math.nan
    conf = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    which = np.clip(np.ceil(conf * bins).astype(np.int64) - 1, 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        in_bin = which == b
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - conf[in_bin].mean())
    return float(ece)


def softmax(logits, temperature: float = 1.0) -> np.ndarray:
    return np.exp(log_softmax(np.asarray(logits, np.float64) / float(temperature), axis=-1))


def fit_temperature(logits, labels) -> float:
    """The ``T`` in ``[T_MIN, T_MAX]`` that minimises :func:`nll` (1.0 for an empty set)."""
    z, y = _check(logits, labels)
    if not y.size:
        return 1.0
    res = minimize_scalar(lambda log_t: nll(z, y, math.exp(log_t)), bounds=(math.log(T_MIN), math.log(T_MAX)),
                          method="bounded", options={"xatol": 1e-5})
    best = float(math.exp(res.x))
    return best if nll(z, y, best) <= nll(z, y, 1.0) else 1.0  # never worse than leaving the scores alone


def calibrate(logits, labels, split: str = "valid") -> dict:
    """Fit ``T`` and describe it: the dict stored in checkpoints (``calibration``) and bundles (``scores``)."""
    z, y = _check(logits, labels)
    t = fit_temperature(z, y)
    return dict(temperature=t, fitted_on=split, count=int(y.size), bins=ECE_BINS,
                nll_before=nll(z, y, 1.0), nll_after=nll(z, y, t),
                ece_before=expected_calibration_error(softmax(z), y),
                ece_after=expected_calibration_error(softmax(z, t), y))
