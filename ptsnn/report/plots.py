"""The report's pictures as PNG bytes (matplotlib's object API on the Agg canvas: no pyplot, no GUI backend).

* ``raster``: spike raster per layer for one utterance (and its graded host payload);
* ``firing_rate``: firing rate per layer (bar chart);
* ``voltage_histograms``: post-reset membrane potential per layer in units of the threshold (silence and
  saturation show as mass far below 1 or as a large "spiked" share);
* ``energy``: energy per utterance by component for every profile (stacked bars), chip part and system.
"""

from __future__ import annotations

import io
import math

import numpy as np

PLOT_TITLES = {
    "raster": "Spike raster per layer for one utterance",
    "firing_rate": "Firing rate per layer",
    "voltage_histograms": "Membrane potential per layer, in units of the threshold",
    "energy": "Energy per utterance by component and profile",
    "first_spike_times": "TTFS: first-spike times per layer, within each layer's window",
}
COMPONENT_LABELS = {"synaptic_ops": "synaptic operations", "neuron_updates": "neuron updates",
                    "spike_traffic": "spike traffic"}
COMPONENT_COLORS = {"synaptic_ops": "#4c72b0", "neuron_updates": "#55a868", "spike_traffic": "#c44e52",
                    "host": "#8172b2", "paper": "#dd8452"}


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def raster_plot(name: str, payload: np.ndarray | None, spikes: dict[str, np.ndarray]) -> bytes:
    layers = list(spikes)
    panels = ([("input (graded payload)", None)] if payload is not None else []) + [(k, spikes[k]) for k in layers]
    heights = [min(max(1.0, math.sqrt(max((payload if s is None else s).shape[1], 1)) / 3), 4.0) for _, s in panels]
    fig = _figure(10, min(1.5 + 1.2 * sum(heights), 36))
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False, gridspec_kw=dict(height_ratios=heights))[:, 0]
    steps = (payload if payload is not None else next(iter(spikes.values()))).shape[0]
    for ax, (label, s) in zip(axes, panels):
        if s is None:
            lim = max(int(np.abs(payload).max(initial=0)), 1)
            im = ax.imshow(payload.T, aspect="auto", interpolation="nearest", cmap="coolwarm", vmin=-lim, vmax=lim,
                           extent=(-0.5, steps - 0.5, payload.shape[1] - 0.5, -0.5))
            fig.colorbar(im, ax=ax, label="payload (integer)", pad=0.01)
            ax.set_ylabel("channel")
        else:
            t, n = np.nonzero(s)
            ax.scatter(t, n, s=4, marker="|", color="k", linewidths=0.8, label=f"spikes ({len(t):,})")
            ax.set_ylim(-0.5, s.shape[1] - 0.5)
            ax.set_ylabel("neuron")
            ax.legend(loc="upper right", fontsize=7, framealpha=0.8, handlelength=1)
        ax.set_title(label, fontsize=9, loc="left")
        ax.set_xlim(-0.5, steps - 0.5)
    axes[-1].set_xlabel("time step (chip step)")
    fig.suptitle(f"Spike raster per layer, utterance {name}")
    return _png(fig)


