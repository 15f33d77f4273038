"""Shared CLI plumbing: one way to build apps, print one-line errors and exit."""

from __future__ import annotations

import inspect
import re
import sys

import typer
from rich.console import Console

from ptsnn.errors import PtsnnError

console = Console(emoji=False)  # user text (file names, messages) may hold ":x:"-like codes: print them as written
err_console = Console(stderr=True, emoji=False)


_RST_ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|obj):`~?([^`]+)`")
_RST_LITERAL = re.compile(r"``([^`]+)``")


def plain_help(text: str | None) -> str | None:
    """A docstring or help string as typer's rich help shows it faithfully: RST literals and roles as plain
    text, each paragraph on one line (rich wraps it to the terminal; typer's "rich" mode would keep the
    docstring's own line breaks), square brackets escaped so rich does not read ``[batch, ...]`` as markup."""
    if text is None:
        return None
    from rich.markup import escape

    text = _RST_LITERAL.sub(r"\1", _RST_ROLE.sub(r"\1", inspect.cleandoc(text)))
    paragraphs = [" ".join(line.strip() for line in par.splitlines()) for par in re.split(r"\n\s*\n", text)]
    return escape("\n\n".join(p for p in paragraphs if p))


def _plain_parameter_help(callback) -> None:
    """Apply :func:`plain_help` to the ``help=`` of every typer.Option / typer.Argument of ``callback``."""
    from typer.models import ParameterInfo

    for param in inspect.signature(callback).parameters.values():
        infos = [param.default, *getattr(param.annotation, "__metadata__", ())]
        for info in infos:
            if isinstance(info, ParameterInfo) and info.help and not getattr(info, "_ptsnn_plain", False):
                info.help = plain_help(info.help)
                info._ptsnn_plain = True  # shared defaults must not be escaped twice


class PtsnnTyper(typer.Typer):
    """typer.Typer whose commands' help (docstring or ``help=``) and parameter help go through :func:`plain_help`."""

    def command(self, name: str | None = None, *, help: str | None = None, **kwargs):
        def register(f):
            _plain_parameter_help(f)
            return super(PtsnnTyper, self).command(name, help=plain_help(help or inspect.getdoc(f)), **kwargs)(f)
        return register

    def callback(self, *args, help: str | None = None, **kwargs):
        def register(f):
            _plain_parameter_help(f)
            return super(PtsnnTyper, self).callback(*args, help=plain_help(help or inspect.getdoc(f)), **kwargs)(f)
        return register

    def add_typer(self, typer_instance, *, help: str | None = None, **kwargs) -> None:
        super().add_typer(typer_instance, help=plain_help(help), **kwargs)


def new_app(name: str, help: str) -> typer.Typer:
    return PtsnnTyper(
        name=name,
        help=plain_help(help),
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
    from ptsnn.fileio import Interrupted, signals_as_exceptions

    try:
        with signals_as_exceptions():  # SIGTERM unwinds: finally blocks clean up (temporaries, Lava groups)
            app(prog_name=prog_name)
    except PtsnnError as exc:
        fail(str(exc), exc.exit_code)
    except Interrupted:
        err_console.print("terminated")
        sys.exit(143)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)


def run_callback(callback, kwargs: dict) -> None:
    """Call a command function with already-parsed arguments, ending the process as typer's standalone mode
    and :func:`run_app` do: PtsnnError one line, ``typer.Exit(code)`` that code, Ctrl-C 130, EPIPE 1."""
    import errno

    from ptsnn.fileio import Interrupted, signals_as_exceptions

    try:
        with signals_as_exceptions():
            try:
                callback(**kwargs)
            except KeyboardInterrupt:
                raise typer.Exit(130) from None  # what typer's main does with Ctrl-C
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except PtsnnError as exc:
        fail(str(exc), exc.exit_code)
    except Interrupted:
        err_console.print("terminated")
        sys.exit(143)
    except OSError as exc:
        if exc.errno != errno.EPIPE:
            raise
        sys.exit(1)
    sys.exit(0)
