"""`ptsnn-convert` (also `ptsnn convert`): trained checkpoint or NIR graph -> deployment bundle."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from ptsnn.cli._app import console, new_app, run_app
from ptsnn.errors import InputError


app = new_app("ptsnn-convert", "Quantize, map and export a trained ptsnn model (or a NIR graph) for a hardware profile.")


def convert(
    model: Path = typer.Argument(..., help="Trained checkpoint (model.pt) or NIR graph (.nir)."),
    target: str = typer.Option("loihi2", "--target", "-t", help="Hardware profile name or profile TOML path."),
    out: Path = typer.Option(None, "--out", "-o", help="Bundle folder (default: <model>.bundle next to the model)."),
    calib: str = typer.Option(None, "--calib", help="Calibration features: .npz, folder of .npy, or 'synthetic'."),
    emit: str = typer.Option("netx,nir,onnx", "--emit", help="Comma-separated writers: netx, nir, onnx."),
    dt: float = typer.Option(1e-3, "--dt", help="Time step (s) to discretise a NIR graph's continuous-time parameters."),
    nir_convention: str = typer.Option("nir", "--nir-convention",
                                       help="nir, or norse (norse 1.1 exports dt*tau and unscaled LIF input)."),
) -> None:
    """Convert MODEL for --target into a deployment bundle: chip IR, netx HDF5, NIR, ONNX host part, manifest
    and a per-layer conversion report. Design-rule violations stop the conversion with one line naming the
    layer, the limit, the value and a fix."""
    from ptsnn.hw_profiles import load_profile

    from ptsnn.convert.writers import EMIT_FORMATS

    formats = tuple(f.strip() for f in emit.split(",") if f.strip())
    unknown = [f for f in formats if f not in EMIT_FORMATS]
    if unknown:
        raise InputError(f"--emit: unknown format(s) {', '.join(unknown)}; choose from {', '.join(EMIT_FORMATS)}")
    profile = load_profile(target)
    if not model.is_file():
        raise InputError(f"{model}: no such file")
    out = out or model.with_suffix(".bundle")
    with console.status("converting...") as status:
        if model.suffix == ".nir":
            from ptsnn.convert.bundle import convert_nir_graph

            if nir_convention not in ("nir", "norse"):
                raise InputError(f"--nir-convention {nir_convention!r}: choose nir or norse")
            result = convert_nir_graph(model, profile, out, emit=formats, dt=dt, convention=nir_convention,
                                       progress=lambda m: status.update(m))
        else:
            from ptsnn.convert.bundle import convert_checkpoint

            result = convert_checkpoint(model, profile, out, emit=formats, calib=calib,
                                        progress=lambda m: status.update(m))
    _print_report(result.report)
    console.print(f"bundle: {result.out_dir}/ ({len(result.manifest['files'])} files, manifest.json)")


def _print_report(report: dict) -> None:
    table = Table(title=f"{report['checkpoint']} -> {report['profile']} ({report['quantization']})", padding=(0, 0))
    cols = ["layer", "type", "neurons", "synapses", "weight_range", "exponent", "max_delay", "cores", "where",
            "smape", "saturated_pct"]
    heads = ["layer", "type", "N", "syn", "weights", "exp", "dly", "cores", "on", "SMAPE%", "sat%"]
    for h in heads:
        table.add_column(h, justify="right" if h not in ("layer", "type", "where") else "left")
    for row in report["layers"]:
        table.add_row(*["" if row.get(c) is None else f"{row[c]:,}" if isinstance(row.get(c), int) else str(row[c])
                        for c in cols])
    console.print(table)
    cal = report.get("calibration")
    if cal:
        console.print(f"readout: logit SMAPE {cal['smape_logits']:.2f} %, prediction agreement "
                      f"{cal['prediction_agreement_pct']:.1f} % (float vs quantized)")
    elif str(report.get("quantization", "")).startswith("ttfs"):
        console.print("TTFS: windows from the checkpoint; 24-bit state, thresholds and fire-once checked statically "
                      "by the ttfs_* design rules")
    else:
        console.print("no --calib data: quantization error and 24-bit overflow estimate not measured")
    console.print(f"cores: {report['total_cores']}")


app.command()(convert)


def main() -> None:
    run_app(app, "ptsnn-convert")


if __name__ == "__main__":
    main()
