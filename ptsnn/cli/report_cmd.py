"""`ptsnn report BUNDLE`: per-layer spikes, operations, cores, energy and latency for every hardware profile."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from ptsnn.cli._app import console
from ptsnn.errors import InputError


def _formats(value: str) -> tuple[str, ...]:
    from ptsnn.report import FORMATS

    items = tuple(dict.fromkeys(v.strip() for v in value.split(",") if v.strip()))
    bad = [v for v in items if v not in FORMATS]
    if bad or not items:
        raise InputError(f"--format {value!r}: a comma-separated list of {', '.join(FORMATS)}")
    return items


def report(
    bundle: Path = typer.Argument(..., help="Bundle folder made by ptsnn-convert."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for report.json/.md/.html and plots/*.png."),
    data: str = typer.Option("synthetic", "--data", help="'synthetic' (built-in corpus, test speakers; fbank "
                                                          "bundles) or a folder of audio / .npy features; TTFS "
                                                          "bundles: synthetic-eye, see:PATH, a sequence folder "
                                                          "(or a folder of them) or an .aedat4 recording."),
    limit: int = typer.Option(8, min=1, help="Utterances to run."),
    max_frames: int = typer.Option(150, "--max-frames", min=1, help="Crop utterances to this many frames."),
    profile: list[str] = typer.Option(None, "--profile", "-p", help="Hardware profile (name or .toml); repeat "
                                                                    "for several. Default: every built-in profile."),
    fmt: str = typer.Option("json,md,html", "--format", help="Comma-separated: json, md, html (md and html also "
                                                              "write plots/*.png)."),
    estimate: str = typer.Option("native", "--estimate", help="native (each profile's own per-event figures) or "
                                                              "paper (also the usual SNN-paper 45 nm estimate, "
                                                              "side by side)."),
    hops: int = typer.Option(1, min=0, help="Router hops per spike message in the spike-traffic estimate."),
    backend: str = typer.Option("fast", "--backend", "-b", help="fast (ptsnn's simulator) or lava (Lava fixed_pt; "
                                                                "slow: no voltage histograms)."),
    timeout: float = typer.Option(900.0, min=1.0, help="Seconds before a Lava run is killed (--backend lava)."),
) -> None:
    """Run the bundle's chip part on the fast simulator over the data and report, per layer and in total:
    neurons, synapses, cores, input events, spikes, firing rate, sparsity, synaptic operations (NeuroBench
    Effective_MACs / Effective_ACs / Dense), membrane updates, energy by component and latency for each
    profile, with the host part (front end) apart."""
    from ptsnn.deploy.bundle_io import load_bundle
    from ptsnn.report import ESTIMATES, report_bundle
    from ptsnn.report.inputs import report_payloads

    formats = _formats(fmt)
    if estimate not in ESTIMATES:
        raise InputError(f"--estimate {estimate!r}: choose native or paper")
    if backend not in ("fast", "lava"):
        raise InputError(f"--backend {backend}: the report runs on fast or lava")
    b = load_bundle(bundle)
    if b.manifest.get("model_kind") == "ttfs":
        return _report_ttfs(b, out, data, limit, profile, formats, estimate, hops, backend, timeout)
    with console.status("preparing inputs (host.onnx)...") as status:
        payloads, names, _ = report_payloads(b, data, limit, max_frames)
        rep = report_bundle(b, payloads, names, profile or None, estimate=estimate, data_source=data, hops=hops,
                            progress=lambda m: status.update(m),  # fast: the simulator directly, as before
                            **({} if backend == "fast" else dict(backend=backend, timeout_s=timeout)))
        status.update("writing report...")
        written = rep.write(out, formats)
    d = rep.data
    table = Table(title=f"energy per utterance ({d['data']['utterances']} utterances, "
                        f"{d['data']['mean_steps']:.0f} steps each; * = proxy figures)")
    for col in ("profile", "chip uJ", "host uJ", "system uJ", "latency ms", "cores", "not modelled"):
        table.add_column(col, justify="left" if col in ("profile", "not modelled") else "right")
    for name, p in d["profiles"].items():
        e, s, lat = p["energy"], d["system"][name], p["latency"]
        u = lambda v: "n/m" if v is None else f"{v / 1e6:.4g}"  # noqa: E731
        table.add_row(name + ("*" if e["uses_proxy"] else ""), u(e["per_utterance_pj"]), u(s["host_pj"]),
                      u(s["total_pj"]), "-" if lat["per_utterance_us"] is None else f"{lat['per_utterance_us'] / 1e3:.4g}",
                      "-" if p["cores_total"] is None else str(p["cores_total"]), ", ".join(e["not_modelled"]))
    console.print(table)
    for name, u in d["not_fitting"].items():  # no figures for hardware the model cannot be mapped to
        console.print(f"{name}: does not fit: {u['rule']} ({u['message']})", highlight=False, markup=False)
    paper = d["estimate"]["paper"]
    if paper is not None:
        ref = paper["reference"]
        console.print(f"paper-style estimate (45 nm, {paper['profile']}: E_MAC x MACs + E_AC x ACs): "
                      f"[bold]{paper['per_utterance_mj']:.4g} mJ[/] per utterance  |  PTS-SNN published: "
                      f"{ref['energy_mj']} mJ per sample", highlight=False)
    console.print(f"host part ({d['host']['profile']}): {d['host']['per_utterance_pj'] / 1e6:.4g} uJ per utterance "
                  f"- not included in the chip figures", highlight=False)
    for path in written:
        console.print(f"wrote {path}", highlight=False)


def _report_ttfs(b, out: Path, data: str, limit: int, profile, formats, estimate: str, hops: int, backend: str,
                 timeout: float) -> None:
    from ptsnn.report import report_bundle
    from ptsnn.report.inputs import ttfs_payloads

    data = "synthetic-eye" if data == "synthetic" else data
    with console.status("preparing eye clips...") as status:
        payloads, names, _ = ttfs_payloads(b, data, limit)
        rep = report_bundle(b, payloads, names, profile or None, estimate=estimate, data_source=data, hops=hops,
                            backend=backend, timeout_s=timeout, progress=lambda m: status.update(m))
        status.update("writing report...")
        written = rep.write(out, formats)
    print_ttfs_summary(rep.data)
    for path in written:
        console.print(f"wrote {path}", highlight=False)
    if not rep.data["ttfs"]["fire_once_ok"]:
        raise typer.Exit(1)


def print_ttfs_summary(d: dict) -> None:
    """The TTFS report on the terminal: spikes per layer, latency and energy per profile beside TNAS-ER."""
    t = d["ttfs"]
    table = Table(title=f"TTFS layers ({d['data']['utterances']} inferences, K = {t['steps_per_window']}, "
                        f"{t['steps_per_inference']} chip steps each)")
    for col in ("layer", "neurons", "spikes/neuron", "max", "mean q", "forced %", "fire once"):
        table.add_column(col, justify="left" if col in ("layer", "fire once") else "right")
    for r in t["layers"]:
        table.add_row(r["name"], str(r["neurons"]), f"{r['spikes_per_neuron']:.3f}", str(r["max_spikes_per_neuron"]),
                      "-" if r["mean_activation"] is None else f"{r['mean_activation']:.2f}",
                      "-" if r["forced_share"] is None else f"{100 * r['forced_share']:.1f}",
                      "[green]ok[/]" if r["fire_once_ok"] else "[bold red]VIOLATED[/]")
    console.print(table)
    table = Table(title="per inference (* = proxy figures)")
    for col in ("estimate", "latency ms", "chip mJ", "not modelled"):
        table.add_column(col, justify="left" if col in ("estimate", "not modelled") else "right")
    ref = t["reference"]
    table.add_row("TNAS-ER, published", f"{ref['latency_ms']:g}", f"{ref['energy_mj']:g}", "")
    for c in t["comparison"]:
        lat = "-" if c["latency_ms"] is None else f"{c['latency_ms']:.4g}" + ("*" if c["latency_proxy"] else "")
        mj = "n/m" if c["energy_mj"] is None else f"{c['energy_mj']:.4g}" + ("*" if c["energy_proxy"] else "")
        table.add_row(f"ours, {c['profile']}", lat, mj, ", ".join(c["not_modelled"]))
    paper = d["estimate"]["paper"]
    if paper is not None:
        table.add_row("ours, paper-style (45 nm)", "-", f"{paper['per_utterance_mj']:.4g}", "")
    console.print(table)
    console.print(f"TNAS-ER: {ref['source']}. Latency = chip steps x the profile's timing.time_step_us (see "
                  "the report's fields table for its source).", highlight=False, markup=False)
    for name, u in d["not_fitting"].items():
        console.print(f"{name}: does not fit: {u['rule']} ({u['message']})", highlight=False, markup=False)
    if not t["fire_once_ok"]:
        console.print(f"[bold red]FIRE-ONCE VIOLATED[/]: a neuron fired more than once in {', '.join(t['violations'])}")
