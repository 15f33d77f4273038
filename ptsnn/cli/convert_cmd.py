"""`ptsnn-convert`: the command users type to turn a trained checkpoint into a deployment bundle.

The argument surface is final; the conversion pipeline itself (chip IR, passes, netx/NIR/ONNX writers) is
issue #4 and not in this version. Until then the command validates what it was given (checkpoint readable
with weights_only=True, target profile valid, emit list known) and says plainly that conversion is not
available, with exit code 2 and nothing written.
"""

from __future__ import annotations

from pathlib import Path

import typer

from ptsnn.cli._app import new_app, run_app
from ptsnn.errors import InputError, PtsnnError

EMIT_FORMATS = ("netx", "nir", "onnx")

app = new_app("ptsnn-convert", "Quantize, map and export a trained ptsnn model (or a NIR graph) for a hardware profile.")


@app.command()
def convert(
    model: Path = typer.Argument(..., help="Trained checkpoint (model.pt) or NIR graph (.nir)."),
    target: str = typer.Option("loihi2", "--target", "-t", help="Hardware profile name or profile TOML path."),
    out: Path = typer.Option(None, "--out", "-o", help="Bundle folder (default: <model>.bundle)."),
    calib: Path = typer.Option(None, "--calib", help="Calibration data for exponents/thresholds and error."),
    emit: str = typer.Option("netx,nir,onnx", "--emit", help="Comma-separated writers: netx, nir, onnx."),
) -> None:
    """Convert MODEL for --target into a deployment bundle (netx HDF5, NIR, ONNX host part, manifest)."""
    from ptsnn.hw_profiles import load_profile

    formats = [f.strip() for f in emit.split(",") if f.strip()]
    unknown = [f for f in formats if f not in EMIT_FORMATS]
    if unknown:
        raise InputError(f"--emit: unknown format(s) {', '.join(unknown)}; choose from {', '.join(EMIT_FORMATS)}")
    profile = load_profile(target)
    if not model.is_file():
        raise InputError(f"{model}: no such file")
    if model.suffix != ".nir":
        _check_checkpoint(model)
    raise PtsnnError(f"{model.name} is a valid input for profile {profile.name}, but the conversion pipeline is "
                     "not part of this version of ptsnn (tracked as issue #4); nothing was written")


def _check_checkpoint(path: Path) -> None:
    import pickle
    import zipfile

    import torch

    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, zipfile.BadZipFile, EOFError, ValueError, OSError) as exc:
        raise InputError(f"{path}: not a loadable torch checkpoint ({str(exc).splitlines()[0][:120]})") from None
    if not isinstance(data, dict) or data.get("format") != "ptsnn-checkpoint":
        raise InputError(f"{path}: not a ptsnn checkpoint (no format='ptsnn-checkpoint')")


def main() -> None:
    run_app(app, "ptsnn-convert")


if __name__ == "__main__":
    main()
