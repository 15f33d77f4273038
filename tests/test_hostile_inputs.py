"""The bad-input corpus (tests/hostile_corpus.py): every generated hostile file, for every reader, ends in
one line naming the file (a PtsnnError, never another exception), leaves nothing behind, and the valid file
of each kind still loads. docs/security.md lists the readers and the figures."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import hostile_corpus as corpus  # noqa: E402

from ptsnn.errors import PtsnnError  # noqa: E402

READERS = list(corpus.VALID)
IDS = corpus.all_case_ids()


@pytest.fixture(autouse=True)
def _small_limits(monkeypatch):
    # the 100 GB and 1e13 cases must be refused by the declared size, not by an attempt: keep the limits at
    # their defaults (these files are small on disk), and make sure no test inherits a raised limit
    for var in ("PTSNN_MAX_ARRAY_BYTES", "PTSNN_MAX_TOTAL_BYTES", "PTSNN_MAX_NEURONS", "PTSNN_MAX_ELEMENTS"):
        monkeypatch.delenv(var, raising=False)


def test_at_least_25_cases_per_reader():
    counts = {r: len(corpus.cases(r)) for r in READERS}
    assert all(n >= 25 for n in counts.values()), counts


@pytest.mark.parametrize("reader", READERS)
def test_valid_file_loads(reader, tmp_path):
    corpus.READ[reader](corpus.VALID[reader](tmp_path))


@pytest.mark.parametrize("reader,name", IDS, ids=[f"{r}-{n}" for r, n in IDS])
def test_bad_input_is_one_line_error(reader, name, tmp_path):
    build, expected = next((b, e) for n, b, e in corpus.cases(reader) if n == name)
    path = build(tmp_path / "case")
    before = sorted(p for p in tmp_path.rglob("*"))
    with pytest.raises(PtsnnError) as info:
        corpus.READ[reader](path)
    msg = str(info.value)
    assert "\n" not in msg and "Traceback" not in msg
    assert info.value.exit_code == 2
    assert path.name in msg, msg
    if expected is not None:
        assert expected in msg, msg
    assert sorted(p for p in tmp_path.rglob("*")) == before  # a reader writes nothing


# ---- through the CLI: exit code 2, one line on stderr, no output left behind ---------------------------------
def _cli(args: list[str], capsys) -> tuple[int, str]:
    from ptsnn.cli._app import run_app
    from ptsnn.cli.main import app

    old = sys.argv
    sys.argv = ["ptsnn", *args]
    try:
        with pytest.raises(SystemExit) as info:
            run_app(app, "ptsnn")
    finally:
        sys.argv = old
    err = capsys.readouterr().err.strip()
    return info.value.code, err


def _pick(reader: str, n: int = 4) -> list[str]:
    names = [name for name, _, _ in corpus.cases(reader)]
    return names[:: max(1, len(names) // n)][:n]


CLI = [(r, n) for r in ("checkpoint", "nir", "calibration") for n in _pick(r)]


@pytest.mark.parametrize("reader,name", CLI, ids=[f"{r}-{n}" for r, n in CLI])
def test_convert_cli_refuses_with_exit_2_and_no_bundle(reader, name, tmp_path, capsys):
    build = next(b for n, b, _ in corpus.cases(reader) if n == name)
    path = build(tmp_path / "case")
    out = tmp_path / "out.bundle"
    if reader == "calibration":
        args = ["convert", str(corpus.valid_checkpoint(tmp_path / "ok")), "--calib", str(path)]
    else:
        args = ["convert", str(path)]
    code, err = _cli([*args, "--out", str(out), "--emit", "netx"], capsys)
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("error:") and "Traceback" not in err, err
    assert not out.exists()
    assert not [p for p in tmp_path.rglob(".*bundle*")], list(tmp_path.rglob(".*"))


SIM = [("netx", n) for n in _pick("netx")] + [("npy", n) for n in _pick("npy")]


@pytest.mark.parametrize("reader,name", SIM, ids=[f"{r}-{n}" for r, n in SIM])
def test_simulate_cli_refuses_with_exit_2_and_no_output(reader, name, tmp_path, capsys):
    build = next(b for n, b, _ in corpus.cases(reader) if n == name)
    path = build(tmp_path / "case")
    net = path if reader == "netx" else corpus.valid_netx(tmp_path / "ok")
    inp = path if reader == "npy" else corpus.valid_npy(tmp_path / "ok")
    out = tmp_path / "y.npy"
    code, err = _cli(["simulate", str(net), "-i", str(inp), "-o", str(out)], capsys)
    assert code == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert not out.exists() and not list(tmp_path.glob(".y.npy*"))


@pytest.mark.parametrize("steps", ["10000000000", "1000001"])
def test_simulate_refuses_steps_over_the_limit_before_allocating(steps, tmp_path, capsys):
    out = tmp_path / "y.npy"
    code, err = _cli(["simulate", str(corpus.valid_netx(tmp_path)), "-i", str(corpus.valid_npy(tmp_path)), "-o",
                      str(out), "--steps", steps], capsys)
    assert code == 2 and "limit" in err and not out.exists(), err


def test_steps_limit_is_configurable(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PTSNN_MAX_STEPS", "5")
    out = tmp_path / "y.npy"
    code, err = _cli(["simulate", str(corpus.valid_netx(tmp_path)), "-i", str(corpus.valid_npy(tmp_path)), "-o",
                      str(out)], capsys)
    assert code == 2 and "10 is above the limit of 5" in err, err


CFG = [("config", n) for n in _pick("config", 5)]


@pytest.mark.parametrize("reader,name", CFG, ids=[f"{r}-{n}" for r, n in CFG])
def test_train_and_model_cli_refuse_bad_configs(reader, name, tmp_path, capsys):
    build = next(b for n, b, _ in corpus.cases(reader) if n == name)
    path = build(tmp_path / "case")
    code, err = _cli(["model", "summary", "--config", str(path)], capsys)
    assert code == 2 and len(err.splitlines()) == 1, err
    out = tmp_path / "run"
    code, err = _cli(["train", str(path), "--out", str(out)], capsys)
    assert code == 2 and len(err.splitlines()) == 1, err
    assert not out.exists()


PROF = [("profile", n) for n in _pick("profile")]


@pytest.mark.parametrize("reader,name", PROF, ids=[f"{r}-{n}" for r, n in PROF])
def test_profiles_check_cli_refuses(reader, name, tmp_path, capsys):
    build = next(b for n, b, _ in corpus.cases(reader) if n == name)
    code, err = _cli(["profiles", "check", str(build(tmp_path / "case"))], capsys)
    assert code == 2 and len(err.splitlines()) == 1, err


def test_limits_come_from_the_environment(monkeypatch, tmp_path):
    from ptsnn import safeio

    monkeypatch.setenv("PTSNN_MAX_ARRAY_BYTES", "64")
    with pytest.raises(PtsnnError, match="PTSNN_MAX_ARRAY_BYTES"):
        corpus.read_npy(corpus.valid_npy(tmp_path))
    monkeypatch.setenv("PTSNN_MAX_ARRAY_BYTES", "-3")
    with pytest.raises(PtsnnError, match="expected a positive number"):
        safeio.limits()


def test_frontend_kinds_of_the_config_schema_match_the_registry():
    from ptsnn.frontend import FRONTENDS
    from ptsnn.train import config

    assert set(config._FRONTEND_KINDS) == set(FRONTENDS)


def test_error_lines_print_user_text_verbatim(capsys):
    """A file name or option value with rich markup or emoji codes (":x:", "[bold]") is printed as written."""
    from ptsnn.cli._app import fail

    with pytest.raises(SystemExit) as exc:
        fail("--data synthetic-eye:x: [bold]not[/bold] data :smile:")
    assert exc.value.code == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "--data synthetic-eye:x: [bold]not[/bold] data :smile:" in err
