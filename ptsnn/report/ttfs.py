"""The TTFS part of a report: fire-once check, first-spike times per layer, latency and energy per inference
next to TNAS-ER's published figures. Built from the same :class:`ActivityCollector` and native energy
estimates as every report (``build_report`` adds it as ``data["ttfs"]`` when the graph is a TTFS graph).

First-spike times are given relative to each layer's window ``[T_n, T_n + K]`` (``graph.meta["layers"]``,
docs/ttfs.md): offset ``k = step - T_n`` in ``0..K`` is the grid activation ``q = K - k`` (``k = 0``: the
largest activation, at ``t_min``; ``k = K``: the forced spike at ``t_max``, activation 0). A spike before
``T_n`` or after ``T_n + K`` breaks the code and is counted apart (``early`` / ``late``).
"""

from __future__ import annotations

import numpy as np

from ptsnn.chip.ir import ChipGraph, FireOncePopulation
from ptsnn.report.collect import ActivityCollector
from ptsnn.report.energy import TNAS_ER_REFERENCE


def is_ttfs(graph: ChipGraph) -> bool:
    return (graph.meta or {}).get("model_kind") == "ttfs"


def _window_histogram(steps_hist: np.ndarray, start: int, k: int) -> dict:
    """Neurons per window offset ``0..K`` (index = offset) and the spikes outside the window."""
    h = np.asarray(steps_hist, np.int64)
    inside = np.zeros(k + 1, np.int64)
    lo, hi = max(start, 0), min(start + k + 1, len(h))
    if hi > lo:
        inside[lo - start: hi - start] = h[lo:hi]
    return dict(offsets=list(range(k + 1)), counts=[int(c) for c in inside],
                early=int(h[:max(start, 0)].sum()), late=int(h[start + k + 1:].sum()) if start + k + 1 < len(h) else 0)


def ttfs_section(graph: ChipGraph, activity: ActivityCollector, profiles: dict) -> dict:
    """``data["ttfs"]``: per fire-once layer spikes per neuron and first-spike histograms; per profile the
    latency (``steps x timing.time_step_us``) and chip energy per inference beside TNAS-ER's published ones."""
    meta = graph.meta or {}
    k = int(meta["steps_per_window"])
    windows = {layer["name"]: int(layer["window_start"]) for layer in meta.get("layers", [])}
    n = len(activity.utterances)
    layers = []
    for pop in graph.populations:
        if not isinstance(pop, FireOncePopulation):
            continue
        spikes = activity.total(pop.name, "output_spikes")
        multi = activity.total(pop.name, "multi_spike_neurons")
        never = activity.total(pop.name, "never_spiked_neurons")
        most = int(activity.max_spikes.get(pop.name, 0))
        start = windows.get(pop.name, 0)
        hist = _window_histogram(activity.first_spike_steps.get(pop.name, np.zeros(0, np.int64)), start, k)
        counts = np.asarray(hist["counts"], np.float64)
        fired = counts.sum()
        mean_q = float(((k - np.arange(k + 1)) * counts).sum() / fired) if fired else None
        layers.append(dict(
            name=pop.name, kind="maxpool" if pop.vth == 0 else "spiking", neurons=int(pop.size),
            window=[start, start + k], inferences=n, spikes=int(spikes),
            spikes_per_neuron=spikes / (pop.size * n) if n else None, max_spikes_per_neuron=most,
            multi_spike_neurons=int(multi), never_spiked_neurons=int(never), fire_once_ok=most <= 1,
            first_spike=hist, mean_activation=mean_q,
            forced_share=float(counts[k] / fired) if fired else None))
    ref = dict(TNAS_ER_REFERENCE)
    comparison = []
    for name, p in profiles.items():
        lat, e = p["latency"], p["energy"]
        comparison.append(dict(
            profile=name, steps=lat["steps_per_utterance"],
            latency_ms=None if lat["per_utterance_us"] is None else lat["per_utterance_us"] / 1e3,
            latency_from=lat["formula"] + "; " + "; ".join(f"{f['path']} = {f['value']} {f['unit']}"
                                                           f"{' (proxy)' if f['proxy'] else ''}: {f['source']}"
                                                           for f in lat["fields"]) if lat["fields"]
            else "the profile has no timing.time_step_us",
            latency_proxy=bool(lat["uses_proxy"]),
            energy_mj=None if e["per_utterance_pj"] is None else e["per_utterance_pj"] / 1e9,
            energy_proxy=bool(e["uses_proxy"]), not_modelled=list(e["not_modelled"])))
    return dict(
        steps_per_window=k, steps_per_inference=int(meta.get("steps", 0)), layers=layers,
        fire_once_ok=all(r["fire_once_ok"] for r in layers),
        violations=[r["name"] for r in layers if not r["fire_once_ok"]],
        reference=ref, comparison=comparison,
        note="ours: native estimates of this network's chip part per inference (one clip); latency = chip steps "
             "of one inference x the profile's time step; TNAS-ER: a published measurement of another network")
