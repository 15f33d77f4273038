"""Faults during Lava runs, conversions and training: no process survives, nothing half-written stays.

The Lava cases kill, with SIGKILL, each kind of process of a `ptsnn run --backend lava` (one Lava runtime
process, the worker, the `ptsnn` parent itself) and check that the run ends within seconds, says what died
(exit 3) and that no process of the worker's group is left alive (read from /proc).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from ptsnn.deploy import _procs

BOOT_TIMEOUT_S = 120  # Lava's start on a loaded 2-core machine
STOP_WITHIN_S = 10


@pytest.fixture(scope="module")
def long_run(tmp_path_factory):
    """A bundle and a 60 s waveform: 3000 chip steps, minutes in Lava, so there is time to kill things."""
    import soundfile as sf

    from ptsnn.testing import synthetic_bundle

    root = tmp_path_factory.mktemp("faults")
    bundle = synthetic_bundle(root, max_samples=8000)
    wav = root / "long.wav"
    sf.write(wav, (0.1 * np.random.default_rng(0).standard_normal(60 * 16000)).astype(np.float32), 16000)
    return bundle, wav


def _start_run(bundle: Path, wav: Path, entry_point) -> subprocess.Popen:
    return subprocess.Popen([entry_point("ptsnn"), "run", str(bundle), str(wav), "--backend", "lava",
                             "--timeout", "300"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, OMP_NUM_THREADS="1"))


def _wait_for_lava(parent: subprocess.Popen) -> tuple[int, list[int]]:
    """(worker pid, live Lava runtime processes) once Lava's runtime is up."""
    deadline = time.monotonic() + BOOT_TIMEOUT_S
    while time.monotonic() < deadline:
        assert parent.poll() is None, parent.communicate()
        workers = [p.pid for p in _procs.children(parent.pid) if p.alive]
        if workers:
            lava = [p.pid for p in _procs.children(workers[0]) if p.alive]
            if len(lava) >= 3:
                time.sleep(1.0)  # let the runtime settle into running
                return workers[0], [p.pid for p in _procs.children(workers[0]) if p.alive]
        time.sleep(0.2)
    parent.kill()
    pytest.fail("Lava did not start in time")


def _assert_group_gone(pgrp: int) -> None:
    deadline = time.monotonic() + STOP_WITHIN_S
    while time.monotonic() < deadline:
        alive = [p.pid for p in _procs.group(pgrp) if p.alive]
        if not alive:
            return
        time.sleep(0.1)
    for pid in alive:  # do not leave them to the next test
        os.kill(pid, signal.SIGKILL)
    pytest.fail(f"processes of the Lava group survived: {alive}")


@pytest.mark.lava
@pytest.mark.parametrize("victim", ["lava runtime process",  # 10-20 s each; the other two kinds run with -m slow
                                    pytest.param("worker", marks=pytest.mark.slow),
                                    pytest.param("parent", marks=pytest.mark.slow),
                                    pytest.param("parent, SIGTERM", marks=pytest.mark.slow)])
def test_killing_any_process_of_a_lava_run_stops_all_of_them(long_run, entry_point, victim):
    bundle, wav = long_run
    parent = _start_run(bundle, wav, entry_point)
    worker, lava = _wait_for_lava(parent)
    target = {"lava runtime process": lava[-1], "worker": worker, "parent": parent.pid,
              "parent, SIGTERM": parent.pid}[victim]
    os.kill(target, signal.SIGTERM if victim == "parent, SIGTERM" else signal.SIGKILL)
    killed_at = time.monotonic()
    try:
        _, err = parent.communicate(timeout=STOP_WITHIN_S + 5)
    except subprocess.TimeoutExpired:
        parent.kill()
        _, err = parent.communicate()
        pytest.fail(f"the parent kept waiting after the {victim} died")
    assert time.monotonic() - killed_at < STOP_WITHIN_S
    _assert_group_gone(worker)
    assert not (bundle / "logs").exists()
    if victim == "parent":
        assert parent.returncode == -signal.SIGKILL
        return
    if victim == "parent, SIGTERM":  # unwinds: the finally of the Lava run kills the group
        assert parent.returncode == 143 and "Traceback" not in err, err
        return
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert parent.returncode == 3, err
    assert len(lines) == 1 and "Traceback" not in err, err
    assert f"{target} was killed by SIGKILL" in lines[0], lines[0]
    assert ("Lava runtime process" if victim != "worker" else "Lava worker") in lines[0]


def _convert_cmd(entry_point, ckpt: Path, out: Path) -> list[str]:
    return [entry_point("ptsnn-convert"), str(ckpt), "--out", str(out), "--emit", "netx,nir,onnx"]


