"""`ptsnn demo`: the whole pipeline on the embedded default, end to end, no downloads.

synthetic acted-emotion corpus -> train the small PTS-SNN (float, then quantization-aware) -> ptsnn-convert
--target loihi2 -> verify: quantized PyTorch == fast simulator on the test split and == Lava's CPU
simulation on a few utterances -> per-layer spike/energy report -> one summary screen.
"""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.panel import Panel

from ptsnn.cli._app import console


def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", "-o", help="Folder for corpus, checkpoints, bundle, report."),
    epochs: int = typer.Option(20, min=1, help="Float training epochs (early stopping on validation UA)."),
    qat_epochs: int = typer.Option(3, min=0, help="Quantization-aware fine-tuning epochs (0: post-training)."),
    lava: int = typer.Option(2, min=0, help="Test utterances also run in Lava's CPU simulation."),
    max_frames: int = typer.Option(150, min=10, help="Frames per utterance in the verification (3 s: whole synthetic utterances)."),
    seed: int = typer.Option(0, help="Seed for corpus split crops and training."),
) -> None:
    """Run synthetic corpus -> train -> QAT -> convert (loihi2) -> Lava + fast simulator -> verify -> report."""
    from ptsnn.convert.bundle import convert_checkpoint
    from ptsnn.data.corpora import load_corpus
    from ptsnn.deploy.bundle_io import HostRunner, load_bundle
    from ptsnn.deploy.verify import verify
    from ptsnn.deploy.verify_data import verification_inputs
    from ptsnn.hw_profiles import load_profile
    from ptsnn.train.checkpoint import load_model
    from ptsnn.train.config import load_config
    from ptsnn.train.trainer import train

    t0 = time.perf_counter()
    cfg = load_config("small", [f"train.epochs={epochs}", f"train.qat_epochs={max(qat_epochs, 1)}",
                                f"train.seed={seed}"])
    console.rule("1/4 data and training")
    corpus = load_corpus("synthetic", out / "synthetic-corpus")
    result = train(cfg, corpus, out / "train", qat=qat_epochs > 0, progress=True, console=console)
    ckpt_path = result.checkpoints.get("qat") or result.checkpoints["float"]

    console.rule("2/4 convert for loihi2")
    with console.status("converting..."):
        conv = convert_checkpoint(ckpt_path, load_profile("loihi2"), out / "bundle", calib="synthetic")
    console.print(f"bundle: {conv.out_dir} ({conv.report['total_cores']} loihi2 cores, "
                  f"{len(conv.manifest['files'])} files)")

    console.rule("3/4 verify: quantized PyTorch == fast simulator (test split) == Lava")
    bundle = load_bundle(out / "bundle")
    model, ckpt = load_model(ckpt_path)
    if not model.quantized:
        model.quantize()
    n_test = len(corpus.split()[2]) if corpus.has_fixed_split() else 48
    feats, host_inputs, names, labels = verification_inputs("synthetic", ckpt, bundle, n_test, max_frames)
    with console.status("verifying...") as status:
        rep = verify(bundle, model, feats, names, labels, lava_count=lava, host=HostRunner(bundle),
                     host_inputs=host_inputs, log_dir=out / "logs", progress=lambda m: status.update(m))
    console.rule("4/4 report")
    from ptsnn.report import report_bundle
    from ptsnn.report.inputs import report_payloads

    with console.status("counting events and energy per layer and profile..."):
        payloads, pnames, _ = report_payloads(bundle, "synthetic", n_test, max_frames)
        energy = report_bundle(bundle, payloads, pnames, data_source="synthetic test split")
        energy.write(out / "report", ("json", "md", "html"))
    report_path = out / "report" / "report.html"

    fast, lav = rep.predictions["fast"], rep.predictions.get("lava")
    lines = [
        f"corpus: synthetic, {len(corpus)} utterances, classes {', '.join(corpus.classes)} (chance 25 %)",
        f"float   test: WA {100 * result.float_test.wa:.1f} %  UA {100 * result.float_test.ua:.1f} %",
    ]
    if result.qat_test is not None:
        lines.append(f"QAT     test: WA {100 * result.qat_test.wa:.1f} %  UA {100 * result.qat_test.ua:.1f} %")
    lines.append(f"fast simulator, {fast['utterances']} test utterances ({max_frames} frames): WA {100 * fast['wa']:.1f} %,"
                 f" agreement with quantized PyTorch {fast['agree_with_quantized']:.0f} %")
    if lav:
        lines.append(f"Lava fixed_pt, {lav['utterances']} utterances: agreement with quantized PyTorch "
                     f"{lav['agree_with_quantized']:.0f} %")
    lines.append("fixed-point chain: " + ("[bold green]exact, spike for spike in every layer[/]" if rep.exact
                                          else "[bold red]NOT exact[/]"))
    system = energy.data["system"]["loihi2"]
    lines.append(f"energy per utterance: chip {system['chip_pj'] / 1e6:.2f} uJ on loihi2 (Loihi 1 figures as proxy) + "
                 f"host {system['host_pj'] / 1e6:.1f} uJ (cmos45nm): see the report for every profile")
    lines.append(f"bundle: {out / 'bundle'}")
    if report_path:
        lines.append(f"report: {report_path}")
    lines.append(f"total time: {time.perf_counter() - t0:.0f} s")
    console.print(Panel("\n".join(lines), title="ptsnn demo", expand=False))
    if not rep.exact:
        raise typer.Exit(1)
