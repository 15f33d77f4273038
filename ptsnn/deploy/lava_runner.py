"""Run netx networks in Lava's CPU simulation safely: in a child process group, with a timeout, always
cleaned up, failures reported as one line with the log kept.

Lava's runtime starts processes of its own and, when one of them dies, tends to hang instead of failing.
So the whole Lava run lives in a separate session (``start_new_session=True``) that the parent watches
(:func:`_watch`): when the worker or any Lava process of the group dies, on timeout, on error or Ctrl-C, the
parent kills the group in ``finally`` and names what died. The worker in turn dies with its parent and takes
Lava's processes with it (:mod:`ptsnn.deploy._guard`), so no Lava process survives either side.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ptsnn.errors import LavaRunError

DEFAULT_TIMEOUT_S = 300.0


@dataclass
class LavaResult:
    layer_outputs: list[np.ndarray]  # per netx layer process: [batch, neurons, time] int32
    log_path: Path | None

    @property
    def output(self) -> np.ndarray:
        return self.layer_outputs[-1]


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def run_netx(netx_path: str | os.PathLike, inputs: np.ndarray, input_message_bits: int = 0,
             timeout_s: float = DEFAULT_TIMEOUT_S, log_dir: str | os.PathLike | None = None,
             num_layers: int | None = None, input_shape: tuple[int, ...] | None = None,
             reset_interval: int | None = None, reset_offset: int = 0, spike_exp: int = 6,
             skip_layers: int = 0) -> LavaResult:
    """Run ``inputs`` (``[batch, *input_shape, time]`` in Lava's order, flat ``[batch, neurons, time]``, or
    ``[neurons, time]``) through the netx network in Lava (``Loihi2SimCfg(select_tag='fixed_pt')``), one fresh
    network per sample. ``num_layers`` and ``input_shape`` (Lava's (W, H, C) order) are
    ``hdf5.Network(num_layers=..., input_shape=...)``, as are ``reset_interval``, ``reset_offset``,
    ``spike_exp`` and ``skip_layers``. Networks whose first layer is an input layer with a neuron get the data on that neuron's
    ``a_in`` (see ``_lava_worker``)."""
    inputs = np.asarray(inputs)
    if inputs.ndim == 2:
        inputs = inputs[None]
    job = dict(netx_path=str(Path(netx_path).resolve()), inputs=inputs.astype(np.int32),
               input_message_bits=int(input_message_bits), num_layers=-1 if num_layers is None else int(num_layers))
    if input_shape is not None:
        job["input_shape"] = np.asarray(input_shape, np.int64)
    if reset_interval is not None:
        job["reset"] = np.asarray([reset_interval, reset_offset], np.int64)
    job["spike_exp"] = np.int64(spike_exp)
    if skip_layers:
        job["skip_layers"] = np.int64(skip_layers)
    data = _run_child("ptsnn.deploy._lava_worker", job, timeout_s, log_dir, Path(netx_path).name)
    outputs = [data[f"layer_{i}"] for i in range(len(data))]
    return LavaResult(outputs, Path(log_dir, "lava.log") if log_dir else None)


def run_bundle(bundle_dir: str | os.PathLike, payloads: list[np.ndarray], steps: list[int],
               timeout_s: float = DEFAULT_TIMEOUT_S, log_dir: str | os.PathLike | None = None) -> list[dict]:
    """Run a bundle's whole chip graph (netx chain + hand-built processes, ``ptsnn.deploy.lava_graph``) in
    Lava for each payload ``[steps_i, F]`` (or ``{host input: [steps_i, size]}``) over ``steps[i]`` chip steps
    (flush included). Returns per utterance ``{node: [size, steps_i]}`` for every population and accumulator,
    and ``{"v_final/<population>": [size]}``, each LIF population's voltage after the last step."""
    job = dict(bundle=str(Path(bundle_dir).resolve()), steps=np.asarray(steps, np.int64))
    for i, p in enumerate(payloads):  # one array (the first host input) or {input name: [steps_i, size]}
        if isinstance(p, dict):
            job.update({f"payload_{i}/{name}": np.asarray(a, np.int64) for name, a in p.items()})
        else:
            job[f"payload_{i}"] = np.asarray(p, np.int64)
    data = _run_child("ptsnn.deploy._lava_bundle_worker", job, timeout_s, log_dir, Path(bundle_dir).name)
    out: list[dict] = [{} for _ in payloads]
    for key, value in data.items():
        utt, name = key.split("/", 1)
        out[int(utt[1:])][name] = value
    return out


def _run_child(module: str, job: dict, timeout_s: float, log_dir, what: str) -> dict[str, np.ndarray]:
    """Run ``python -m module JOB RESULT`` in its own session and watch its whole process group: the run ends
    (group killed) when the worker exits, when any process of the group dies, on timeout and on any error."""
    with tempfile.TemporaryDirectory(prefix="ptsnn-lava-") as work:
        job_path, result = Path(work, "job.npz"), Path(work, "result.npz")
        np.savez(job_path, **job)
        log_path = Path(log_dir or work, "lava.log")
        log_path.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, PYTHONUNBUFFERED="1", PTSNN_PARENT_PID=str(os.getpid()))
        with open(log_path, "w") as log:
            proc = subprocess.Popen([sys.executable, "-m", module, str(job_path), str(result)],
                                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True, env=env, cwd=work)  # cwd: nothing lands elsewhere
            try:
                code, died = _watch(proc, timeout_s)
            finally:
                _kill_group(proc)  # also reaps Lava's own children after a normal exit
        if died or code is None or code != 0 or not result.exists():
            kept = _keep_log(log_path, log_dir)
            guard = _guard_line(kept)
            if guard:  # the worker's own report names the first process that died
                status = f"stopped: {guard}"
            elif died:
                status = f"stopped: {died}"
            elif code is None:
                status = f"timed out after {timeout_s:.0f} s"
            elif code < 0:
                status = f"stopped: the Lava worker {proc.pid} was killed by {signal.Signals(-code).name}"
            else:
                status = f"failed (exit {code}): {_last_line(kept)}"
            raise LavaRunError(f"Lava run of {what} {status} (log: {kept})")
        with np.load(result) as data:
            return {k: data[k] for k in data.files}