def test_signals_during_convert_keep_previous_bundle_and_leave_no_litter(long_run, entry_point, tmp_path):
    bundle, _ = long_run
    ckpt = bundle.parent / "m.pt"
    out = tmp_path / "b"
    t0 = time.monotonic()
    subprocess.run(_convert_cmd(entry_point, ckpt, out), check=True, capture_output=True, timeout=300)
    took = time.monotonic() - t0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    # signals late in the run, when the temporary bundle is being written
    for sig, when in ((signal.SIGTERM, 0.8), (signal.SIGINT, 0.65)):
        proc = subprocess.Popen(_convert_cmd(entry_point, ckpt, out), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        time.sleep(when * took)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
        assert "Traceback" not in err, err
        assert sorted(p.name for p in tmp_path.iterdir()) == ["b"], list(tmp_path.iterdir())  # no .b.* folders
        now = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
        assert now == before  # the previous bundle, intact (or an identical new one if it finished first)
        assert proc.returncode in (0, 130, 143, -sig), (proc.returncode, err)


def test_failed_command_leaves_no_empty_output_folder(tmp_path):
    from ptsnn.errors import InputError
    from ptsnn.fileio import output_folder

    target = tmp_path / "new" / "out"
    with pytest.raises(InputError), output_folder(target) as out:
        (out / "fold1").mkdir(parents=True)
        raise InputError("boom")
    assert list(tmp_path.iterdir()) == []
    kept = tmp_path / "kept"
    with pytest.raises(InputError), output_folder(kept) as out:
        out.mkdir()
        (out / "metrics.json").write_text("{}")
        raise InputError("boom")
    assert (kept / "metrics.json").exists()  # never deletes a file
    existing = tmp_path / "existing"
    existing.mkdir()
    with pytest.raises(InputError), output_folder(existing):
        raise InputError("boom")
    assert existing.is_dir()  # a folder the user had stays


def test_proc_table_reads_how_an_unreaped_child_died():
    child = subprocess.Popen(["sleep", "30"])
    try:
        assert _procs.read(child.pid).alive and _procs.read(child.pid).death() is None
        os.kill(child.pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while _procs.read(child.pid).alive and time.monotonic() < deadline:  # a zombie until we wait
            time.sleep(0.02)
        info = _procs.read(child.pid)
        assert info.state == "Z" and info.death() == "was killed by SIGKILL"
        assert info.pgrp == os.getpgrp() and info in _procs.group(os.getpgrp())
    finally:
        child.kill()
        child.wait()
    assert _procs.read(child.pid) is None  # reaped: gone from /proc


def test_a_signal_raised_inside_a_weakref_callback_is_not_lost():
    """Python drops exceptions raised in weakref callbacks and __del__ ("Exception ignored in ..."): a
    SIGTERM arriving there must still end the command (seen with ptsnn-convert under load)."""
    import weakref

    from ptsnn.fileio import Interrupted, signals_as_exceptions

    class Thing:
        pass

    def callback(_):
        raise Interrupted("interrupted by signal SIGTERM", signal.SIGTERM)

    with pytest.raises(Interrupted), signals_as_exceptions():
        thing = Thing()
        ref = weakref.ref(thing, callback)  # noqa: F841 - keeps the callback armed
        del thing
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            time.sleep(0.01)


_LATE_SIGNAL_APP = """
import atexit, os, signal, sys, time
SIG = getattr(signal, sys.argv[1])
from ptsnn.cli.entry import ptsnn

def _slow_exit_hook():  # stands in for torch's atexit finalisers, which the CI run was inside
    os.kill(os.getpid(), SIG)
    time.sleep(2)

atexit.register(_slow_exit_hook)
sys.argv[1:] = ["profiles"]
ptsnn()  # the console script's function
"""


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_a_signal_during_interpreter_shutdown_ends_the_process_without_a_traceback(sig, tmp_path):
    """Seen in CI: Ctrl-C sent to ptsnn-convert just as it finished landed in an atexit hook and printed
    "Exception ignored in atexit callback ... KeyboardInterrupt" with a traceback."""
    import sys

    script = tmp_path / "late.py"
    script.write_text(_LATE_SIGNAL_APP)
    proc = subprocess.run([sys.executable, str(script), sig], capture_output=True, text=True, timeout=60)
    assert "loihi2" in proc.stdout
    assert "Traceback" not in proc.stderr and proc.stderr == "", proc.stderr
    assert proc.returncode == -getattr(signal, sig)  # ended by the signal at once, not after the 2 s hook


_EARLY_SIGNAL_APP = """
import sys

class CtrlCWhileImportingTyper:  # a Ctrl-C at start-up lands in whatever import is running
    def find_spec(self, name, path=None, target=None):
        if name == "typer":
            raise KeyboardInterrupt

sys.meta_path.insert(0, CtrlCWhileImportingTyper())
from ptsnn.cli.entry import ptsnn_convert
sys.argv[1:] = ["--help"]
ptsnn_convert()
"""


def test_ctrl_c_during_start_up_prints_one_line_not_a_traceback(tmp_path):
    import sys

    script = tmp_path / "early.py"
    script.write_text(_EARLY_SIGNAL_APP)
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stderr) == (130, "interrupted\n"), proc.stderr
