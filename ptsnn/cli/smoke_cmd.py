"""`ptsnn smoke`: netx writer + Lava fixed_pt + fast simulator, spike for spike, in a few seconds."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from ptsnn.cli._app import console


def smoke(
    out: Path = typer.Option(Path("runs/smoke"), "--out", "-o", help="Folder for the netx file, spikes and Lava log."),
    steps: int = typer.Option(64, min=2, max=10_000, help="Time steps per sample."),
    batch: int = typer.Option(2, min=1, max=64, help="Random input samples."),
    seed: int = typer.Option(0, help="Seed for weights, delays, neuron parameters and inputs."),
    timeout: float = typer.Option(300.0, min=1.0, help="Seconds before the Lava run is killed."),
) -> None:
    """Build a 3-layer dense CUBA network with delays, write it as netx HDF5, run it in Lava's CPU
    simulation (fixed_pt) and in ptsnn's fast simulator, and compare every spike of every layer."""
    from rich.status import Status

    from ptsnn.deploy.smoke import SmokeConfig, run_smoke

    cfg = SmokeConfig(steps=steps, batch=batch, seed=seed)
    with Status("running Lava (fixed_pt) and the fast simulator...", console=console):
        report = run_smoke(out, cfg, timeout_s=timeout)
    table = Table(title=f"smoke: {' -> '.join(map(str, cfg.sizes))} neurons, delays 0..{cfg.max_delay}, "
                        f"{steps} steps x {batch} samples")
    table.add_column("layer")
    table.add_column("Lava spikes", justify="right")
    table.add_column("fast-sim spikes", justify="right")
    table.add_column("mismatches", justify="right")
    for name, lc, fc, mm in zip(report.layer_names, report.lava_counts, report.fast_counts, report.mismatches):
        table.add_row(name, str(lc), str(fc), f"[{'green' if mm == 0 else 'red'}]{mm}[/]")
    console.print(table)
    speedup = report.lava_seconds / max(report.fast_seconds, 1e-9)
    console.print(f"Lava {report.lava_seconds:.2f} s (incl. start-up), fast simulator {report.fast_seconds * 1e3:.1f} ms"
                  f" ({speedup:,.0f}x); files in {out}/")
    if report.exact:
        console.print("[bold green]OK[/]: Lava fixed_pt == fast simulator, spike for spike in every layer")
    else:
        console.print("[bold red]MISMATCH[/]: Lava and the fast simulator disagree")
        raise typer.Exit(1)
