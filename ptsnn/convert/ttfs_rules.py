"""Design rules of TTFS chip graphs (``graph.meta["model_kind"] == "ttfs"``, ``ptsnn.train.ttfs_chip``).

Each rule re-derives, from the IR integers alone, a condition the grid form needs (docs/ttfs.md, "Integer
form"); the quantizer guarantees them, so they catch graphs edited, hand-built or read from a foreign file.
Every presynaptic neuron and timing channel of a TTFS graph spikes exactly once per inference, which is
what makes these bounds computable from weights:

* ``ttfs_window_delay``: a layer's window starts at least ``K`` (spiking, readout) or 1 (max-pool) steps
  plus the largest synaptic delay of its feed after its source's window; otherwise inputs arrive after the
  layer already decides. Timing channels and the read step lie inside the inference.
* ``ttfs_state_range``: ``|u|`` (every incoming weight once, self-inhibition included) plus ``vth`` stays
  inside the 24-bit current/voltage (``2**17`` in units of 64), and so does the lowest voltage the ramp can
  reach before the spike (negative weights for ``2K`` steps, the hold and release pulses).
* ``ttfs_threshold``: fire-once thresholds within ``numerics.threshold_bits``; the readout's potential can
  never reach its threshold (it must not fire: its voltage is the result).
* ``ttfs_fire_once``: the self-inhibition outweighs the neuron's final current (all inputs and timing
  spikes in), so its voltage falls after its spike and it never fires twice.
"""

from __future__ import annotations

import numpy as np

from ptsnn.chip.ir import ChipGraph, ConvSynapses, CubaPopulation, FireOncePopulation, Synapses

STATE_UNITS = 2**17  # 24-bit state in units of 64


def _violation(rule, layer, limit, value, fix):
    from ptsnn.convert.design_rules import Violation

    return Violation(rule, layer, limit, value, fix)


def is_ttfs(graph: ChipGraph) -> bool:
    return graph.meta.get("model_kind") == "ttfs"


def _dense_weights(e: Synapses) -> np.ndarray:
    """``[target, source]`` effective weights (exponent applied) of a dense group."""
    w = e.weight.astype(np.int64)
    return w * 2.0**e.weight_exp if e.weight_exp < 0 else w << e.weight_exp


def _weight_sums(e) -> tuple[np.ndarray, np.ndarray]:
    """Per target neuron: sum of positive and of |negative| weights of the synapses that exist (a conv's taps
    on padding are none), without building a conv's dense matrix."""
    if isinstance(e, ConvSynapses):
        from ptsnn.chip.synapses import conv2d_exact

        ones = np.ones((1, *e.in_shape), np.int64)
        conv = lambda k: conv2d_exact(ones, k, e.stride, e.padding, e.dilation, e.groups).reshape(-1)  # noqa: E731
        return conv(np.clip(e.weight, 0, None)), conv(np.clip(-e.weight, 0, None))
    w = _dense_weights(e)
    return np.clip(w, 0, None).sum(1), np.clip(-w, 0, None).sum(1)


def _timing_by_source(graph: ChipGraph, layer: str) -> dict[str, np.ndarray]:
    """Per-neuron weight of each named timing source (alpha, hold_on, ...) into ``layer``."""
    timing_input = graph.meta.get("timing_input", "timing")
    out = {}
    for e in graph.incoming(layer):
        if e.source != timing_input:
            continue
        w = _dense_weights(e)
        for ch, c in enumerate(graph.meta.get("timing", [])):
            if c.get("layer") == layer and ch < w.shape[1] and np.any(w[:, ch]):
                out[c["source"]] = out.get(c["source"], 0) + w[:, ch]
    return out


def _meta_layers(graph: ChipGraph) -> list[dict]:
    return [l for l in graph.meta.get("layers", []) if isinstance(l, dict)]


def rule_window_delay(graph: ChipGraph, profile, **_):
    if not is_ttfs(graph):
        return []
    k = int(graph.meta.get("steps_per_window", 0))
    steps = int(graph.meta.get("steps", 0))
    starts = {"input": 0, **{l["name"]: int(l["window_start"]) for l in _meta_layers(graph)}}
    timing_input = graph.meta.get("timing_input", "timing")
    out = []
    for l in _meta_layers(graph):
        feeds = [e for e in graph.incoming(l["name"]) if e.source != timing_input]
        if not feeds or l["source"] not in starts:
            out.append(_violation("ttfs_window_delay", l["name"], "a feed from its source", "no feed",
                                  "rebuild the graph from the checkpoint"))
            continue
        delay = max(e.max_delay for e in feeds)
        need = (1 if l["kind"] == "maxpool" else k) + delay
        lag = starts[l["name"]] - starts[l["source"]]
        if lag < need:
            out.append(_violation("ttfs_window_delay", l["name"], f"window lag {need} steps (K={k} + delay {delay})",
                                  f"window starts {lag} steps after {l['source']}'s",
                                  "remove synaptic delays or widen the windows (steps_per_window)"))
    bad = [c for c in graph.meta.get("timing", []) if not 0 <= int(c.get("step", -1)) < steps]
    read = graph.meta.get("readout", {}).get("step", -1)
    if bad or not 0 <= int(read) < steps:
        out.append(_violation("ttfs_window_delay", "timing", f"steps 0..{steps - 1} of one inference",
                              f"timing/read step outside ({len(bad)} channel(s), read step {read})",
                              "rebuild the graph from the checkpoint"))
    return out


