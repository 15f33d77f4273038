"""`ptsnn demo-ttfs`: the second demo, TNAS-ER's kind of network end to end on the embedded eye data.

synthetic near-eye data -> train a small TTFS conv network (its ReLU twin) -> ptsnn-convert --target loihi2
-> verify: quantized TTFS PyTorch == fast simulator (test split) == Lava fixed_pt (a few clips), first-spike
step for first-spike step in every layer, at most one spike per neuron -> the per-frame-mean and temporal
baselines beside the network -> per-layer TTFS report (spikes, first-spike times, energy, latency) ->
one summary screen.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer
from rich.panel import Panel

from ptsnn.cli._app import console


def demo_ttfs(
    out: Path = typer.Option(Path("runs/demo-ttfs"), "--out", "-o", help="Folder for checkpoint, bundle, report."),
    epochs: int = typer.Option(40, min=1, help="Training epochs of the ReLU twin (best by validation UAR)."),
    subjects: int = typer.Option(30, min=3, help="Synthetic subjects (the split is by subject, 60/20/20)."),
    takes: int = typer.Option(2, min=1, help="Sequences per subject and emotion."),
    size: int = typer.Option(16, min=8, help="Frame size (pixels, square)."),
    frames: int = typer.Option(16, min=2, help="Frames per synthetic sequence."),
    steps: int = typer.Option(16, "--steps-per-window", "-k", min=1, max=256, help="K: time steps per layer window."),
    lava: int = typer.Option(1, min=0, help="Test clips also run in Lava's CPU simulation (tens of seconds each)."),
    timeout: float = typer.Option(900.0, min=1.0, help="Seconds before the Lava run is killed."),
    seed: int = typer.Option(0, help="Seed of the data and the training."),
) -> None:
    """Run synthetic eye data -> train TTFS -> convert (loihi2) -> fast simulator + Lava -> verify ->
    baselines -> report."""
    from ptsnn.convert.bundle import convert_checkpoint
    from ptsnn.data.eye import LIGHTINGS, load_eye_dataset, run_baseline
    from ptsnn.deploy.bundle_io import load_bundle
    from ptsnn.deploy.ttfs_inputs import eye_clips, grid_input, sample_payloads
    from ptsnn.deploy.verify_ttfs import accuracy_vs_k, lava_leg, plot_accuracy_vs_k, verify_ttfs
    from ptsnn.fileio import atomic_write_text
    from ptsnn.hw_profiles import load_profile
    from ptsnn.report import report_bundle
    from ptsnn.train.metrics import eye_emotion_metrics
    from ptsnn.train.ttfs_checkpoint import load_integer
    from ptsnn.train.ttfs_config import ConvSpec
    from ptsnn.train.ttfs_train import config_for, train_ttfs

    t0 = time.perf_counter()
    console.rule("1/5 synthetic eye data and training (ReLU twin)")
    options = dict(frames=frames, size=size, subjects=subjects, takes=takes, seed=seed)
    with console.status("rendering synthetic near-eye sequences..."):
        ds = load_eye_dataset("synthetic-eye", **options)
    cfg = config_for(ds, conv=[ConvSpec(8, pool="max"), ConvSpec(16, pool="max")], dense=[32],
                     steps_per_window=steps)
    with console.status("training...") as status:
        result = train_ttfs(ds, cfg, out / "train", epochs=epochs, seed=seed, progress=lambda m: status.update(m),
                            data_options=dict(spec="synthetic-eye", **options))
    atomic_write_text(out / "train" / "metrics.json", json.dumps(result.metrics, indent=1) + "\n")

    console.rule("2/5 convert for loihi2")
    with console.status("converting..."):
        conv = convert_checkpoint(result.checkpoint, load_profile("loihi2"), out / "bundle")
    console.print(f"bundle: {conv.out_dir} ({conv.report['total_cores']} loihi2 cores, "
                  f"{len(conv.manifest['files'])} files)")

    console.rule("3/5 verify: quantized TTFS == fast simulator (test split) == Lava")
    bundle = load_bundle(out / "bundle")
    grid, net, ckpt = load_integer(result.checkpoint)
    test = ds.subset("test")
    clips = eye_clips("synthetic-eye", ckpt.config, len(test), result.metrics["data_options"])
    leg = lava_leg(bundle.path, lava, timeout_s=timeout, log_dir=out / "logs") if lava else None
    with console.status(f"verifying {len(clips.x)} test clips ({lava} in Lava)..."):
        rep = verify_ttfs(bundle.graph, net, grid, ckpt.windows, clips.x, clips.labels, lava=leg)
        curve = accuracy_vs_k(net, clips.x, clips.labels, windows=ckpt.windows)
    plot_accuracy_vs_k(curve, out / "verify" / "accuracy_vs_k.png")
    atomic_write_text(out / "verify" / "verify_ttfs.json", json.dumps(dict(
        layers=rep.layers, predictions=rep.predictions, fire_once=rep.fire_once, accuracy_vs_k=curve,
        divergences=[d.__dict__ for d in rep.divergences]), indent=1, default=list) + "\n")

    console.rule("4/5 baselines on the same split")
    train_part = ds.subset("train")
    base = {kind: eye_emotion_metrics(test.labels, run_baseline(kind, train_part, test), list(ds.classes),
                                      test.lighting, LIGHTINGS) for kind in ("frame-mean", "temporal")}

    console.rule("5/5 report")
    with console.status("counting spikes, first-spike times and energy per layer and profile..."):
        payloads = sample_payloads(bundle.graph, grid_input(clips.x, ckpt.config))
        energy = report_bundle(bundle, payloads, clips.names, backend="fast", data_source="synthetic-eye test split")
        energy.write(out / "report", ("json", "md", "html"))

    m = result.metrics
    fmt = lambda d: f"WAR {100 * d['war']:.1f} %  UAR {100 * d['uar']:.1f} %"  # noqa: E731
    t = energy.data["ttfs"]
    loihi2 = next(c for c in t["comparison"] if c["profile"] == "loihi2")
    ref = t["reference"]
    chain = "quantized TTFS == fast simulator" + (f" == Lava fixed_pt ({rep.lava_samples} clip(s))"
                                                  if rep.lava_samples else " (Lava not run)")
    lines = [
        f"data: synthetic near-eye, {len(ds)} sequences ({subjects} subjects), 7 classes (chance 14.3 %); "
        f"test split {len(test)} sequences",
        f"per-frame-mean baseline: {fmt(base['frame-mean'])}   (appearance only)",
        f"temporal baseline:       {fmt(base['temporal'])}   (hand-made temporal features)",
        f"ReLU twin (TTFS conv8-max, conv16-max, dense32): {fmt(m['relu_twin'])}",
        f"TTFS on the K = {steps} grid (= chip):          {fmt(m['grid'])}",
        f"fast simulator on the test split: accuracy {rep.predictions['fast']:.1f} %",
        f"{chain}: " + ("[bold green]exact, first-spike step for step in every layer and the readout[/]"
                        if rep.exact else "[bold red]NOT exact[/]"),
        "most spikes of any neuron in one inference: " + ", ".join(f"{k} {v}" for k, v in rep.fire_once.items()),
        f"per inference on loihi2 ({t['steps_per_inference']} chip steps): latency {loihi2['latency_ms']:.3g} ms "
        f"({1e3 * loihi2['latency_ms'] / t['steps_per_inference']:g} us/step{' placeholder' if loihi2['latency_proxy'] else ''}), "
        f"chip {loihi2['energy_mj'] * 1e3:.3g} uJ{' (Loihi 1 figures as proxy)' if loihi2['energy_proxy'] else ''}; "
        f"TNAS-ER published {ref['latency_ms']:g} ms, {ref['energy_mj'] / 1e3:g} J",
        "accuracy vs K: " + ", ".join(f"{k}: {a:.0f} %" for k, a in zip(curve["k"], curve["accuracy"])),
        f"bundle: {out / 'bundle'}",
        f"report: {out / 'report' / 'report.html'}",
        f"total time: {time.perf_counter() - t0:.0f} s",
    ]
    console.print(Panel("\n".join(lines), title="ptsnn demo-ttfs", expand=False))
    if not rep.exact:
        raise typer.Exit(1)