WATCH_PERIOD_S = 0.2
GROUP_SCAN_PERIOD_S = 2.0  # a scan of /proc costs tens of ms on a busy machine; the worker's guard is faster


def _watch(proc: subprocess.Popen, timeout_s: float) -> tuple[int | None, str | None]:
    """Wait for the worker; returns ``(exit code or None on timeout, what died or None)``. Also scans the
    process group, so that a Lava process that dies while the worker itself is stuck (its guard did not see
    it) ends the run within a scan."""
    from ptsnn.deploy import _guard, _procs

    deadline = time.monotonic() + timeout_s
    next_scan = time.monotonic() + GROUP_SCAN_PERIOD_S
    while True:
        code = proc.poll()
        if code is not None:
            return code, None
        if time.monotonic() < next_scan:
            if time.monotonic() > deadline:
                return None, None
            time.sleep(WATCH_PERIOD_S)
            continue
        next_scan = time.monotonic() + GROUP_SCAN_PERIOD_S
        members = _procs.group(proc.pid)
        if not any(p.pid == proc.pid and p.alive for p in members):
            time.sleep(WATCH_PERIOD_S)
            continue  # the worker ended: its children die after it (PDEATHSIG); poll() gives its status
        for p in members:
            death = _guard.fatal_death(p) if p.pid != proc.pid else None
            if death:
                return None, f"Lava runtime process {p.pid} {death}"
        if time.monotonic() > deadline:
            return None, None
        time.sleep(WATCH_PERIOD_S)


def _guard_line(log_path: Path) -> str | None:
    from ptsnn.deploy._guard import GUARD_PREFIX

    lines = [ln.strip() for ln in log_path.read_text(errors="replace").splitlines() if ln.startswith(GUARD_PREFIX)]
    return lines[-1].removeprefix(GUARD_PREFIX).strip() if lines else None


def _keep_log(log_path: Path, log_dir) -> Path:
    if log_dir:
        return log_path
    kept = Path(tempfile.mkdtemp(prefix="ptsnn-lava-log-")) / "lava.log"
    kept.write_bytes(log_path.read_bytes())
    return kept


def _last_line(log_path: Path) -> str:
    lines = [ln.strip() for ln in log_path.read_text(errors="replace").splitlines() if ln.strip()]
    errors = [ln for ln in lines if "Error" in ln or "error" in ln]
    return (errors or lines or ["no output"])[-1][:300]
