"""Console-script entry points (pyproject ``[project.scripts]``).

They import nothing heavy before they can answer Ctrl-C: the command modules import typer and rich
(~80 ms), and the verb dispatch imports more. An interrupt in that window, or after the command has
finished while the interpreter shuts down, ends the process as it does mid-command, without a traceback.
"""

from __future__ import annotations

import os
import signal
from importlib import import_module


def default_signals_from_here() -> None:
    """The command is over (its outputs final or cleaned up): a Ctrl-C or SIGTERM from now on, e.g. while
    the interpreter shuts down, ends the process by the signal's default action. Left as Python's handler
    it would raise KeyboardInterrupt inside an atexit hook (torch registers some) and print a traceback."""
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, signal.SIG_DFL)


def _start(module: str) -> None:
    try:
        import_module(module).main()  # ends with SystemExit (run_app, run_callback)
    except KeyboardInterrupt:  # before run_app took over: the same line and exit code as mid-command
        default_signals_from_here()
        os.write(2, b"interrupted\n")
        raise SystemExit(130) from None
    finally:
        default_signals_from_here()  # only here, in a process that ends: run_app is also called in-process


def ptsnn() -> None:
    _start("ptsnn.cli.main")


def ptsnn_convert() -> None:
    _start("ptsnn.cli.convert_cmd")


def ptsnn_train() -> None:
    _start("ptsnn.cli.train_cmd")
