"""``ptsnn run`` for TTFS bundles: a sequence folder of numbered frames or an AEDAT4 recording -> label.

Host part (the bundle's ``frontend`` and ``graph.meta``): read the sequence (``ptsnn.data.eye`` readers),
encode the clip (``encode_clip``), clip and quantize to the grid (``q0``), build the input and timing spike
payloads; chip part: the chip graph in the fast simulator or in Lava; host again: the readout voltage
``>> 6`` divided by its scale are the logits. A folder gives grey frames (``channels="frame"``), a
recording gives ON/OFF event channels (``channels="event"``); the bundle's network must have been trained
on that layout (``--set data.channels=...``), else a one-line error says which it expects.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ptsnn.chip.simulator import simulate
from ptsnn.deploy.ttfs_inputs import grid_input, sequence_clips
from ptsnn.errors import InputError
from ptsnn.train import ttfs_chip
from ptsnn.train.ttfs_config import TTFSConfig


@dataclass
class TTFSRunResult:
    name: str
    label: str
    logits: list[float]
    first_spikes: dict[str, int]  # layer -> neurons that spiked
    max_spikes_per_neuron: int


def classify_sequences(bundle, paths: list[Path], backend: str = "fast", timeout_s: float = 600.0,
                       log_dir=None) -> list[TTFSRunResult]:
    graph = bundle.graph
    cfg = TTFSConfig.from_dict(graph.meta["config"])
    q0 = grid_input(sequence_clips([Path(p) for p in paths], cfg).x, cfg)
    payloads = ttfs_chip.payloads(graph, q0)
    r = graph.meta["readout"]
    if backend == "fast":
        run = simulate(graph, payloads, record_voltage=True)
        spikes, potential = run.spikes, ttfs_chip.readout_potential(graph, run.voltages)
    elif backend == "lava":
        from ptsnn.deploy.verify_ttfs import lava_leg

        out = lava_leg(bundle.path, len(paths), timeout_s=timeout_s, log_dir=log_dir)(payloads)
        spikes = {k: v for k, v in out.items() if k != "v_final"}
        potential = np.asarray(out["v_final"][r["population"]], np.int64) >> int(r["activation_shift"])
    else:
        raise InputError(f"--backend {backend}: TTFS bundles run on fast or lava")
    logits = potential / float(r["scale"])
    classes = list(graph.meta.get("classes") or range(logits.shape[1]))
    results = []
    fire_once = [p.name for p in graph.populations if p.name != r["population"]]
    for i, p in enumerate(paths):
        per = {name: int((np.asarray(spikes[name][i]).sum(0) > 0).sum()) for name in fire_once}
        most = max(int(np.asarray(spikes[name][i]).sum(0).max()) for name in fire_once)
        results.append(TTFSRunResult(Path(p).name, str(classes[int(np.argmax(logits[i]))]),
                                     [float(v) for v in logits[i]], per, most))
    return results
