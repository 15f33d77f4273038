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
                                                          "bundles) or a folder of audio / .npy features."),
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
    b = load_bundle(bundle)
    with console.status("preparing inputs (host.onnx)...") as status:
        payloads, names, _ = report_payloads(b, data, limit, max_frames)
        rep = report_bundle(b, payloads, names, profile or None, estimate=estimate, data_source=data, hops=hops,
                            progress=lambda m: status.update(m))
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