def _feed_sums(graph: ChipGraph, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Per neuron: sum of positive and of |negative| feed weights (timing excluded)."""
    timing_input = graph.meta.get("timing_input", "timing")
    pos = neg = 0
    for e in graph.incoming(name):
        if e.source == timing_input:
            continue
        p, n = _weight_sums(e)
        pos, neg = pos + p, neg + n
    return np.asarray(pos, np.int64), np.asarray(neg, np.int64)


def rule_state_range(graph: ChipGraph, profile, **_):
    if not is_ttfs(graph):
        return []
    k = int(graph.meta.get("steps_per_window", 0))
    out = []
    for p in graph.populations:
        pos, neg = _feed_sums(graph, p.name)
        t = _timing_by_source(graph, p.name)
        # a pulse pair (hold_on/off, release_on/off) cancels one step later: it counts once
        absolute = sum((np.abs(v) for n, v in t.items() if not n.endswith("_off")), np.zeros(p.size, np.int64))
        inhibit = -p.inhibition() if isinstance(p, FireOncePopulation) else 0
        u_bound = int((pos + neg + absolute).max(initial=0)) + inhibit
        alpha = np.abs(t.get("alpha", 0))
        hold = np.abs(t.get("hold_on", 0))
        release = np.abs(t.get("release_on", 0))
        v_low = int(np.max((alpha + neg) * 2 * k + hold + release, initial=0))
        if isinstance(p, FireOncePopulation):
            worst = max(u_bound + p.vth, v_low)  # v climbs to at most vth + u before it resets
        else:  # the readout never fires: its voltage is bounded by its whole ramp over K steps
            worst = max(u_bound, int(np.max((pos + neg + alpha) * k, initial=0)))
        if worst >= STATE_UNITS:
            out.append(_violation("ttfs_state_range", p.name, f"{STATE_UNITS - 1} (24-bit state in units of 64)",
                                  f"current/voltage bound {worst}", "lower steps_per_window (K) or the layer's weight scale"))
    return out


def rule_threshold(graph: ChipGraph, profile, **_):
    if not is_ttfs(graph):
        return []
    bits = profile.value("numerics.threshold_bits") if profile is not None else None
    limit = 2 ** int(bits or 17) - 1
    k = int(graph.meta.get("steps_per_window", 0))
    out = []
    readout = graph.meta.get("readout", {}).get("population")
    for p in graph.populations:
        if p.name == readout and type(p) is CubaPopulation:
            pos, neg = _feed_sums(graph, p.name)
            alpha = np.abs(_timing_by_source(graph, p.name).get("alpha", 0))
            bound = int(np.max((pos + neg + alpha) * k, initial=0))
            if bound >= p.vth:
                out.append(_violation("ttfs_threshold", p.name, f"readout threshold {p.vth}",
                                      f"potential bound {bound}", "lower the readout's weight scale"))
        elif p.vth > limit:
            out.append(_violation("ttfs_threshold", p.name, f"{limit} (numerics.threshold_bits)",
                                  f"threshold mantissa {p.vth}", "lower steps_per_window (K)"))
    return out


def rule_fire_once(graph: ChipGraph, profile, **_):
    if not is_ttfs(graph):
        return []
    out = []
    for p in graph.populations:
        if not isinstance(p, FireOncePopulation):
            continue
        final = sum((np.subtract(*_weight_sums(e)) for e in graph.incoming(p.name)), np.zeros(p.size, np.int64))
        need = int(final.max(initial=0)) + 1
        if -p.inhibition() < need:
            out.append(_violation("ttfs_fire_once", p.name, f"self-inhibition {-p.inhibition()}",
                                  f"final current {need - 1} + 1 needed",
                                  "raise inhibit_weight/inhibit_exp (rebuild from the checkpoint)"))
    return out


RULES = (rule_window_delay, rule_state_range, rule_threshold, rule_fire_once)
__all__ = ["RULES", "is_ttfs", "Synapses"]
