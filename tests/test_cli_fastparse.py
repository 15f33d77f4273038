"""The light parser of `ptsnn run` gives the command exactly what typer would, or steps aside for typer."""

import inspect
import subprocess
import sys
import types

import pytest
from typer.testing import CliRunner

from ptsnn.cli import fastparse
from ptsnn.cli._app import new_app
from ptsnn.cli.deploy_cmd import run
from ptsnn.cli.main import COMMANDS, _group

# argv after `ptsnn run` that the light parser must take (and agree with typer on)
TAKEN = [
    ["B", "x.wav", "--backend", "fast"],
    ["B", "x.wav", "y.wav", "-b", "lava", "--json", "-o", "o.jsonl", "--batch-size", "3", "--timeout", "5.5"],
    ["B", "x.wav", "-bfast"],
    ["B", "--backend=fast", "x.wav", "--batch-size=+7"],
    ["--spikes", "B", "x.wav", "--csv"],
    ["B", "--", "-x.wav", "--json"],
    ["B", "x.wav", "--timeout", "1e3", "--save-payloads", "d", "--report", "r"],
    ["B", "-", "x.wav"],
]
# argv it must leave to typer (help, errors, anything it does not model)
LEFT = [
    ["B", "x.wav", "--help"],
    ["B", "x.wav", "-h"],
    ["B"],
    [],
    ["B", "x.wav", "--batch-size", "0"],
    ["B", "x.wav", "--timeout", "0.5"],
    ["--backend", "bogus", "B", "x.wav"],
    ["B", "x.wav", "--json=1"],
    ["B", "x.wav", "--timeout", "nan"],
    ["B", "x.wav", "--batch-size", "1_0"],
    ["B", "x.wav", "--batch-size", " 3"],
    ["B", "x.wav", "--batch-size", "3", "--batch-size", "4"],
    ["B", "x.wav", "--nope"],
    ["B", "x.wav", "-b"],
    ["B", "x.wav", "-5"],
    ["", "x.wav"],
]


def _capturing(target):
    """A function with ``target``'s signature (annotations resolved in its module) that records its call."""
    seen = {}

    def capture(**kwargs):
        seen.update(kwargs)

    f = types.FunctionType(capture.__code__, target.__globals__, target.__name__, None, capture.__closure__)
    f.__signature__ = inspect.signature(target)
    f.__annotations__ = dict(target.__annotations__)
    f.__doc__ = target.__doc__
    return f, seen


def _typer_parse(args):
    f, seen = _capturing(run)
    app = new_app("ptsnn", "test")
    app.callback()(_group)
    app.command("run")(f)
    result = CliRunner().invoke(app, ["run", *args])
    return result.exit_code, seen


@pytest.mark.parametrize("args", TAKEN, ids=" ".join)
def test_taken_argv_gives_what_typer_gives(args):
    fast = fastparse.parse(run, args)
    assert fast is not None, args
    code, seen = _typer_parse(args)
    assert code == 0
    assert fast == seen
    assert {k: type(v) for k, v in fast.items()} == {k: type(v) for k, v in seen.items()}


@pytest.mark.parametrize("args", LEFT, ids=lambda a: " ".join(a) or "(none)")
def test_everything_else_is_left_to_typer(args):
    assert fastparse.parse(run, args) is None


def test_unmodelled_parameter_features_keep_a_command_on_typer():
    import typer

    def with_callback(x: int = typer.Option(1, callback=lambda v: v)) -> None:
        pass

    def with_envvar(x: int = typer.Option(1, envvar="X")) -> None:
        pass

    def with_repeat(x: list[str] = typer.Option(None, "--x")) -> None:
        pass

    for f in (with_callback, with_envvar, with_repeat):
        assert fastparse.parse(f, []) is None, f.__name__


def test_every_registered_verb_resolves_and_run_is_the_fast_one():
    from ptsnn.cli.main import _target

    for verb, cmd in COMMANDS.items():
        assert callable(_target(cmd)), verb
    assert [v for v, c in COMMANDS.items() if c.fast] == ["run"]


def test_ptsnn_run_imports_neither_typer_parsing_nor_training_code(tmp_path):
    """What the hot path must not pay for: typer's pydantic adapters, pydantic itself, torch, Lava."""
    import numpy as np
    import soundfile as sf

    from ptsnn.testing import synthetic_bundle

    bundle = synthetic_bundle(tmp_path, max_samples=8000)
    wav = tmp_path / "x.wav"
    sf.write(wav, (0.3 * np.sin(np.arange(16000) * 0.1)).astype(np.float32), 16000)
    code = ("import sys\n"
            "sys.argv = ['ptsnn', 'run', sys.argv[1], sys.argv[2], '--backend', 'fast', '--json']\n"
            "from ptsnn.cli.main import main\n"
            "try:\n    main()\nexcept SystemExit as exc:\n    assert exc.code == 0, exc.code\n"
            "banned = ('typer._adapters', 'pydantic', 'torch', 'lava', 'matplotlib', 'scipy.signal')\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in banned or m in banned))\n")
    r = subprocess.run([sys.executable, "-c", code, str(bundle), str(wav)], capture_output=True, text=True, check=False,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    row, modules = r.stdout.strip().splitlines()
    assert '"label"' in row  # it classified the file
    assert modules == "[]", modules
