"""`ptsnn run` (audio -> label through a bundle) and `ptsnn verify` (the fixed-point chain, layer by layer)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from ptsnn.cli._app import console
from ptsnn.errors import InputError


def _backend(value: str) -> str:
    from ptsnn.deploy.run import BACKENDS

    if value not in BACKENDS:
        raise InputError(f"--backend {value!r}: choose {' or '.join(BACKENDS)}")
    return value


def save_payloads(out_dir: Path, names: list[str], payloads: list) -> list[Path]:
    """One ``.npy`` per utterance in ``out_dir``: the host part's integer payloads ``[steps, features]``, what
    the chip receives (without the flush steps) and what the bundle's ``run_loihi2.py`` takes. Named after the
    input file's stem (``-2``, ``-3``, ... when stems repeat); each file written atomically."""
    import io

    import numpy as np

    from ptsnn.fileio import atomic_write_bytes

    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--save-payloads {out_dir}: cannot create the folder ({exc.strerror or exc})") from None
    written, used = [], set()
    for name, payload in zip(names, payloads):
        stem, k = Path(name).stem or "utterance", 1
        while (f"{stem}-{k}" if k > 1 else stem) in used:
            k += 1
        stem = f"{stem}-{k}" if k > 1 else stem
        used.add(stem)
        buf = io.BytesIO()
        np.save(buf, np.asarray(payload, np.int64), allow_pickle=False)
        written.append(atomic_write_bytes(out_dir / f"{stem}.npy", buf.getvalue()))
    return written


def run(
    bundle: Path = typer.Argument(..., help="Bundle folder made by ptsnn-convert."),
    inputs: list[Path] = typer.Argument(..., help="Audio files (fbank bundles) or .npy feature files."),
    backend: str = typer.Option("lava", "--backend", "-b", help="lava (Lava CPU simulation, fixed_pt), fast, or loihi2 (needs Intel's lava-loihi)."),
    timeout: float = typer.Option(600.0, min=1.0, help="Seconds before a Lava run is killed."),
    report: Path = typer.Option(None, "--report", help="Also write the per-layer spike/energy report (json, md, html) here."),
    payloads_dir: Path = typer.Option(None, "--save-payloads", metavar="DIR", help="Also write each utterance's "
                                      "host payloads (integer [steps, features] .npy) here: the input of the "
                                      "bundle's run_loihi2.py."),
) -> None:
    """Audio to emotion label without chips: host part (host.onnx) -> chip graph (Lava or fast simulator)
    -> label, scores and per-layer spike counts."""
    from ptsnn.deploy.bundle_io import HostRunner, load_bundle, load_input
    from ptsnn.deploy.run import classify

    backend = _backend(backend)
    b = load_bundle(bundle)
    host = HostRunner(b)
    payloads = [load_input(p, b, host) for p in inputs]
    if payloads_dir is not None:
        for path in save_payloads(payloads_dir, [p.name for p in inputs], payloads):
            console.print(f"payloads: {path}", highlight=False)
    with console.status(f"running {len(payloads)} utterance(s) on {backend}..."):
        results = classify(b, payloads, [p.name for p in inputs], backend, timeout_s=timeout, log_dir=None,
                           keep_spikes=report is not None)
    for r in results:
        scores = "  ".join(f"{c} {p:.2f}" for c, p in sorted(r.scores.items(), key=lambda kv: -kv[1]))
        console.print(f"[bold]{r.name}[/]: [bold green]{r.label}[/]   ({scores}; {r.steps} steps, {backend})")
    table = Table(title="spikes per layer")
    table.add_column("layer")
    for r in results:
        table.add_column(r.name, justify="right")
    for layer in results[0].spike_counts:
        table.add_row(layer, *[f"{r.spike_counts[layer]:,}" for r in results])
    console.print(table)
    if report is not None:
        from ptsnn.report import build_report

        rep = build_report(b, results, payloads=payloads, names=[p.name for p in inputs], data_source="files",
                           backend=backend)
        rep.write(report, ("json", "md", "html"))
        console.print(f"report: {report / 'report.html'}")


