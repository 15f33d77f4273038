"""Bundles without a host part: converted from a NIR graph, their chip input is given directly.

A NIR graph starts at its ``nir.Input`` node, so such a bundle has no front end and no ``host.onnx``: the
input of ``ptsnn run``/``report``/``verify`` is a ``.npy`` array ``[steps, N]`` per utterance, one row per
chip step (each row held ``steps_per_frame`` steps when the graph records it), holding spikes (0/1) for
a binary input or integers in ``-levels..levels`` for a graded one. ``--data synthetic`` gives seeded
random spike trains (:func:`synthetic_spike_inputs`) so a report or verification needs no files.
"""

from __future__ import annotations

import numpy as np

from ptsnn.errors import InputError

SYNTHETIC_RATE = 0.1  # spike probability per input channel and step of the synthetic inputs


def has_no_host_part(bundle) -> bool:
    """True for bundles whose chip input is given directly (NIR imports: no front end recorded)."""
    source = (bundle.manifest.get("source") or {}).get("quantization", "")
    return not (bundle.path / "host.onnx").is_file() and (str(source).startswith("nir import")
                                                          or not bundle.manifest.get("frontend"))


class DirectInput:
    """Validates a chip input array; the stand-in for ``host.onnx`` of a bundle without a host part."""

    takes_audio = False
    min_samples = 1

    def __init__(self, bundle):
        inp = bundle.graph.inputs[0]
        self.feature_dim = int(inp.size)
        self.message_bits = int(inp.message_bits)
        self.levels = int(inp.levels) if inp.message_bits else 1
        self.steps_per_frame = int(inp.steps_per_frame)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != self.feature_dim:
            raise InputError(f"chip input of shape {x.shape}, expected [steps, {self.feature_dim}] (this bundle "
                             "comes from a NIR graph: give its input spikes as .npy)")
        if x.dtype.kind not in "biuf" or not np.isfinite(x).all() or not np.array_equal(x, np.rint(x)):
            raise InputError("chip input: values must be finite integers")
        lo = 0 if not self.message_bits else -self.levels
        if x.min(initial=0) < lo or x.max(initial=0) > self.levels:
            what = "spikes (0 or 1)" if not self.message_bits else f"integers in -{self.levels}..{self.levels}"
            raise InputError(f"chip input: values {x.min()}..{x.max()}, expected {what}")
        x = x.astype(np.int64)
        return np.repeat(x, self.steps_per_frame, axis=0) if self.steps_per_frame > 1 else x


def synthetic_spike_inputs(bundle, count: int, steps: int, seed: int = 0) -> tuple[list[np.ndarray], list[str]]:
    """``count`` seeded Bernoulli spike trains ``[steps, N]`` (rate :data:`SYNTHETIC_RATE`) and their names."""
    n = int(bundle.graph.inputs[0].size)
    rng = np.random.default_rng(seed)
    arrays = [(rng.random((int(steps), n)) < SYNTHETIC_RATE).astype(np.int64) for _ in range(int(count))]
    return arrays, [f"spikes-{i}" for i in range(int(count))]
