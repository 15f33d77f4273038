"""ptsnn search: spaces as data (one-line errors), the Optuna engine (resume, killed workers, several worker
processes on SQLite and journal storages, seeded determinism, infeasible candidates), outputs, export ->
ptsnn-convert, train --arch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ptsnn.errors import InputError

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg", "COLUMNS": "200"}

TINY = """
[search]
family = "ttfs"
profile = "{profile}"
objectives = ["war:max", "uar:max", "energy_uj:min", "latency_ms:min"]
seed = {seed}
trials = 3
study = "tiny"

[search.nsga2]
population_size = 2

[fixed]
data = "synthetic-eye"
frames = 4
size = 8
subjects = 6
takes = 1
frames_per_clip = 2
{fixed}

[budget]
epochs = 1
eval_samples = 2
batch = 16

[space]
{space}
"""
TINY_SPACE = """conv_layers = { low = 1, high = 2 }
conv_out_channels = { choices = [2, 3] }
conv_pool = { choices = ["none", "max"] }
dense_layers = { low = 0, high = 1 }
dense_width = { choices = [4, 6] }
steps_per_window = { choices = [4, 6] }"""


def _space_file(tmp_path: Path, name="tiny.toml", profile="loihi2", seed=0, fixed="", space=TINY_SPACE) -> Path:
    p = tmp_path / name
    p.write_text(TINY.format(profile=profile, seed=seed, fixed=fixed, space=space))
    return p


def _ptsnn(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "ptsnn.cli.main", *args], capture_output=True, text=True,
                          timeout=timeout, env=ENV)


def _run(space_path, out, trials, workers=1, storage=None):
    from ptsnn.search.engine import default_storage, describe_storage, run_search
    from ptsnn.search.outputs import write_outputs
    from ptsnn.search.space import load_space

    sp = load_space(space_path)
    url = storage or default_storage(out)
    study = run_search(sp, out, trials=trials, workers=workers, storage_url=url)
    return study, write_outputs(study, sp, out, describe_storage(url))


def _trials(out: Path) -> list[dict]:
    return json.loads((out / "trials.json").read_text())["rows"]


# ------------------------------------------------------------------------------------------------ spaces
@pytest.mark.parametrize("edit, needle", [
    (lambda t: t.replace('family = "ttfs"', 'family = "cnn"'), "search.family 'cnn'"),
    (lambda t: t.replace("[budget]", "[budget]\nepochz = 3"), "budget.epochz: unknown field"),
    (lambda t: t.replace('["war:max", "uar:max", "energy_uj:min", "latency_ms:min"]', '["war:up"]'),
     "objective 'war:up'"),
    (lambda t: t.replace("conv_layers = { low = 1, high = 2 }", "conv_layers = { low = 3, high = 2 }"),
     "conv_layers.low 3 is above high 2"),
    (lambda t: t.replace('conv_pool = { choices = ["none", "max"] }', "conv_pool = { choices = [] }"),
     "conv_pool.choices"),
    (lambda t: t.replace("steps_per_window = {", "steps_per_windoww = {"), "space.steps_per_windoww: not a parameter"),
    (lambda t: t.replace("takes = 1", "takes = 1\nframez = 3"), "fixed.framez: unknown setting"),
    (lambda t: t.replace("population_size = 2", "population_size = 1"), "search.nsga2.population_size"),
    (lambda t: t.replace("[space]", "[space"), "TOML syntax error"),
])
def test_broken_space_is_one_line_error_naming_file_and_field(tmp_path, edit, needle):
    from ptsnn.search.space import load_space

    p = _space_file(tmp_path)
    p.write_text(edit(p.read_text()))
    with pytest.raises(InputError) as info:
        load_space(p)
    msg = str(info.value)
    assert needle in msg and str(p) in msg and "\n" not in msg


def test_broken_space_on_the_command_line_exits_2_without_traceback(tmp_path):
    p = _space_file(tmp_path)
    p.write_text(p.read_text().replace("conv_layers = { low = 1, high = 2 }", "conv_layers = { low = 1, hi = 2 }"))
    r = _ptsnn("search", "--space", str(p), "--out", str(tmp_path / "run"), "-q")
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "conv_layers" in r.stderr and str(p) in r.stderr
    assert not (tmp_path / "run" / "study.db").exists()


def test_builtin_spaces_load():
    from ptsnn.search.space import builtin_spaces, load_space

    assert {"ttfs_small", "ttfs_default"} <= set(builtin_spaces())
    for name in ("ttfs_small", "ttfs_default"):
        sp = load_space(name)
        assert sp.options.family == "ttfs" and [n for n, _ in sp.objectives][:2] == ["war", "uar"]


def test_per_layer_parameters_are_sampled_up_to_the_depth(tmp_path):
    import optuna

    from ptsnn.search.engine import sample
    from ptsnn.search.families import get_family
    from ptsnn.search.families.ttfs import architecture_of
    from ptsnn.search.space import load_space

    sp = load_space(_space_file(tmp_path, space=TINY_SPACE + '\nconv_skip = { choices = [false, true] }'))
    study = optuna.create_study(directions=["maximize"] * 4)
    for _ in range(6):
        trial = study.ask()
        params = sample(trial, sp, get_family("ttfs"))
        depth = params["conv_layers"]
        assert {k for k in params if k.startswith("conv") and k[4].isdigit()} == \
            {f"conv{i}_{n}" for i in range(depth) for n in ("out_channels", "pool", "skip")}
        arch = architecture_of({**sp.fixed, **params})
        assert len(arch["conv"]) == sum(not params[f"conv{i}_skip"] for i in range(depth))
        study.tell(trial, [0, 0, 0, 0])


# ------------------------------------------------------------------------------------------------ engine
def test_search_resumes_and_does_not_rerun_finished_trials(tmp_path):
    space, out = _space_file(tmp_path), tmp_path / "run"
    _run(space, out, trials=2)
    first = {r["trial"]: r for r in _trials(out)}
    assert len(first) == 2 and all(r["state"] == "COMPLETE" for r in first.values())
    mtimes = {n: (out / "trials" / str(n) / "ttfs.pt").stat().st_mtime_ns for n in first}
    _run(space, out, trials=4)
    rows = {r["trial"]: r for r in _trials(out)}
    assert sorted(rows) == [0, 1, 2, 3]
    for n, r in first.items():  # same numbers, same values, not trained again
        assert rows[n]["objectives"] == r["objectives"] and rows[n]["params"] == r["params"]
        assert (out / "trials" / str(n) / "ttfs.pt").stat().st_mtime_ns == mtimes[n]
        assert (out / "trials" / str(n) / "log.txt").read_text().count(f"trial {n} on") == 1
    front = json.loads((out / "front.json").read_text())
    assert front["trials"]["complete"] == 4 and front["candidates"]
    for c in front["candidates"]:
        assert set(c["objectives"]) == {"war", "uar", "energy_uj", "latency_ms"}
        assert (out / c["checkpoint"]).is_file() and c["architecture"]["conv"] is not None
    for f in ("pareto_energy.png", "pareto_latency.png", "search.html"):
        assert (out / f).stat().st_size > 1000
    assert "data:image/png;base64," in (out / "search.html").read_text()


def test_a_resumed_study_must_keep_its_space(tmp_path):
    out = tmp_path / "run"
    _run(_space_file(tmp_path), out, trials=1)
    other = _space_file(tmp_path, name="other.toml", space=TINY_SPACE.replace("[4, 6]", "[4, 8]"))
    with pytest.raises(InputError, match="different space_sha256"):
        _run(other, out, trials=2)


def test_killed_search_fails_its_running_trial_and_retries_it(tmp_path):
    space, out = _space_file(tmp_path), tmp_path / "run"
    space.write_text(space.read_text().replace("epochs = 1", "epochs = 150"))  # seconds per trial: time to kill
    cmd = [sys.executable, "-m", "ptsnn.cli.main", "search", "--space", str(space), "--out", str(out), "--trials", "3",
           "-q"]
    log1 = out / "trials" / "1" / "log.txt"
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 240
        while not (log1.exists() and "epoch 1/150" in log1.read_text()):
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.time() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)  # no cleanup at all: trial 1 stays RUNNING in study.db
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    r = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = {t["trial"]: t for t in _trials(out)}
    assert rows[0]["state"] == "COMPLETE" and (out / "trials" / "0" / "log.txt").read_text().count("trial 0 on") == 1
    assert rows[1]["state"] == "FAIL" and "died" in rows[1]["stale"]
    retry = [t for t in rows.values() if t.get("retry_of") == 1]
    assert len(retry) == 1 and retry[0]["state"] == "COMPLETE" and retry[0]["params"] == rows[1]["params"]
    assert sum(t["state"] == "COMPLETE" for t in rows.values()) == 3 and len(rows) == 4


@pytest.mark.parametrize("storage", ["sqlite", "journal"])
def test_two_worker_processes_share_one_study(tmp_path, storage):
    space, out = _space_file(tmp_path), tmp_path / "run"
    url = None if storage == "sqlite" else f"journal:{tmp_path / 'study.journal'}"
    _run(space, out, trials=4, workers=2, storage=url)
    rows = _trials(out)
    done = [r for r in rows if r["state"] in ("COMPLETE", "PRUNED") and not r.get("surplus")]
    assert len(done) == 4 and len({r["trial"] for r in done}) == 4
    assert not any(r["state"] in ("RUNNING", "FAIL") for r in rows)
    dirs = sorted(int(p.name) for p in (out / "trials").iterdir())
    assert dirs == sorted(r["trial"] for r in rows if not r.get("surplus"))
    for r in done:  # each trial evaluated exactly once, by one worker
        log = (out / "trials" / str(r["trial"]) / "log.txt").read_text()
        assert log.count(f"trial {r['trial']} on ") == 1 and log.count("objectives:") == (r["state"] == "COMPLETE")
    pids = {r["worker"]["pid"] for r in done}
    assert 1 <= len(pids) <= 2 and os.getpid() not in pids  # evaluated in the worker processes
    if storage == "journal":
        assert (tmp_path / "study.journal").stat().st_size > 0 and not (out / "study.db").exists()


def test_same_seed_one_worker_gives_the_same_front(tmp_path):
    space = _space_file(tmp_path, seed=7)
    _, a = _run(space, tmp_path / "a", trials=4)
    _, b = _run(space, tmp_path / "b", trials=4)
    key = lambda f: [(c["trial"], c["params"], c["objectives"]) for c in f["candidates"]]  # noqa: E731
    assert key(a) == key(b) and key(a)


def test_infeasible_candidate_is_recorded_with_its_rule_and_never_trained(tmp_path):
    from ptsnn.hw_profiles.loader import _load_builtin  # noqa: F401  (the profile file below is loihi2's, shrunk)

    src = Path(__file__).resolve().parents[1] / "ptsnn" / "hw_profiles" / "loihi2.toml"
    text = src.read_text()
    old = 'cores_per_chip = { value = 128,'
    assert old in text
    small = tmp_path / "tiny_chip.toml"
    small.write_text(text.replace('name = "loihi2"', 'name = "tiny_chip"').replace(old, 'cores_per_chip = { value = 2,'))
    space = _space_file(tmp_path, profile=str(small), fixed="conv_layers = 2\ndense_layers = 1",
                        space='steps_per_window = { choices = [4, 6] }')
    out = tmp_path / "run"
    _, front = _run(space, out, trials=2)
    rows = _trials(out)
    assert [r["state"] for r in rows] == ["PRUNED", "PRUNED"]
    for r in rows:
        assert r["infeasible"]["rule"] == "capacity" and r["infeasible"]["stage"] == "before training"
        assert "cores" in r["infeasible"]["message"] and "checkpoint" not in r
        trial_dir = out / "trials" / str(r["trial"])
        assert not list(trial_dir.glob("*.pt")) and "epoch" not in (trial_dir / "log.txt").read_text()
    assert front["infeasible_by_rule"] == {"capacity": 2} and front["candidates"] == []
    from ptsnn.search.export import export_checkpoint

    with pytest.raises(InputError, match="infeasible: capacity"):
        export_checkpoint(out, 0, tmp_path / "x.pt")
    assert not (tmp_path / "x.pt").exists()


def test_a_repeated_point_reuses_its_evaluation_and_is_listed_once(tmp_path):
    """A one-point space: NSGA-II can only propose the same candidate; it is trained once."""
    space = _space_file(tmp_path, fixed="conv_layers = 1\ndense_layers = 0", space="steps_per_window = { choices = [4] }")
    out = tmp_path / "run"
    _, front = _run(space, out, trials=3)
    rows = _trials(out)
    assert [r["state"] for r in rows] == ["COMPLETE"] * 3
    assert "duplicate_of" not in rows[0] and [r.get("duplicate_of") for r in rows[1:]] == [0, 0]
    for r in rows[1:]:
        assert r["objectives"] == rows[0]["objectives"] and r["checkpoint"] == rows[0]["checkpoint"]
        log = (out / "trials" / str(r["trial"])).joinpath("log.txt").read_text()
        assert "reused" in log and "epoch" not in log and not list((out / "trials" / str(r["trial"])).glob("*.pt"))
    assert [c["trial"] for c in front["candidates"]] == [0] and front["trials"]["repeated"] == 2
    from ptsnn.search.export import export_checkpoint

    export_checkpoint(out, 2, tmp_path / "x.pt")  # a repeated trial exports its original's checkpoint
    assert (tmp_path / "x.pt").read_bytes() == (out / rows[0]["checkpoint"]).read_bytes()


def test_an_interrupted_trial_is_requeued_with_its_parameters(tmp_path, monkeypatch):
    from ptsnn.search.families.ttfs import TTFSFamily

    space, out = _space_file(tmp_path), tmp_path / "run"
    real = TTFSFamily.evaluate
    calls = []

    def ctrl_c_in_the_second(self, *a, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self, *a, **kw)

    monkeypatch.setattr(TTFSFamily, "evaluate", ctrl_c_in_the_second)
    with pytest.raises(KeyboardInterrupt):
        _run(space, out, trials=3)
    monkeypatch.setattr(TTFSFamily, "evaluate", real)
    _run(space, out, trials=3)
    rows = {r["trial"]: r for r in _trials(out)}
    stopped = [r for r in rows.values() if r.get("interrupted")]
    assert len(stopped) == 1 and stopped[0]["state"] == "FAIL"
    retry = [r for r in rows.values() if r.get("retry_of") == stopped[0]["trial"]]
    assert len(retry) == 1 and retry[0]["state"] == "COMPLETE" and retry[0]["params"] == stopped[0]["params"]
    assert sum(r["state"] == "COMPLETE" for r in rows.values()) == 3
    _run(space, out, trials=3)  # resuming again re-queues nothing more
    assert len(_trials(out)) == len(rows)


# ------------------------------------------------------------------------------------------ CLI, export
def test_cli_search_export_convert_and_train_arch(tmp_path):
    space, out = _space_file(tmp_path), tmp_path / "run"
    r = _ptsnn("search", "--space", str(space), "--out", str(out), "--trials", "2")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Pareto front" in r.stdout and "front.json" in r.stdout
    front = json.loads((out / "front.json").read_text())
    n = front["candidates"][0]["trial"]
    ckpt = tmp_path / "exported.pt"
    r = _ptsnn("search", "export", str(out), "--trial", str(n), "--out", str(ckpt))
    assert r.returncode == 0, r.stderr[-2000:]
    assert ckpt.read_bytes() == (out / front["candidates"][0]["checkpoint"]).read_bytes()
    r = subprocess.run([sys.executable, "-m", "ptsnn.cli.convert_cmd", str(ckpt), "--target", "loihi2", "--out",
                        str(tmp_path / "bundle")], capture_output=True, text=True, timeout=300, env=ENV)
    assert r.returncode == 0, r.stderr[-2000:]
    manifest = json.loads((tmp_path / "bundle" / "manifest.json").read_text())
    assert manifest["model_kind"] == "ttfs"
    # the candidate's data options travel in its checkpoint: verify rebuilds the same clips, chain exact
    r = _ptsnn("verify", str(tmp_path / "bundle"), "-c", str(ckpt), "--data", "synthetic-eye", "--lava", "0",
               "--limit", "4")
    assert r.returncode == 0 and "OK" in r.stdout, r.stdout[-2000:] + r.stderr[-2000:]
    # a tampered checkpoint is refused
    bad = out / front["candidates"][0]["checkpoint"]
    bad.write_bytes(bad.read_bytes() + b"\0")
    from ptsnn.search.export import export_checkpoint

    with pytest.raises(InputError, match="sha256 differs"):
        export_checkpoint(out, n, tmp_path / "y.pt")
    assert not (tmp_path / "y.pt").exists()
    # the chosen architecture trained as a TTFS model
    r = _ptsnn("train", "--model", "ttfs", "--arch", f"{out / 'front.json'}#{n}", "--out", str(tmp_path / "full"),
               "--epochs", "1", "-q", "--set", "data.subjects=6", "--set", "data.takes=1", "--set", "data.frames=4",
               "--set", "data.size=8")
    assert r.returncode == 0, r.stderr[-2000:]
    stored = json.loads((tmp_path / "full" / "metrics.json").read_text())
    assert stored["steps_per_window"] == front["candidates"][0]["architecture"]["steps_per_window"]
    from ptsnn.train.ttfs_arch import read_architecture

    with pytest.raises(InputError, match="no trial 999"):
        read_architecture(f"{out / 'front.json'}#999")
    assert read_architecture(f"{out}#{n}") == front["candidates"][0]["architecture"]


def test_bad_arch_files_are_one_line_errors(tmp_path):
    from ptsnn.train.ttfs_arch import read_architecture

    p = tmp_path / "arch.json"
    p.write_text('{"model_kind": "ttfs", "architecture": {"conv": [], "densse": [4]}}')
    with pytest.raises(InputError, match="architecture.densse: unknown field"):
        read_architecture(str(p))
    p.write_text("[1, 2")
    with pytest.raises(InputError, match="not valid JSON"):
        read_architecture(str(p))
    p.write_text('{"model_kind": "ttfs", "architecture": {"dense": [4], "steps_per_window": 4}}')
    assert read_architecture(str(p)) == {"dense": [4], "steps_per_window": 4}


@pytest.mark.slow
@pytest.mark.lava
def test_exported_candidate_runs_bit_exactly_in_lava(tmp_path):
    space, out = _space_file(tmp_path), tmp_path / "run"
    _, front = _run(space, out, trials=1)
    ckpt = tmp_path / "cand.pt"
    r = _ptsnn("search", "export", str(out), "--trial", str(front["candidates"][0]["trial"]), "--out", str(ckpt))
    assert r.returncode == 0, r.stderr[-2000:]
    r = subprocess.run([sys.executable, "-m", "ptsnn.cli.convert_cmd", str(ckpt), "--target", "loihi2", "--out",
                        str(tmp_path / "bundle")], capture_output=True, text=True, timeout=300, env=ENV)
    assert r.returncode == 0, r.stderr[-2000:]
    r = _ptsnn("verify", str(tmp_path / "bundle"), "-c", str(ckpt), "--data", "synthetic-eye", "--lava", "1",
               "--limit", "2", timeout=600)
    assert r.returncode == 0 and "== Lava" in r.stdout, r.stdout[-2000:] + r.stderr[-2000:]
