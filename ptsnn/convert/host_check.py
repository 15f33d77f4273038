"""Check an exported ``host.onnx`` against the PyTorch host part it came from, in onnxruntime.

An embedded SSL model is float arithmetic of many layers: onnxruntime and PyTorch agree only to ~1e-5
(different kernels, summation order). The host part then rounds ``scaled = levels * tanh(xi * LN(x))``
to the integer payload, so a value within that distance of a rounding boundary (``k + 0.5``) can round
differently. The rule (docs/convert_onnx.md):

* ``scaled`` must agree within :data:`SCALED_TOLERANCE` payload units (1/1000 of a quantization step);
* an integer payload may differ only by 1 and only where PyTorch's ``scaled`` lies within that tolerance
  of ``k + 0.5`` (a *boundary tie*); any other difference is an error.

The chip part is verified from the payload onward (``ptsnn verify`` feeds the same integer payloads to
every chip backend), so a boundary tie can never make the fixed-point chain inexact.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ptsnn.errors import InputError

SCALED_TOLERANCE = 1e-3  # payload units
CHECK_SECONDS = (0.0, 0.7, 1.6)  # 0.0: the shortest input the graph takes


def check_waves(sample_rate: int, min_samples: int, seed: int = 0) -> list[np.ndarray]:
    """Deterministic speech-like test inputs: a chirp with harmonics under noise, at several lengths."""
    rng = np.random.default_rng(seed)
    waves = []
    for seconds in CHECK_SECONDS:
        n = max(int(min_samples), int(seconds * sample_rate))
        t = np.arange(n) / sample_rate
        f0 = 120 + 80 * t
        x = sum(np.sin(2 * np.pi * k * np.cumsum(f0) / sample_rate) / k for k in (1, 2, 3))
        waves.append((0.2 * x + 0.02 * rng.standard_normal(n)).astype(np.float32))
    return waves


def boundary_ties(a: np.ndarray, b: np.ndarray, scaled_ref: np.ndarray,
                  tol: float = SCALED_TOLERANCE) -> tuple[int, int]:
    """``(unexplained differences, boundary ties)`` between two integer payloads; ``scaled_ref`` are the
    reference's values before rounding."""
    a, b, ref = np.asarray(a), np.asarray(b), np.asarray(scaled_ref, np.float64)
    diff = a != b
    near_half = np.abs(np.abs(ref - np.floor(ref)) - 0.5) <= tol
    ties = diff & (np.abs(a.astype(np.int64) - b.astype(np.int64)) == 1) & near_half
    return int(diff.sum() - ties.sum()), int(ties.sum())


def check_host_onnx(graph: torch.nn.Module, onnx_path: str | Path, waves: list[np.ndarray],
                    tol: float = SCALED_TOLERANCE) -> dict:
    """Run ``graph`` (a float-output :class:`~ptsnn.convert.onnx_host.HostGraph`) and ``onnx_path`` on
    each waveform; raise :class:`InputError` when they disagree beyond the rule above. Returns the
    measurements (for the conversion report)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    max_diff, values, ties, bad = 0.0, 0, 0, 0
    from ptsnn.convert.onnx_host import eval_mode

    with eval_mode(graph):  # restores each submodule's own flag (the frozen SSL model stays in eval)
        for w in waves:
            with torch.no_grad():
                p_ref, s_ref = (t[0].numpy() for t in graph(torch.from_numpy(w)[None]))
            p_ort, s_ort = (o[0] for o in session.run(["payload", "scaled"], {"wave": w[None]}))
            if p_ref.shape != p_ort.shape:
                raise InputError(f"{onnx_path}: onnxruntime gives payload {p_ort.shape}, PyTorch {p_ref.shape} "
                                 f"for {len(w)} samples")
            max_diff = max(max_diff, float(np.abs(s_ref.astype(np.float64) - s_ort).max(initial=0.0)))
            unexplained, t = boundary_ties(p_ref, p_ort, s_ref, tol)
            values, ties, bad = values + p_ref.size, ties + t, bad + unexplained
    result = dict(inputs=len(waves), samples=[len(w) for w in waves], payload_values=values,
                  max_abs_scaled_diff=max_diff, tolerance=tol, boundary_ties=ties)
    if max_diff > tol or bad:
        raise InputError(f"{onnx_path}: host.onnx disagrees with PyTorch beyond the tolerance (max |scaled "
                         f"difference| {max_diff:.3g} > {tol:g} payload units, or {bad} payload values differ "
                         "away from a rounding boundary)")
    return result
