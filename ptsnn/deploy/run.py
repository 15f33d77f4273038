"""Audio (or features) to emotion label through a bundle, on the fast simulator or Lava's CPU simulation.

Streaming as on hardware: the host sends one payload step per chip step, then ``flush_steps`` empty steps so
the last frames reach the readout; the label is read from the Sigma accumulator after the last step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ptsnn.deploy import readout
from ptsnn.deploy.bundle_io import Bundle, logits_from_readout
from ptsnn.errors import InputError

BACKENDS = ("lava", "fast", "loihi2")


@dataclass
class UtteranceResult:
    name: str
    label: str
    scores: dict[str, float]  # softmax of the logits
    logits: np.ndarray
    steps: int
    spike_counts: dict[str, int]  # per population, over the utterance's window
    spikes: dict[str, np.ndarray] | None = None  # per population [T, N] bool, when asked for


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


FAST_BATCH = 64  # utterances per simulator batch: bounds memory whatever the number of utterances


def chip_run(bundle: Bundle, payloads: list[np.ndarray], backend: str = "fast", timeout_s: float = 600.0,
             keep_spikes: bool = False, log_dir=None, want_spikes: bool = True) -> list[dict]:
    """Run payloads ``[steps_i, F]`` through the chip part. Returns per utterance ``{"steps", "readout",
    "spikes": {population: [T, N] bool}}`` with T = steps_i + flush. With ``want_spikes=False`` (and not
    ``keep_spikes``) the fast backend streams and returns ``"spike_counts"`` per population instead."""
    steps = [len(p) + bundle.flush_steps for p in payloads]
    if backend == "fast":
        from ptsnn.chip.simulator import simulate_batches

        name, is_acc = readout.readout_name(bundle.graph)  # an accumulator, or a NIR graph's output spikes
        if not keep_spikes and not want_spikes:  # readouts and spike counts only, batch by batch
            from ptsnn.chip.simulator import simulate_stream

            res = simulate_stream(bundle.graph, payloads, FAST_BATCH)
            return [dict(steps=int(s), readout=res.readouts[name][i] if is_acc else
                         res.spike_counts[name][i].astype(np.float64),
                         spike_counts={k: int(v[i].sum()) for k, v in res.spike_counts.items()})
                    for i, s in enumerate(res.steps)]
        out = []
        for s_batch, run in simulate_batches(bundle.graph, payloads, FAST_BATCH):
            totals = readout.totals_fast(bundle.graph, run, np.asarray(s_batch))
            out += [dict(steps=int(s), readout=totals[i], spikes={k: v[i, :s] for k, v in run.spikes.items()})
                    for i, s in enumerate(s_batch)]
        return out
    if backend == "lava":
        from ptsnn.deploy import lava_runner

        outs = lava_runner.run_bundle(bundle.path, payloads, steps, timeout_s=timeout_s, log_dir=log_dir)
        results = []
        for out, s in zip(outs, steps):
            spikes = {p.name: out[p.name].T[:s].astype(bool) for p in bundle.graph.populations}
            results.append(dict(steps=s, readout=readout.totals_lava(bundle.graph, out, s), spikes=spikes))
        return results
    if backend == "loihi2":
        from ptsnn.convert.loihi2_script import require_lava_loihi

        require_lava_loihi()  # a clear one-line error without Intel's lava-loihi
        raise InputError("--backend loihi2: run the bundle's run_loihi2.py on the Loihi 2 host "
                         "(python run_loihi2.py PAYLOAD.npy); ptsnn does not drive remote systems itself")
    raise ValueError(f"unknown backend {backend!r}")


def classify(bundle: Bundle, payloads: list[np.ndarray], names: list[str], backend: str = "fast",
             timeout_s: float = 600.0, keep_spikes: bool = False, log_dir=None) -> list[UtteranceResult]:
    runs = chip_run(bundle, payloads, backend, timeout_s, keep_spikes, log_dir, want_spikes=keep_spikes)
    results = []
    for name, r in zip(names, runs):
        logits = logits_from_readout(bundle, r["readout"], np.asarray(r["steps"]))
        probs = _softmax(logits)
        results.append(UtteranceResult(
            name=name, label=bundle.classes[int(np.argmax(logits))],
            scores={c: float(p) for c, p in zip(bundle.classes, probs)}, logits=logits, steps=int(r["steps"]),
            spike_counts=r["spike_counts"] if "spike_counts" in r else {k: int(v.sum()) for k, v in r["spikes"].items()},
            spikes=r["spikes"] if keep_spikes else None))
    return results
