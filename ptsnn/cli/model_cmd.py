"""``ptsnn model``: inspect model configurations (``summary``: trainable parameters per module)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ptsnn.cli._app import console, new_app

model_app = new_app("model", "Inspect PTS-SNN model configurations.")

PAPER_TARGET_PARAMS = 1_190_000  # the paper reports 1.19 M trainable parameters


@model_app.callback()
def _root() -> None:
    """Inspect PTS-SNN model configurations."""


@model_app.command("summary")
def summary(
    config: Annotated[str, typer.Option("--config", "-c", help="preset (small, paper) or a .toml/.json file")] = "small",
    overrides: Annotated[Optional[list[str]], typer.Option(
        "--set", metavar="KEY=VALUE", help="override a config field, e.g. --set model.hidden=256")] = None,
) -> None:
    """Trainable parameters per module (data-flow order) and the total; for the paper preset also the deviation
    from the paper's 1.19 M."""
    from rich.table import Table

    from ptsnn.train.config import load_config
    from ptsnn.train.model import PTSSNN

    cfg = load_config(config, list(overrides or []))
    model = PTSSNN(cfg.model)
    rows = model.param_breakdown()
    total = model.num_trainable()
    m = cfg.model
    table = Table(title=f"PTS-SNN '{cfg.name}': input {m.input_dim}, hidden {m.hidden}, {m.blocks} blocks, "
                        f"key/value {m.key_dim}/{m.value_dim}, {m.prompts} prompts, {m.num_classes} classes",
                  title_justify="left")
    table.add_column("module", no_wrap=True)
    table.add_column("trainable params", justify="right", no_wrap=True)
    table.add_column("share %", justify="right", no_wrap=True)
    for name, n in rows.items():
        table.add_row(name, f"{n:,}", f"{100 * n / max(total, 1):.1f}")
    table.add_section()
    table.add_row("[bold]total[/]", f"[bold]{total:,}[/]", "100.0")
    console.print(table)
    if sum(rows.values()) != total:  # the breakdown must account for every parameter
        console.print(f"[yellow]warning:[/] modules sum to {sum(rows.values()):,}, model total is {total:,}")
    if cfg.name == "paper":
        dev = total - PAPER_TARGET_PARAMS
        console.print(f"paper target: {PAPER_TARGET_PARAMS / 1e6:.2f} M trainable parameters; this config: "
                      f"{total / 1e6:.3f} M ({dev:+,}, {100 * dev / PAPER_TARGET_PARAMS:+.2f} %)", highlight=False,
                      soft_wrap=True)
