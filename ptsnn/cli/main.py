"""`ptsnn`: the umbrella command. Each verb is a stage of the pipeline.

Commands live in :data:`COMMANDS` (verb -> module and attribute; adding a command is one line there). The
process imports only the module of the verb it was called with: ``ptsnn run ...`` never imports the
training, conversion or Lava code. Verbs marked ``fast`` first try :mod:`ptsnn.cli.fastparse` (no typer
parser, whose per-call pydantic adapters cost more than a short run); anything it does not fully
understand -- help, errors, unusual flags -- goes to the typer app, which prints typer's own pages and
messages.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from importlib import import_module

from ptsnn.cli._app import console, new_app, run_app, run_callback

PROG = "ptsnn"
HELP = "ptsnn: spiking speech-emotion networks from PyTorch to Loihi-style hardware."


@dataclass(frozen=True)
class Command:
    module: str
    attribute: str  # a command function, or a typer app for a group of subcommands
    help: str | None = None  # a group's one-line help (a command's help is its docstring)
    fast: bool = False  # try the light parser first (hot paths only)


# The registry, in the order `ptsnn --help` lists the verbs.
COMMANDS: dict[str, Command] = {
    "smoke": Command("ptsnn.cli.smoke_cmd", "smoke"),
    "convert": Command("ptsnn.cli.convert_cmd", "convert"),
    "run": Command("ptsnn.cli.deploy_cmd", "run", fast=True),
    "verify": Command("ptsnn.cli.deploy_cmd", "verify"),
    "simulate": Command("ptsnn.cli.simulate_cmd", "simulate"),
    "report": Command("ptsnn.cli.report_cmd", "report"),
    "demo": Command("ptsnn.cli.demo_cmd", "demo"),
    "demo-ttfs": Command("ptsnn.cli.demo_ttfs_cmd", "demo_ttfs"),
    "profiles": Command("ptsnn.cli.profiles_cmd", "profiles_app",
                        help="Hardware profiles: with no command, list the built-in ones; show, check."),
    "train": Command("ptsnn.cli.train_cmd", "train"),
    "model": Command("ptsnn.cli.model_cmd", "model_app", help="Inspect model configurations: summary."),
    "search": Command("ptsnn.cli.search_cmd", "search_app"),
    "info": Command("ptsnn.cli.main", "info"),
}


def info() -> None:
    """Versions of the stack ptsnn runs on (Python, torch, numpy, Lava, lava-dl, norse, nir)."""
    import platform
    from importlib import metadata

    console.print(f"python {platform.python_version()}")
    for dist in ("ptsnn", "torch", "numpy", "lava-nc", "lava-dl", "norse", "nir", "onnx", "onnxruntime", "transformers"):
        try:
            console.print(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            console.print(f"{dist} [red]not installed[/]")


def _group() -> None:
    pass


def _target(cmd: Command):
    return getattr(import_module(cmd.module), cmd.attribute)


def build_app(verbs=None):
    """The typer app with ``verbs`` (default: every registered verb)."""
    import typer

    app = new_app(PROG, HELP)
    if verbs is not None and len(verbs) == 1:
        app.callback()(_group)  # typer runs a lone command as the root; a callback keeps ``ptsnn VERB ...``
    for verb in verbs or COMMANDS:
        cmd = COMMANDS[verb]
        target = _target(cmd)
        if isinstance(target, typer.Typer):
            app.add_typer(target, name=verb, help=cmd.help)
        else:
            app.command(verb)(target)
    return app


_full_app = None


def __getattr__(name: str):
    """``ptsnn.cli.main.app``: the whole app, built on first use (tests and ``typer.main.get_command``)."""
    global _full_app
    if name == "app":
        if _full_app is None:
            _full_app = build_app()
        return _full_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    argv = sys.argv[1:]
    verb = argv[0] if argv else None
    cmd = COMMANDS.get(verb)
    if cmd is None:  # no verb, --help, a typo: the whole app answers
        run_app(build_app(), PROG)
        return
    if cmd.fast:
        from ptsnn.cli import fastparse

        target = _target(cmd)
        kwargs = fastparse.parse(target, argv[1:])
        if kwargs is not None:
            run_callback(target, kwargs)
            return
    run_app(build_app([verb]), PROG)  # one verb's app: the same usage lines, help and errors as the whole app


if __name__ == "__main__":
    main()
