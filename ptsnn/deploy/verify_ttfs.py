"""Verification of a TTFS bundle: ReLU twin <-> quantized TTFS PyTorch <-> fast simulator (<-> Lava).

Everything is compared as **first-spike steps per neuron** (chip time, global clock; ``ptsnn.train.ttfs_chip``):

* ``twin~quantized``: the float ReLU twin's activations put on the grid (``t = T_n + K - round(x / Δ_n)``,
  clipped to the window) against the integer recurrence. Not expected to be exact (the grid rounds); reported
  as % agreement, and its first difference is shown;
* ``quantized==fast``: ``IntegerTTFS.spike_times`` (torch) against ``simulate`` of the bundle's chip graph;
* ``fast==lava``: the same graph in Lava (when a Lava leg is given).

The fixed-point legs must be exact; the first divergence is named (pair, layer, sample, neuron, both steps).
Every fire-once neuron must spike at most once per inference in every backend. :func:`accuracy_vs_k` measures
what the time grid costs: accuracy of the grid twin (equal to the recurrence, exactly) for several K, the ReLU
twin as the ceiling.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field

import numpy as np
import torch

from ptsnn.chip.simulator import simulate
from ptsnn.train import ttfs_chip


@dataclass
class TTFSDivergence:
    pair: str
    layer: str
    sample: int
    neuron: int
    steps: tuple[int, int]  # first-spike step in the two backends (-1: none)


@dataclass
class TTFSVerifyReport:
    layers: list[dict]  # per layer: agreement % per pair, max spikes per neuron per backend
    predictions: dict[str, float]  # backend -> accuracy or agreement with the twin (%)
    divergences: list[TTFSDivergence] = field(default_factory=list)
    fire_once: dict[str, int] = field(default_factory=dict)  # backend -> most spikes of any neuron
    lava_samples: int = 0

    @property
    def exact(self) -> bool:
        return (not [d for d in self.divergences if d.pair != "twin~quantized"]
                and all(v <= 1 for v in self.fire_once.values()))


def _first(pair, layer, a, b) -> TTFSDivergence | None:
    diff = np.argwhere(a != b)
    if not len(diff):
        return None
    s, n = diff[0]
    return TTFSDivergence(pair, layer, int(s), int(n), (int(a[s, n]), int(b[s, n])))


def twin_spike_steps(net, grid, windows: dict, x: torch.Tensor) -> dict[str, np.ndarray]:
    """The float twin's activations as grid spike steps per layer ``[B, N]``: ``q = round(x K / B_n)``
    clipped to ``0..K`` (a max-pool shares its source's window)."""
    with torch.no_grad():
        acts = net.activations(x.to(next(net.parameters()).dtype))
    width = dict(windows)
    out = {}
    for layer in grid.layers:
        if layer.kind == "maxpool":
            width[layer.name] = width[layer.source]
        if layer.kind == "readout" or layer.name not in acts:
            continue
        q = torch.clamp(torch.floor(acts[layer.name].double() * grid.k / float(width[layer.name]) + 0.5), 0, grid.k)
        out[layer.name] = (layer.window_start + grid.k - q).flatten(1).numpy().astype(np.int64)
    return out


def lava_leg(bundle_dir, count: int, timeout_s: float = 900.0, log_dir=None):
    """The Lava leg for :func:`verify_ttfs`: the bundle's chip graph in Lava ``fixed_pt``
    (``ptsnn.deploy.lava_runner.run_bundle``) for the first ``count`` samples. Returns a callable
    ``payloads -> {population: spikes [b, T, N], "readout": potentials [b, classes]}``."""
    from ptsnn.deploy.lava_runner import run_bundle

    def run(payloads: dict) -> dict:
        n = min(int(count), len(next(iter(payloads.values()))))
        steps = next(iter(payloads.values())).shape[1]
        per = [{name: a[i] for name, a in payloads.items()} for i in range(n)]
        outs = run_bundle(bundle_dir, per, [steps] * n, timeout_s=timeout_s, log_dir=log_dir)
        keys = [k for k in outs[0] if not k.startswith("v_final/")]
        result = {k: np.stack([o[k].T for o in outs]) for k in keys}  # [size, T] -> [b, T, size]
        result["v_final"] = {k.split("/", 1)[1]: np.stack([o[k] for o in outs]) for k in outs[0]
                             if k.startswith("v_final/")}
        return result

    return run


def verify_ttfs(graph, net, grid, windows: dict, x: torch.Tensor, labels=None, lava=None) -> TTFSVerifyReport:
    """``lava``: optional callable ``payloads -> {population: spikes [b, T, N], "v_final": {population:
    voltage after the last step [b, N]}}`` for the first ``b`` samples (:func:`lava_leg`)."""
    q0 = grid.quantize_input(x).numpy().astype(np.int64)
    quant = grid.spike_times(x)
    payloads = ttfs_chip.payloads(graph, q0)
    fast = simulate(graph, payloads, record_voltage=True)
    twin = twin_spike_steps(net, grid, windows, x)
    lava_spikes = lava(payloads) if lava is not None else None
    report = TTFSVerifyReport([], {})
    nl = report.lava_samples = len(next(iter(lava_spikes["v_final"].values()))) if lava_spikes is not None else 0
    most = {"quantized": 0, "fast": 0, **({"lava": 0} if lava_spikes is not None else {})}
    for layer in grid.layers:
        if layer.kind == "readout":
            continue
        q_steps = quant[layer.name].flatten(1).numpy().astype(np.int64)
        most["quantized"] = max(most["quantized"], int(quant[layer.name + ".count"].max()))
        f = fast.spikes[layer.name]
        most["fast"] = max(most["fast"], int(f.sum(1).max()))
        f_steps = ttfs_chip.first_spike_steps(f)
        row = dict(layer=layer.name, neurons=q_steps.shape[1])
        pairs = [("twin~quantized", twin.get(layer.name), q_steps), ("quantized==fast", q_steps, f_steps)]
        if lava_spikes is not None:
            lv = np.asarray(lava_spikes[layer.name])
            most["lava"] = max(most["lava"], int(lv.sum(1).max()))
            pairs.append(("fast==lava", f_steps[:nl], ttfs_chip.first_spike_steps(lv)))
        for pair, a, b in pairs:
            if a is None:
                row[pair] = None
                continue
            row[pair] = 100.0 * float((a == b).mean())
            d = _first(pair, layer.name, a, b)
            if d is not None and not any(x.pair == pair for x in report.divergences):
                report.divergences.append(d)
        report.layers.append(row)
    report.fire_once = most
    potential = ttfs_chip.readout_potential(graph, fast.voltages)
    if not np.array_equal(potential, quant["output"].numpy().astype(np.int64)):
        report.divergences.append(TTFSDivergence("quantized==fast", graph.meta["readout"]["population"], 0, 0,
                                                 (0, 0)))
    if lava_spikes is not None:  # the read step is the last step: the voltage after the run is the readout's
        r = graph.meta["readout"]
        lava_pot = np.asarray(lava_spikes["v_final"][r["population"]], np.int64) >> int(r["activation_shift"])
        d = _first("fast==lava", r["population"], potential[:nl], lava_pot)
        if d is not None:
            report.divergences.append(d)
    with torch.no_grad():
        twin_pred = net(x.to(next(net.parameters()).dtype)).argmax(1).numpy()
    preds = {"relu_twin": twin_pred, "quantized": quant["output"].argmax(1).numpy(), "fast": potential.argmax(1)}
    ref = np.asarray(labels) if labels is not None else twin_pred
    report.predictions = {k: 100.0 * float((v == ref).mean()) for k, v in preds.items()}
    return report


def accuracy_vs_k(net, x: torch.Tensor, labels, ks=(1, 2, 4, 8, 16, 32), windows: dict | None = None) -> dict:
    """Accuracy (% of ``labels``; without labels: agreement with the ReLU twin) of the grid network at each K,
    the ReLU twin's accuracy as the ceiling. ``windows``: the checkpoint's widths B_n (they do not depend on
    K: only the grid unit B_n / K does); without them they are calibrated on ``x``."""
    from ptsnn.train.ttfs import calibrate_windows
    from ptsnn.train.ttfs_integer import quantize_ttfs

    dtype = next(net.parameters()).dtype
    with torch.no_grad():
        twin_pred = net(x.to(dtype)).argmax(1).numpy()
    ref = np.asarray(labels) if labels is not None else twin_pred
    out = {"k": [], "accuracy": [], "relu_twin": 100.0 * float((twin_pred == ref).mean()),
           "measure": "accuracy" if labels is not None else "agreement with the ReLU twin"}
    for k in ks:
        at_k = copy.deepcopy(net)
        at_k.cfg = dataclasses.replace(net.cfg, steps_per_window=int(k))
        grid = quantize_ttfs(at_k, dict(windows) if windows else calibrate_windows(at_k, x.to(dtype)))
        pred = grid.twin(x)["output"].argmax(1).numpy()
        out["k"].append(int(k))
        out["accuracy"].append(100.0 * float((pred == ref).mean()))
    return out


def plot_accuracy_vs_k(curve: dict, path) -> None:
    """accuracy vs steps per window, the ReLU twin as a dashed ceiling (written atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ptsnn.fileio import atomic_output

    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    ax.plot(curve["k"], curve["accuracy"], "o-", label="TTFS on the grid (= chip)")
    ax.axhline(curve["relu_twin"], ls="--", color="grey", label="ReLU twin (ceiling)")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("steps per layer window K")
    ax.set_ylabel(f"{curve['measure']} (%)")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