def verify(
    bundle: Path = typer.Argument(..., help="Bundle folder made by ptsnn-convert."),
    checkpoint: Path = typer.Option(..., "--checkpoint", "-c", help="The checkpoint the bundle was converted from."),
    data: str = typer.Option("synthetic", "--data", help="'synthetic' (built-in corpus, test speakers) or a folder "
                                                          "of audio / .npy features."),
    limit: int = typer.Option(8, min=1, help="Utterances to verify (fast simulator and PyTorch)."),
    lava: int = typer.Option(2, min=0, help="How many of them also run in Lava (slow: seconds each)."),
    max_frames: int = typer.Option(60, min=1, help="Crop utterances to this many frames (keeps Lava runs short)."),
    timeout: float = typer.Option(900.0, min=1.0, help="Seconds before the Lava run is killed."),
) -> None:
    """Compare float PyTorch, quantized PyTorch, the fast simulator and Lava per layer and per step. Exit 1
    when the fixed-point chain (quantized == fast == Lava) is not exact."""
    import hashlib

    from ptsnn.deploy.bundle_io import HostRunner, load_bundle
    from ptsnn.deploy.verify import verify as run_verify
    from ptsnn.deploy.verify_data import verification_inputs
    from ptsnn.train.checkpoint import load_model

    b = load_bundle(bundle)
    if hashlib.sha256(checkpoint.read_bytes() if checkpoint.is_file() else b"").hexdigest() != b.manifest["source"]["sha256"]:
        raise InputError(f"{checkpoint}: not the checkpoint this bundle was converted from (sha256 differs)")
    if checkpoint.suffix == ".nir":  # a bundle converted from NIR: fast simulator == Lava on chip inputs
        from ptsnn.deploy.verify_chip import nir_bundle_inputs, verify_chip

        payloads, names = nir_bundle_inputs(b, HostRunner(b), data, limit, max_frames)
        with console.status("verifying...") as status:
            report = verify_chip(b, payloads, names, lava_count=lava, timeout_s=timeout, log_dir=None,
                                 progress=lambda m: status.update(m))
    else:
        model, ckpt = load_model(checkpoint)
        if not model.quantized:
            model.quantize()
        feats, host_inputs, names, labels = verification_inputs(data, ckpt, b, limit, max_frames)
        host = HostRunner(b)  # verify checks the host part too: no host.onnx, no verification
        with console.status("verifying...") as status:
            report = run_verify(b, model, feats, names, labels, lava_count=lava, timeout_s=timeout, host=host,
                                host_inputs=host_inputs if host.takes_audio else feats, log_dir=None,
                                progress=lambda m: status.update(m))
    table = Table(title=f"spike agreement per layer, % of (step, neuron) ({len(names)} utterances, "
                        f"{report.lava_utterances} in Lava)")
    for col in ("layer", "float~quant", "quant==fast", "fast==lava", "spikes quant", "spikes lava"):
        table.add_column(col, justify="left" if col == "layer" else "right")
    fmt = lambda v: "" if v is None else f"{v:.2f}"  # noqa: E731
    for row in report.layers:
        table.add_row(row["layer"], fmt(row["float~quantized"]), fmt(row["quantized==fast"]), fmt(row["fast==lava"]),
                      f"{row['spikes_quantized']:,}", f"{row['spikes_lava']:,}" if report.lava_utterances else "")
    console.print(table)
    for backend, p in report.predictions.items():
        extra = f", WA {100 * p['wa']:.1f} %, UA {100 * p['ua']:.1f} %" if "wa" in p else ""
        console.print(f"{backend:>9}: {p['utterances']} utterances, prediction agreement with quantized "
                      f"{p['agree_with_quantized']:.1f} %{extra}")
    if report.host_payload_mismatches is not None:
        ties = f" ({report.host_payload_boundary_ties} rounding-boundary ties tolerated)" if report.host_payload_boundary_ties else ""
        console.print(f"host.onnx vs PyTorch host payloads: {report.host_payload_mismatches} mismatching values{ties}")
    float_div = [d for d in report.divergences if d.pair == "float~quantized"]
    if float_div:  # expected (quantization), shown once: where float and fixed point first part ways
        d = float_div[0]
        console.print(f"float vs quantized first differ in layer {d.layer} ({d.utterance}, step {d.step}, neuron {d.neuron})")
    for d in report.divergences:
        if d.pair != "float~quantized":
            console.print(f"[red]first divergence {d.pair}[/]: layer {d.layer}, utterance {d.utterance}, "
                          f"step {d.step}, neuron {d.neuron}")
    for o in report.overflows:
        console.print(f"[yellow]24-bit {o.register} overflow[/]: layer {o.layer}, utterance {o.utterance}, "
                      f"step {o.step}, neuron {o.neuron} (value {o.value:,})")
    if report.exact:
        console.print(f"[bold green]OK[/]: {verified_claim(report, from_nir=checkpoint.suffix == '.nir')}")
    else:
        console.print("[bold red]NOT EXACT[/]: the fixed-point chain diverges (see above)")
        raise typer.Exit(1)


def verified_claim(report, from_nir: bool = False) -> str:
    """What the OK line may claim: only the comparisons that ran."""
    chain = "fast simulator" if from_nir else "quantized PyTorch == fast simulator"
    if report.lava_utterances:
        chain += f" == Lava ({report.lava_utterances} utterance(s))"
    claim = f"{chain}, spike for spike in every layer"
    if not report.lava_utterances:
        claim += " (Lava not run)"
    if report.host_payload_mismatches == 0:
        claim += "; host.onnx payloads == PyTorch's"
        if report.host_payload_boundary_ties:
            claim += f" (but {report.host_payload_boundary_ties} rounding tie(s) within tolerance)"
    if not from_nir and not report.overflows:  # the overflow replay runs on PyTorch-verified bundles only
        claim += "; no 24-bit state overflow"
    return claim
