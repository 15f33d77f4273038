"""``ptsnn verify`` for bundles converted from a NIR graph (``-c model.nir``).

There is no PyTorch model behind such a bundle, so the chain is the chip part alone: the fast simulator
against Lava's fixed-point CPU simulation, spike for spike in every population and the readout, on the
given chip inputs (a folder of ``.npy`` spike arrays, or seeded random spike trains for ``synthetic``).
How the NIR graph itself maps to the chip (parameters, dt, rounding) is checked at import
(``ptsnn.convert.nir_import``) and by the NIR tests against norse and snnTorch.
"""

from __future__ import annotations

import numpy as np

from ptsnn.deploy.verify import Divergence, VerifyReport, _first_divergence, run_fast_and_lava


def nir_bundle_inputs(bundle, host, data: str, limit: int, max_frames: int) -> tuple[list[np.ndarray], list[str]]:
    from pathlib import Path

    from ptsnn.deploy.direct_input import synthetic_spike_inputs
    from ptsnn.errors import InputError

    if data == "synthetic":
        arrays, names = synthetic_spike_inputs(bundle, limit, max_frames)
    else:
        folder = Path(data)
        files = sorted(folder.glob("*.npy"))[:limit] if folder.is_dir() else []
        if not files:
            raise InputError(f"--data {data}: expected 'synthetic' or a folder of .npy chip inputs [steps, N]")
        from ptsnn import safeio

        arrays = [safeio.load_npy(f, "chip input", kinds="biuf", ndim=2)[:max_frames] for f in files]
        names = [f.name for f in files]
    return [host(a) for a in arrays], names


def verify_chip(bundle, payloads: list[np.ndarray], names: list[str], lava_count: int = 2,
                timeout_s: float = 600.0, log_dir=None, progress=None) -> VerifyReport:
    step = progress or (lambda msg: None)
    fast, lava = run_fast_and_lava(bundle, payloads, lava_count, timeout_s, log_dir, step)
    divergences, rows = [], []
    for pop in bundle.graph.populations:
        agree, found = [], None
        counts = {"fast": 0, "lava": 0}
        for i, r in enumerate(fast):
            counts["fast"] += int(r["spikes"][pop.name].sum())
            if i < len(lava):
                a, b = r["spikes"][pop.name], lava[i]["spikes"][pop.name]
                counts["lava"] += int(b.sum())
                agree.append(float((a == b).mean()))
                hit = _first_divergence(a, b)
                if hit and found is None:
                    found = Divergence("fast==lava", pop.name, names[i], *hit)
        if found:
            divergences.append(found)
        rows.append({"layer": pop.name, "neurons": pop.size, "spikes_float": 0, "spikes_quantized": counts["fast"],
                     "spikes_fast": counts["fast"], "spikes_lava": counts["lava"], "float~quantized": None,
                     "quantized==fast": None, "fast==lava": 100 * float(np.mean(agree)) if agree else None})
    for i, r in enumerate(lava):
        if not np.array_equal(r["readout"], fast[i]["readout"]):
            divergences.append(Divergence("fast==lava", "readout", names[i], int(r["steps"]) - 1, -1))
    pred_fast = [int(np.argmax(r["readout"])) for r in fast]
    predictions = {"fast": dict(utterances=len(fast), agree_with_quantized=100.0)}
    if lava:
        pred_lava = [int(np.argmax(r["readout"])) for r in lava]
        predictions["lava"] = dict(utterances=len(lava),
                                   agree_with_quantized=100 * float(np.mean(np.equal(pred_lava, pred_fast[: len(lava)]))))
    return VerifyReport(rows, predictions, divergences, None, len(lava))
