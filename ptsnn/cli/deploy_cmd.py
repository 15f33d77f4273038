"""`ptsnn run` (audio -> label through a bundle) and `ptsnn verify` (the fixed-point chain, layer by layer)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from ptsnn.cli._app import console
from ptsnn.errors import InputError


def _backend_choices():
    """``--backend`` choices: whatever ``ptsnn.deploy.backends`` registers."""
    from enum import Enum

    from ptsnn.deploy import backends

    return Enum("BackendName", {n: n for n in backends.names()}, type=str), backends.descriptions()


BackendName, _BACKEND_HELP = _backend_choices()


def _output_format(json_out: bool, csv_out: bool, output: Path | None) -> str | None:
    if json_out and csv_out:
        raise InputError("--json and --csv: choose one")
    if json_out or csv_out:
        return "json" if json_out else "csv"
    if output is None:
        return None
    by_suffix = {".jsonl": "json", ".json": "json", ".csv": "csv"}.get(output.suffix.lower())
    if by_suffix is None:
        raise InputError(f"-o {output}: give --json or --csv (or name the file .jsonl or .csv)")
    return by_suffix


def save_payloads(out_dir: Path, names: list[str], payloads: list, used: set[str] | None = None) -> list[Path]:
    """One ``.npy`` per utterance in ``out_dir``: the host part's integer payloads ``[steps, features]``, what
    the chip receives (without the flush steps) and what the bundle's ``run_loihi2.py`` takes. Named after the
    input file's stem (``-2``, ``-3``, ... when stems repeat, across calls that share ``used``); each file
    written atomically."""
    import io

    import numpy as np

    from ptsnn.fileio import atomic_write_bytes

    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--save-payloads {out_dir}: cannot create the folder ({exc.strerror or exc})") from None
    written, used = [], set() if used is None else used
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


def _emit(text: str) -> None:
    """One piece of the data stream on stdout; a reader that went away (``| head``) ends the run quietly."""
    import os
    import sys

    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        raise typer.Exit(141) from None  # what a shell reports for SIGPIPE


def _check_output(output: Path | None) -> None:
    """Before any work: the results file must be writable where it is asked for."""
    if output is None:
        return
    if output.is_dir():
        raise InputError(f"-o {output}: is a folder (expected a file name)")
    if not output.parent.is_dir():
        raise InputError(f"-o {output}: folder {output.parent} does not exist")


def run(
    bundle: Path = typer.Argument(..., help="Bundle folder made by ptsnn-convert."),
    inputs: list[Path] = typer.Argument(..., help="Audio files (or .npy features for feature bundles), folders "
                                                  "(searched recursively) and manifests (.csv, .json, .jsonl)."),
    backend: BackendName = typer.Option("lava", "--backend", "-b", show_default=True,
                                        help="; ".join(f"{k}: {v}" for k, v in _BACKEND_HELP.items()) + "."),
    json_out: bool = typer.Option(False, "--json", help="JSON Lines: one object per utterance, errors as rows."),
    csv_out: bool = typer.Option(False, "--csv", help="CSV: one row per utterance, errors as rows."),
    output: Path = typer.Option(None, "--output", "-o", help="Write the JSON Lines or CSV to this file (atomically) "
                                                              "instead of stdout."),
    spikes: bool = typer.Option(False, "--spikes", help="Also print spikes per population over all utterances."),
    batch_size: int = typer.Option(16, "--batch-size", min=1, help="Utterances per backend run (bounds memory)."),
    timeout: float = typer.Option(600.0, min=1.0, help="Seconds before a Lava run is killed."),
    report: Path = typer.Option(None, "--report", help="Also write the per-layer spike/energy report (json, md, html) here."),
    payloads_dir: Path = typer.Option(None, "--save-payloads", metavar="DIR", help="Also write each utterance's "
                                      "host payloads (integer [steps, features] .npy) here: the input of the "
                                      "bundle's run_loihi2.py."),
) -> None:
    """Audio to emotion label without chips: host part (host.onnx) -> chip graph -> label, calibrated scores
    and spike counts. A file that cannot be read becomes an error row and the others go on; the exit code is
    2 if any input failed (3 if the backend failed)."""
    from ptsnn.cli._app import err_console
    from ptsnn.deploy.backends import get_backend
    from ptsnn.deploy.batch import run_items
    from ptsnn.deploy.bundle_io import HostRunner, load_bundle
    from ptsnn.deploy.inputs import expand_paths
    from ptsnn.deploy.results_io import ResultWriter
    from ptsnn.deploy.run import score_temperature

    fmt = _output_format(json_out, csv_out, output)
    _check_output(output)
    name = backend.value
    engine = get_backend(name, timeout_s=timeout, log_dir=None)  # Lava logs are not written into the bundle
    engine.check()
    b = load_bundle(bundle)
    if b.manifest.get("model_kind") == "ttfs":
        return _run_ttfs(b, inputs, backend, timeout, payloads_dir)
    host = HostRunner(b)
    temperature = score_temperature(b)
    items = expand_paths(inputs, host.takes_audio)
    to_stdout = fmt is not None and output is None
    notes = err_console if to_stdout else console  # stdout carries only the data when it is the data stream
    populations = [p.name for p in b.graph.populations]
    writer = ResultWriter(fmt, b.classes, populations, temperature.value, temperature.fitted, name) if fmt else None
    saved_stems: set[str] = set()
    if payloads_dir is not None:
        save_payloads(payloads_dir, [], [])  # the folder first: a bad --save-payloads fails before any work
    collector = None
    if report is not None:
        from ptsnn.report.collect import ActivityCollector

        collector = ActivityCollector(b.graph)
    chunks: list[str] = [writer.header()] if writer and not to_stdout else []
    if writer and to_stdout:
        _emit(writer.header())
    rows = []
    with err_console.status(f"running {len(items)} utterance(s) on {name}...") as status:
        for row in run_items(b, items, engine, host, temperature.value, batch_size=batch_size,
                             keep_spikes=collector is not None or payloads_dir is not None,
                             progress=lambda done, total: status.update(f"{done}/{total} utterances on {name}...")):
            if writer is not None:
                if to_stdout:
                    _emit(writer.line(row))
                else:
                    chunks.append(writer.line(row))
            if collector is not None and row.ok:
                collector.add(Path(row.file).name, row.payload, row.spikes, steps=row.steps)
            if payloads_dir is not None and row.ok:
                for path in save_payloads(payloads_dir, [Path(row.file).name], [row.payload], saved_stems):
                    notes.print(f"payloads: {path}", highlight=False, soft_wrap=True)
            row.payload = row.spikes = None
            rows.append(row)
    if output is not None:
        from ptsnn.fileio import atomic_write_text

        atomic_write_text(output, "".join(chunks))
    if not to_stdout:
        console.print(_summary_table(rows, name))
    if spikes:
        notes.print(_spike_table(rows, b))
    _print_notes(notes, rows, temperature, output)
    if collector is not None and collector.utterances:
        from ptsnn.report import build_report

        rep = build_report(b, collector, data_source="files", backend=name)
        rep.write(report, ("json", "md", "html"))
        notes.print(f"report: {report / 'report.html'}", highlight=False, soft_wrap=True)
    failed = [r for r in rows if not r.ok]
    if failed:  # the rows carry every error; stderr gets one line a script or a person sees at once
        first = " ".join(str(failed[0].error).split())
        err_console.print(f"error: {len(failed)} of {len(rows)} input(s) failed; first: {first}", markup=False,
                          highlight=False, soft_wrap=True)
        raise typer.Exit(max(r.exit_code or 2 for r in failed))


def _summary_table(rows, backend: str) -> Table:
    from rich.markup import escape

    with_truth = any(r.true_label is not None for r in rows)
    with_errors = any(not r.ok for r in rows)
    table = Table(title=f"{len(rows)} utterance(s), {backend}", title_justify="left")
    table.add_column("file", overflow="fold")
    table.add_column("label")
    table.add_column("score", justify="right")
    if with_truth:
        table.add_column("true")
    table.add_column("steps", justify="right")
    if with_errors:
        table.add_column("error", overflow="fold")
    for r in rows:
        cells = [escape(r.file), f"[bold green]{escape(r.label)}[/]" if r.ok else "[red]error[/]",
                 f"{r.top_score:.2f}" if r.ok else ""]
        if with_truth:
            cells.append(escape(r.true_label or ""))
        cells.append("" if r.steps is None else f"{r.steps:,}")
        if with_errors:
            cells.append("" if r.ok else f"[red]{escape(r.error)}[/]")
        table.add_row(*cells)
    return table


def _spike_table(rows, b) -> Table:
    """Per population over the utterances that ran: bounded by the network, not by the number of files."""
    ok = [r for r in rows if r.ok]
    steps = sum(r.steps for r in ok)
    table = Table(title=f"spikes per population ({len(ok)} utterances, {steps:,} steps)", title_justify="left")
    for col in ("population", "neurons", "spikes", "per utterance", "min", "max", "rate %"):
        table.add_column(col, justify="left" if col == "population" else "right")
    for pop in b.graph.populations:
        counts = [r.spike_counts[pop.name] for r in ok]
        if not counts:
            continue
        rate = 100 * sum(counts) / (pop.size * steps) if steps else 0.0
        table.add_row(pop.name, f"{pop.size:,}", f"{sum(counts):,}", f"{sum(counts) / len(counts):,.1f}",
                      f"{min(counts):,}", f"{max(counts):,}", f"{rate:.2f}")
    return table


def _print_notes(notes, rows, temperature, output) -> None:
    ok = [r for r in rows if r.ok]
    judged = [r for r in ok if r.true_label is not None]
    line = f"{len(ok)} of {len(rows)} utterance(s) classified"
    if judged:
        hits = sum(r.label == r.true_label for r in judged)
        line += f"; {hits} of {len(judged)} match the manifest's label ({100 * hits / len(judged):.1f} %)"
    notes.print(line, highlight=False, soft_wrap=True)
    notes.print(temperature.describe(), highlight=False, soft_wrap=True)
    if len(ok) < len(rows):
        notes.print(f"[red]{len(rows) - len(ok)} failed[/] (see their error rows)", highlight=False, soft_wrap=True)
    if output is not None:
        notes.print(f"results: {output}", highlight=False, soft_wrap=True)


def _run_ttfs(b, inputs: list[Path], backend: str, timeout: float, payloads_dir: Path | None = None) -> None:
    from ptsnn.deploy.run_ttfs import classify_sequences

    if backend not in ("fast", "lava"):
        raise InputError(f"--backend {backend}: TTFS bundles run on fast or lava")
    if payloads_dir is not None:  # the input spikes of each inference: what the bundle's run_loihi2.py takes
        from ptsnn.deploy.ttfs_inputs import bundle_config, grid_input, sequence_clips
        from ptsnn.train.ttfs_chip import input_payload

        cfg = bundle_config(b)
        spikes = input_payload(b.graph, grid_input(sequence_clips(list(inputs), cfg).x, cfg))
        for path in save_payloads(payloads_dir, [p.name for p in inputs], list(spikes)):
            console.print(f"payload: {path}", highlight=False)
    with console.status(f"running {len(inputs)} sequence(s) on {backend}..."):
        results = classify_sequences(b, inputs, backend, timeout_s=timeout)
    for r in results:
        scores = "  ".join(f"{v:.2f}" for v in r.logits)
        console.print(f"[bold]{r.name}[/]: [bold green]{r.label}[/]   (logits {scores}; {backend}; "
                      f"at most {r.max_spikes_per_neuron} spike per neuron)")
        console.print("  neurons that spiked: " + ", ".join(f"{k} {v}" for k, v in r.first_spikes.items()))
        if r.max_spikes_per_neuron > 1:
            raise InputError(f"{r.name}: a neuron fired {r.max_spikes_per_neuron} times (fire-once violated)")


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
    from ptsnn.deploy.bundle_io import HostRunner, load_bundle
    from ptsnn.deploy.verify import verify as run_verify
    from ptsnn.deploy.verify_data import verification_inputs
    from ptsnn.fileio import sha256_file
    from ptsnn.train.checkpoint import load_model

    b = load_bundle(bundle)
    if not checkpoint.is_file():
        raise InputError(f"{checkpoint}: no such checkpoint file")
    if sha256_file(checkpoint) != b.manifest["source"]["sha256"]:  # streamed: a checkpoint may be gigabytes
        raise InputError(f"{checkpoint}: not the checkpoint this bundle was converted from (sha256 differs)")
    if b.manifest.get("model_kind") == "ttfs":
        return _verify_ttfs(b, checkpoint, data, limit, lava, timeout)
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


def _ttfs_inputs(data: str, cfg, limit: int, ckpt=None):
    """``(x [N, C, H, W], labels or None)``: an .npz with ``x`` (and optionally ``y``), or ``random``
    (seeded uniform inputs in ``[0, input_max]``: checks exactness; accuracy is then agreement with the twin)."""
    import numpy as np
    import torch

    if data == "synthetic-eye" or data.startswith("see:"):  # the test split, as in training
        from ptsnn.deploy.ttfs_inputs import eye_clips

        clips = eye_clips(data, cfg, limit, (ckpt.metrics if ckpt else {}).get("data_options"))
        return clips.x, clips.labels
    if data in ("random", "synthetic"):
        gen = torch.Generator().manual_seed(0)
        return torch.rand((limit, *cfg.input_shape), generator=gen, dtype=torch.float64) * cfg.input_max, None
    path = Path(data)
    if path.suffix != ".npz" or not path.is_file():
        raise InputError(f"--data {data}: a TTFS bundle verifies on 'random' or an .npz with x [N, C, H, W] (and y)")
    from ptsnn import safeio

    z = safeio.load_npz(path, "TTFS inputs", kinds="biuf", names=("x", "y"))  # bounded, no objects, finite
    if "x" not in z:
        raise InputError(f"{path}: no array 'x' (expected x [N, {', '.join(map(str, cfg.input_shape))}] and optionally y [N])")
    x = z["x"].astype(np.float64)[:limit]
    if x.ndim < 1 or x.shape[1:] != tuple(cfg.input_shape) or len(x) == 0:
        raise InputError(f"{path}: array 'x' has shape {z['x'].shape}, expected [N, {', '.join(map(str, cfg.input_shape))}]")
    y = None
    if "y" in z:
        y = z["y"][:limit]
        if y.shape != (len(x),) or y.dtype.kind not in "iu" or (y.size and (y.min() < 0 or y.max() >= cfg.num_classes)):
            raise InputError(f"{path}: array 'y' must be {len(x)} integer labels in 0..{cfg.num_classes - 1} "
                             f"(got shape {y.shape}, dtype {y.dtype})")
        y = y.astype(np.int64)
    return torch.from_numpy(x), y


def _verify_ttfs(b, checkpoint: Path, data: str, limit: int, lava: int, timeout: float) -> None:
    import json

    from ptsnn.deploy.verify_ttfs import accuracy_vs_k, lava_leg, plot_accuracy_vs_k, verify_ttfs
    from ptsnn.fileio import atomic_write_text
    from ptsnn.train.ttfs_checkpoint import load_integer

    grid, net, ckpt = load_integer(checkpoint)
    x, y = _ttfs_inputs(data, ckpt.config, limit, ckpt)
    leg = lava_leg(b.path, lava, timeout_s=timeout) if lava else None
    with console.status("verifying TTFS (twin, quantized, fast simulator, Lava)..."):
        report = verify_ttfs(b.graph, net, grid, ckpt.windows, x, y, lava=leg)
        curve = accuracy_vs_k(net, x, y, windows=ckpt.windows)
    table = Table(title=f"first-spike steps equal per layer, % of neurons ({len(x)} samples, "
                        f"{report.lava_samples} in Lava)")
    for col in ("layer", "neurons", "twin~quant", "quant==fast", "fast==lava"):
        table.add_column(col, justify="left" if col == "layer" else "right")
    fmt = lambda v: "" if v is None else f"{v:.2f}"  # noqa: E731
    for row in report.layers:
        table.add_row(row["layer"], str(row["neurons"]), fmt(row["twin~quantized"]), fmt(row["quantized==fast"]),
                      fmt(row.get("fast==lava")))
    console.print(table)
    console.print("most spikes of any neuron in one inference: "
                  + ", ".join(f"{k} {v}" for k, v in report.fire_once.items()))
    measure = "accuracy" if y is not None else "agreement with the ReLU twin"
    console.print(f"{measure}: " + ", ".join(f"{k} {v:.1f} %" for k, v in report.predictions.items()))
    console.print(f"{curve['measure']} vs K: " + ", ".join(f"K={k}: {a:.1f} %" for k, a in zip(curve["k"], curve["accuracy"]))
                  + f" (ReLU twin {curve['relu_twin']:.1f} %)")
    out = b.path.parent / f"{b.path.name}.verify"  # beside the bundle: a bundle holds only its listed files
    plot_accuracy_vs_k(curve, out / "accuracy_vs_k.png")
    atomic_write_text(out / "verify_ttfs.json", json.dumps(dict(
        layers=report.layers, predictions=report.predictions, fire_once=report.fire_once, accuracy_vs_k=curve,
        divergences=[d.__dict__ for d in report.divergences]), indent=1, default=list) + "\n")
    console.print(f"plot: {out / 'accuracy_vs_k.png'}")
    for d in report.divergences:
        colour = "yellow" if d.pair == "twin~quantized" else "red"
        console.print(f"[{colour}]first divergence {d.pair}[/]: layer {d.layer}, sample {d.sample}, neuron "
                      f"{d.neuron}, steps {d.steps[0]} vs {d.steps[1]}")
    if report.exact:
        lava_txt = f" == Lava ({report.lava_samples} samples)" if report.lava_samples else ""
        console.print(f"[bold green]OK[/]: quantized TTFS == fast simulator{lava_txt}, spike step for spike step "
                      "in every layer and the readout voltage, at most one spike per neuron")
    else:
        console.print("[bold red]NOT EXACT[/]: the fixed-point chain diverges or a neuron fired twice")
        raise typer.Exit(1)