def firing_rate_plot(layers: list[dict], utterances: int) -> bytes:
    pops = [r for r in layers if r["kind"] == "population"]
    fig = _figure(max(6, 0.7 * len(pops) + 2), 4.5)
    ax = fig.add_subplot()
    x = np.arange(len(pops))
    rates = [r["firing_rate"] or 0.0 for r in pops]
    bars = ax.bar(x, rates, color="#4c72b0", label=f"mean over {utterances} utterance(s)")
    for b, v in zip(bars, rates):
        ax.annotate(f"{v:.3f}", (b.get_x() + b.get_width() / 2, v), ha="center", va="bottom", fontsize=7)
    ax.axhline(0.9, color="#c44e52", ls="--", lw=1, label="saturation (90 % of steps)")
    ax.set_xticks(x, [r["name"] for r in pops], rotation=45, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("layer (population)")
    ax.set_ylabel("firing rate (spikes per neuron per step)")
    ax.set_title("Firing rate per layer")
    ax.legend(loc="upper right", fontsize=8)
    return _png(fig)


def voltage_plot(histograms: dict[str, dict]) -> bytes:
    names = list(histograms)
    cols = min(3, len(names))
    rows = math.ceil(len(names) / cols)
    fig = _figure(4.2 * cols, 3.0 * rows + 0.8)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat[len(names):]:
        ax.set_visible(False)
    for ax, name in zip(axes.flat, names):
        h = histograms[name]
        edges = np.asarray(h["bin_edges"])
        total = sum(h["counts"]) + h["below_range"] + h["spiked"]
        share = 100.0 * np.asarray(h["counts"]) / max(total, 1)
        ax.stairs(share, edges, fill=True, color="#4c72b0", alpha=0.8, label="not spiking (post-reset v)")
        width = edges[1] - edges[0]
        spiked = 100.0 * h["spiked"] / max(total, 1)
        ax.bar(edges[-1] + 2 * width, spiked, width=2 * width, color="#dd8452",
               label=f"spiked (v > threshold): {spiked:.1f} %")
        ax.axvline(1.0, color="#c44e52", ls="--", lw=1, label="threshold")
        below = 100.0 * h["below_range"] / max(total, 1)
        ax.set_title(f"{name}" + (f" ({below:.1f} % below {edges[0]:g})" if below else ""), fontsize=9)
        ax.set_xlabel("membrane potential / threshold")
        ax.set_ylabel("neuron-steps (%)")
        ax.legend(fontsize=6, loc="upper left")
    fig.suptitle("Membrane potential per layer (all utterances, all steps), in units of the threshold")
    return _png(fig)


def energy_plot(data: dict) -> bytes:
    profiles = data["profiles"]
    names = list(profiles)
    paper = data["estimate"]["paper"]
    host = data["host"]
    fig = _figure(max(11, 2.4 * len(names) + 5), 6.0)
    ax_chip, ax_sys = fig.subplots(1, 2)
    labels = [n + ("*" if profiles[n]["energy"]["uses_proxy"] else "") for n in names]
    x = np.arange(len(names))

    # left: the chip part, stacked by component (native view), plus the paper-style bar
    bottom = np.zeros(len(names))
    for comp in ("synaptic_ops", "neuron_updates", "spike_traffic"):
        vals = []
        for n in names:
            c = next(c for c in profiles[n]["energy"]["components"] if c["component"] == comp)
            vals.append((c["per_utterance_pj"] or 0.0) / 1e6)
        ax_chip.bar(x, vals, bottom=bottom, color=COMPONENT_COLORS[comp], label=COMPONENT_LABELS[comp])
        bottom += np.asarray(vals)
    for i, n in enumerate(names):
        missing = profiles[n]["energy"]["not_modelled"]
        if missing:
            ax_chip.annotate("n/m:\n" + "\n".join(m.replace("_", " ") for m in missing), (i, bottom[i]),
                             ha="center", va="bottom", fontsize=6)
    ticks, tick_labels = list(x), list(labels)
    if paper is not None:
        ax_chip.bar(len(names), paper["per_utterance_pj"] / 1e6, color=COMPONENT_COLORS["paper"],
                    label="paper-style estimate (45 nm: E_MAC x MACs + E_AC x ACs)")
        ticks.append(len(names))
        tick_labels.append("paper (45 nm)")
    ax_chip.set_xticks(ticks, tick_labels, rotation=20, ha="right")
    ax_chip.set_xlabel("hardware profile (* = uses proxy figures)")
    ax_chip.set_ylabel("energy per utterance (uJ)")
    ax_chip.set_title("chip part (SNN), by component")
    top = max([*bottom, paper["per_utterance_pj"] / 1e6 if paper is not None else 0.0, 0.0])
    ax_chip.set_ylim(0, top * 1.35 if top > 0 else 1.0)  # room for the n/m notes above the bars

    # right: chip part next to the host part (log scale: the host front end is often far larger)
    chip = [(profiles[n]["energy"]["per_utterance_pj"] or 0.0) / 1e6 for n in names]
    host_uj = host["per_utterance_pj"] / 1e6
    w = 0.38
    ax_sys.bar(x - w / 2, chip, w, color="#606060", label="chip part (native, this profile)")
    ax_sys.bar(x + w / 2, [host_uj] * len(names), w, color=COMPONENT_COLORS["host"], hatch="//",
               label=f"host part ({host['profile']}: front end, LayerNorm, tanh)")
    for i in range(len(names)):
        for dx, v in ((-w / 2, chip[i]), (w / 2, host_uj)):
            if v > 0:
                ax_sys.annotate(f"{v:.3g}", (i + dx, v), ha="center", va="bottom", fontsize=7)
    ax_sys.set_yscale("log")
    ax_sys.set_xticks(x, labels, rotation=20, ha="right")
    ax_sys.set_xlabel("hardware profile (* = uses proxy figures)")
    ax_sys.set_ylabel("energy per utterance (uJ, log scale)")
    ax_sys.set_title("system: chip part and host part")
    ax_sys.margins(y=0.2)
    handles, names_ = [], []
    for ax in (ax_chip, ax_sys):
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in names_:
                handles.append(h)
                names_.append(lab)
    fig.legend(handles, names_, loc="outside lower center", ncol=3, fontsize=8)
    unfit = data.get("not_fitting") or {}
    title = "Energy per utterance (native estimates; n/m = not modelled by the profile)"
    if unfit:
        title += "\n" + "; ".join(f"{n}: does not fit ({u['rule']})" for n, u in unfit.items())
    fig.suptitle(title)
    return _png(fig)


def first_spike_plot(ttfs: dict) -> bytes:
    """One panel per fire-once layer: neurons per first-spike offset in the window (0 = t_min, K = t_max,
    the forced spike), with the grid activation q = K - offset on the top axis."""
    layers = ttfs["layers"]
    k = ttfs["steps_per_window"]
    cols = min(3, max(len(layers), 1))
    rows = math.ceil(max(len(layers), 1) / cols)
    fig = _figure(4.2 * cols, 3.0 * rows + 0.8)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat[len(layers):]:
        ax.set_visible(False)
    for ax, r in zip(axes.flat, layers):
        h = r["first_spike"]
        counts = np.asarray(h["counts"], np.float64)
        share = 100.0 * counts / max(counts.sum(), 1)
        colors = ["#4c72b0"] * k + ["#dd8452"]
        ax.bar(h["offsets"], share, width=0.85, color=colors)
        ax.set_xlim(-0.6, k + 0.6)
        ax.set_xlabel(f"first-spike step - window start (window {r['window'][0]}..{r['window'][1]})")
        ax.set_ylabel("neurons x inferences (%)")
        top = ax.secondary_xaxis("top", functions=(lambda x, k=k: k - x, lambda q, k=k: k - q))
        top.set_xlabel("activation q", fontsize=7)
        outside = h["early"] + h["late"]
        ax.set_title(f"{r['name']} ({r['kind']}): max {r['max_spikes_per_neuron']} spike(s)/neuron"
                     + (f", {outside} outside" if outside else ""), fontsize=9,
                     color="#222" if r["fire_once_ok"] else "#c44e52")
    fig.suptitle(f"First-spike times per layer (K = {k}; orange: forced spike at t_max, activation 0)")
    return _png(fig)


def render_all(report) -> dict[str, bytes]:
    data, activity = report.data, report.activity
    images = {}
    if activity.raster:
        images["raster"] = raster_plot(activity.raster_name, activity.raster_payload, activity.raster)
    images["firing_rate"] = firing_rate_plot(data["layers"], data["data"]["utterances"])
    if data.get("voltage_histograms"):
        images["voltage_histograms"] = voltage_plot(data["voltage_histograms"])
    images["energy"] = energy_plot(data)
    if data.get("ttfs") and data["ttfs"]["layers"]:
        images["first_spike_times"] = first_spike_plot(data["ttfs"])
    return images
