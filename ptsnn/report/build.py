"""Assemble the report document (JSON-able dict, ``schema_version`` 2, see docs/report.md) and write it."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from ptsnn.chip.ir import ChipGraph, CubaPopulation, HostInput
from ptsnn.errors import InputError
from ptsnn.fileio import atomic_write_bytes as atomic_write
from ptsnn.report.collect import (
    ActivityCollector,
    collect_from_backend,
    collect_from_runs,
    dense_synapses,
    layer_kind,
)
from ptsnn.report.energy import COMPONENTS, HOPS_PER_MESSAGE, PAPER_PROFILE, native_energy, paper_estimate
from ptsnn.report.host import host_report
from ptsnn.report.metrics import compute_metrics
from ptsnn.report.ttfs import is_ttfs, ttfs_section

SCHEMA_VERSION = 2  # 2: profiles the graph does not fit move to ``not_fitting`` (no energy figures)
ESTIMATES = ("native", "paper")
FORMATS = ("json", "md", "html")
CHIP_COUNTERS = ("input_events", "effective_macs", "effective_acs", "synaptic_ops", "dense_ops", "membrane_updates",
                 "active_updates", "idle_updates", "paper_macs", "paper_acs")


@dataclass
class Report:
    data: dict  # the JSON document
    activity: ActivityCollector

    def to_json(self) -> str:
        return json.dumps(self.data, indent=1, allow_nan=False) + "\n"

    def write(self, out_dir: str | os.PathLike, formats=FORMATS) -> list[Path]:
        """Write ``report.json`` / ``report.md`` / ``report.html`` (+ ``plots/*.png`` for md and html) atomically."""
        unknown = [f for f in formats if f not in FORMATS]
        if unknown:
            raise InputError(f"--format {','.join(unknown)}: choose from {','.join(FORMATS)}")
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        written: list[Path] = []
        images: dict[str, bytes] = {}
        if "md" in formats or "html" in formats:
            from ptsnn.report.plots import render_all

            images = render_all(self)
            (out / "plots").mkdir(exist_ok=True)
            for name, png in images.items():
                written.append(atomic_write(out / "plots" / f"{name}.png", png))
        if "json" in formats:
            written.append(atomic_write(out / "report.json", self.to_json().encode()))
        if "md" in formats:
            from ptsnn.report.markdown import render_markdown

            written.append(atomic_write(out / "report.md", render_markdown(self.data, list(images)).encode()))
        if "html" in formats:
            from ptsnn.report.html import render_html

            written.append(atomic_write(out / "report.html", render_html(self.data, images).encode()))
        return written


def _graph_and_meta(bundle) -> tuple[ChipGraph, dict, str | None]:
    if isinstance(bundle, ChipGraph):
        return bundle, dict(bundle.meta or {}), None
    graph = bundle.graph
    meta = dict(graph.meta or {})
    manifest = getattr(bundle, "manifest", {}) or {}
    meta.setdefault("frontend", manifest.get("frontend"))
    meta.setdefault("classes", manifest.get("classes"))
    meta["converted_for"] = (manifest.get("profile") or {}).get("name")
    return graph, meta, str(bundle.path)


def _load_profiles(profiles) -> list:
    from ptsnn.hw_profiles import list_profiles, load_profile

    names = list(profiles) if profiles else list_profiles()
    loaded, seen = [], set()
    for p in names:
        prof = load_profile(p)
        if prof.name not in seen:
            seen.add(prof.name)
            loaded.append(prof)
    return loaded


def profile_fit(graph: ChipGraph, profile, max_synaptic_input: dict | None = None) -> dict | None:
    """None if ``graph`` maps onto ``profile`` (the design rules and core allocation ``ptsnn-convert --target``
    enforces), else what the report lists instead of energy figures: the first rule broken and every violation."""
    from ptsnn.convert import design_rules

    allocation = design_rules.allocate_cores(graph, profile)
    found = design_rules.check(graph, profile, max_synaptic_input=max_synaptic_input, allocation=allocation)
    if not found:
        return None
    return dict(name=profile.name, kind=profile.profile.kind, description=profile.profile.description,
                rule=found[0].rule, message=found[0].message(),
                rules=sorted({v.rule for v in found}), violations=design_rules.violations_table(found))


def build_report(bundle, runs, profiles=None, *, payloads=None, names=None, estimate: str = "native",
                 data_source: str | None = None, backend: str = "fast", hops: int = HOPS_PER_MESSAGE) -> Report:
    """The per-layer spike/ops/energy report of a chip graph's runs.

    ``bundle``: a ``deploy.bundle_io.Bundle`` or a bare ``ChipGraph``. ``runs``: an :class:`ActivityCollector`
    (from :func:`collect_from_backend`), or one entry per utterance as ``deploy.run.chip_run`` returns them
    (``{"steps", "spikes", ...}``), ``UtteranceResult``s from ``classify(..., keep_spikes=True)``, or plain
    ``{population: [T, N] bool}``; those need ``payloads`` (``[steps_i, F]`` per utterance, what the host sent).
    ``profiles``: names, paths or loaded profiles (default: every built-in profile).
    """
    if estimate not in ESTIMATES:
        raise InputError(f"--estimate {estimate!r}: choose native or paper")
    from ptsnn.hw_profiles import load_profile

    graph, meta, bundle_path = _graph_and_meta(bundle)
    if isinstance(runs, ActivityCollector):
        activity = runs
    else:
        if payloads is None:
            raise InputError("build_report: spike runs need the payloads the host sent (payloads=...)")
        activity = collect_from_runs(graph, list(payloads), list(runs), names)
    if not activity.utterances:
        raise InputError("nothing to report: no utterances")
    profs = _load_profiles(profiles)
    cmos = load_profile(PAPER_PROFILE)
    # The calibration-data current check (state_overflow) needs the training data: only convert runs it.
    not_fitting = {p.name: fit for p in profs if (fit := profile_fit(graph, p))}
    profs = [p for p in profs if p.name not in not_fitting]

    n = len(activity.utterances)
    steps = activity.total_steps
    energies = {p.name: native_energy(graph, activity, p, hops=hops) for p in profs}
    layers = [_layer_row(graph, activity, node, energies) for node in [*graph.inputs, *graph.populations,
                                                                        *graph.accumulators]]
    totals = _totals(graph, activity, energies)
    classes = list(meta.get("classes") or [])
    inp = graph.inputs[0]
    ttfs = is_ttfs(graph)
    payload_steps = [u.payload_steps for u in activity.utterances]
    # a TTFS inference is one clip: the host encodes it once (one "frame"), then divides the readout
    host = host_report(meta.get("frontend"), inp.size, max(payload_steps) if ttfs else inp.steps_per_frame,
                       payload_steps, _readout_size(graph), cmos)
    system = {}
    for name, e in energies.items():
        chip = e["energy"]["per_utterance_pj"]
        system[name] = dict(chip_pj=chip, host_pj=host["per_utterance_pj"],
                            total_pj=None if chip is None else chip + host["per_utterance_pj"],
                            note=f"chip under {name} + host under {cmos.name}")
    paper = paper_estimate(graph, activity, cmos) if estimate == "paper" else None
    from ptsnn import __version__

    data = dict(
        schema_version=SCHEMA_VERSION,
        kind="ptsnn-report",
        generator=dict(name="ptsnn", version=__version__),
        bundle=dict(path=bundle_path, converted_for=meta.get("converted_for"), classes=classes,
                    frontend=(meta.get("frontend") or {}).get("kind"), flush_steps=int(graph.flush_steps),
                    steps_per_frame=int(inp.steps_per_frame), input_message_bits=int(inp.message_bits)),
        data=dict(source=data_source, backend=backend, utterances=n,
                  names=[u.name for u in activity.utterances],
                  steps_per_utterance=[u.steps for u in activity.utterances],
                  payload_steps_per_utterance=[u.payload_steps for u in activity.utterances],
                  total_steps=steps, mean_steps=steps / n),
        estimate=dict(view=estimate, paper=paper),
        hops_per_message=int(hops),
        metrics=compute_metrics(graph, activity),
        layers=layers,
        totals=totals,
        profiles={name: {k: v for k, v in e.items() if k != "layers"} for name, e in energies.items()},
        not_fitting=not_fitting,
        host=host,
        system=system,
        voltage_histograms=({k: h.to_dict() for k, h in activity.histograms.items()} if activity.histograms
                            else None),
        raster=dict(utterance=activity.raster_name),
        spike_counts=activity.spike_counts(),
    )
    data["data"]["sample_unit"] = "inference" if ttfs else "utterance"
    if ttfs:
        data["ttfs"] = ttfs_section(graph, activity, data["profiles"])
    return Report(data, activity)


def _readout_size(graph: ChipGraph) -> int:
    """Classes the host divides by the readout scale: the Sigma readout, or a TTFS voltage readout."""
    if graph.accumulators:
        return graph.accumulators[0].size
    r = (graph.meta or {}).get("readout") or {}
    return int(graph.nodes()[r["population"]].size) if r.get("population") in graph.nodes() else 0


def _stat(total: float, n: int, steps: int) -> dict:
    return dict(total=total, per_utterance=total / n if n else 0.0, per_step=total / steps if steps else 0.0)


def _layer_counts(activity: ActivityCollector, name: str, counters) -> dict[str, float]:
    out = {c: activity.total(name, c) for c in counters}
    if "effective_macs" in out:
        out["synaptic_ops"] = out["effective_macs"] + out["effective_acs"]
        out["idle_updates"] = out["membrane_updates"] - out["active_updates"]
    return out


def _layer_row(graph: ChipGraph, activity: ActivityCollector, node, energies: dict) -> dict:
    n, steps = len(activity.utterances), activity.total_steps
    kind = layer_kind(node)
    row = dict(name=node.name, kind=kind, role=getattr(node, "role", None),
               where="host -> chip" if kind == "input" else "chip", neurons=int(node.size))
    if isinstance(node, HostInput):
        row.update(message_bits=int(node.message_bits), synapses=0, weights=0, sources=[], input=None,
                   connection_sparsity=None)
        out = activity.total(node.name, "output_events")
        counts = dict(output_events=out)
        row["firing_rate"] = None
        row["activation_sparsity"] = 1.0 - out / (node.size * steps) if steps else None
    else:
        edges = graph.incoming(node.name)
        graded = [graph.message_bits(e.source) > 0 for e in edges]
        syn, weights = sum(e.count() for e in edges), sum(e.weight.size for e in edges)
        potential = sum(dense_synapses(e) for e in edges)  # a conv's (position, tap) pairs, not its kernel
        row.update(synapses=int(syn), weights=int(weights), dense_synapses=int(potential),
                   sources=[e.source for e in edges],
                   input="graded" if all(graded) else "binary" if not any(graded) else "mixed",
                   connection_sparsity=1.0 - syn / potential if potential else None,
                   max_delay=max(int(e.max_delay) for e in edges))
        counters = ["input_events", "effective_macs", "effective_acs", "dense_ops", "membrane_updates",
                    "active_updates", "paper_macs", "paper_acs"]
        if isinstance(node, CubaPopulation):
            counters.append("output_spikes")
        counts = _layer_counts(activity, node.name, counters)
        if isinstance(node, CubaPopulation):
            spikes = counts["output_spikes"]
            slots = node.size * steps
            row["firing_rate"] = spikes / slots if slots else None
            row["activation_sparsity"] = 1.0 - spikes / slots if slots else None
            per_neuron = activity.neuron_spikes[node.name]
            row["silent_pct"] = 100.0 * float((per_neuron == 0).mean())
            sat = activity.total(node.name, "saturated_neurons")
            row["saturated_pct"] = 100.0 * sat / (node.size * n) if n else None
            row["threshold"] = int(node.vth) << 6
        else:
            row["firing_rate"] = row["activation_sparsity"] = None
    row["counts"] = {c: _stat(v, n, steps) for c, v in counts.items()}
    row["cores"] = {p: e["cores"].get(node.name, 0) for p, e in energies.items()}
    row["energy_pj"] = {p: {c: e["layers"][node.name].get(c) for c in (*COMPONENTS, "total")}
                        for p, e in energies.items()}
    row["messages"] = {p: e["layers"][node.name].get("messages") for p, e in energies.items()}
    return row


def _totals(graph: ChipGraph, activity: ActivityCollector, energies: dict) -> dict:
    n, steps = len(activity.utterances), activity.total_steps
    chip = [*graph.populations, *graph.accumulators]
    counts = dict.fromkeys(CHIP_COUNTERS, 0)
    for x in chip:
        for c, v in _layer_counts(activity, x.name, [c for c in CHIP_COUNTERS if c not in
                                                      ("synaptic_ops", "idle_updates")]).items():
            counts[c] += v
    counts["output_spikes"] = sum(activity.total(p.name, "output_spikes") for p in graph.populations)
    counts["host_events"] = sum(activity.total(i.name, "output_events") for i in graph.inputs)
    slots = sum(p.size for p in graph.populations) * steps
    energy = {}
    for p, e in energies.items():
        energy[p] = {c["component"]: c["per_utterance_pj"] for c in e["energy"]["components"]}
        energy[p]["total"] = e["energy"]["per_utterance_pj"]
    return dict(
        neurons=int(sum(x.size for x in chip)), synapses=int(sum(e.count() for e in graph.synapses)),
        weights=int(sum(e.weight.size for e in graph.synapses)),
        counts={c: _stat(v, n, steps) for c, v in counts.items()},
        firing_rate=counts["output_spikes"] / slots if slots else None,
        activation_sparsity=1.0 - counts["output_spikes"] / slots if slots else None,
        cores={p: e["cores_total"] for p, e in energies.items()},
        energy_pj=energy)


def report_bundle(bundle, payloads: list, names: list[str] | None = None, profiles=None, *,
                  estimate: str = "native", data_source: str | None = None, batch_size: int = 8,
                  record_voltage: bool = True, hops: int = HOPS_PER_MESSAGE, progress=None,
                  backend="fast", **backend_options) -> Report:
    """Run payloads through the bundle's chip part on a backend of ``ptsnn.deploy.backends`` (a name, e.g.
    ``fast`` -- the default, voltages recorded -- or ``lava``, which needs a bundle folder; or a backend
    object) and report. The report counts the backend's ``ChipRun``s; it runs no simulator itself."""
    activity = collect_from_backend(bundle, payloads, names, backend=backend, record_voltage=record_voltage,
                                    batch_size=batch_size, progress=progress, **backend_options)
    name = backend if isinstance(backend, str) else getattr(backend, "name", type(backend).__name__)
    return build_report(bundle, activity, profiles, estimate=estimate, data_source=data_source, backend=name,
                        hops=hops)
