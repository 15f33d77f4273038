"""Shared CLI plumbing: one way to build apps, print one-line errors and exit."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from ptsnn.errors import PtsnnError

console = Console()
err_console = Console(stderr=True)


def new_app(name: str, help: str) -> typer.Typer:
    return typer.Typer(
        name=name,
        help=help,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,  # PtsnnError becomes one line in run_app; bugs keep tracebacks
        rich_markup_mode="rich",
        context_settings={"help_option_names": ["-h", "--help"]},
    )


def fail(message: str, exit_code: int = 2) -> None:
    """Print ``error: message`` on one line to stderr and exit."""
    from rich.markup import escape

    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise SystemExit(exit_code)


def run_app(app: typer.Typer, prog_name: str) -> None:
    try:
        app(prog_name=prog_name)
    except PtsnnError as exc:
        fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
