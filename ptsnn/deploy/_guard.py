"""Process hygiene inside a Lava worker: nothing outlives the parent, a dead Lava process ends the run.

Lava's runtime forks its processes (``multiprocessing`` with ``fork``) and, when one of them dies, waits
forever on its channels. :func:`install` (called first thing in a worker, before Lava is imported) makes:

* the worker die with its parent: ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` (Linux, through ctypes), and a
  watchdog thread that polls ``getppid()`` where prctl is not available;
* every process the worker forks die with the worker: the same prctl in an ``os.register_at_fork`` hook;
* a dead Lava process end the run at once: a thread polls the ``/proc`` entries of the processes
  ``multiprocessing`` started (a zombie keeps its wait status there until ``multiprocessing`` reaps it); a child killed by a signal (other than SIGTERM,
  which ``multiprocessing`` uses to stop its shared-memory manager) or exiting with a non-zero code makes the
  worker print one ``ptsnn-guard:`` line naming it and exit with :data:`EXIT_CHILD_DIED`. A child can also
  be reaped before the poll sees its zombie (``multiprocessing`` reaps finished children whenever it starts
  another), so its ``Popen.poll`` (where every reap of a forked child happens) is wrapped to apply the same
  rule to the exit codes it collects.

The parent (:mod:`ptsnn.deploy.lava_runner`) still watches the whole process group itself and kills it.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

from ptsnn.deploy import _procs

EXIT_CHILD_DIED = 3
PR_SET_PDEATHSIG = 1
GUARD_PREFIX = "ptsnn-guard:"


def _set_pdeathsig(sig: int = signal.SIGKILL) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _in_forked_child() -> None:
    _set_pdeathsig()


def fatal_death(info: _procs.ProcInfo) -> str | None:
    """How a process died, if that should end the run (SIGTERM: multiprocessing stopping its manager)."""
    death = info.death()
    if death is None or (os.WIFSIGNALED(info.wait_status) and os.WTERMSIG(info.wait_status) == signal.SIGTERM):
        return None
    return death


def _known_children() -> list[int]:
    """Pids of the processes ``multiprocessing`` started here (Lava's actors and its shared-memory manager):
    reading their ``/proc`` entries costs far less than scanning the whole process table."""
    import multiprocessing.process as mp_process

    return [p._popen.pid for p in list(mp_process._children) if getattr(p, "_popen", None) is not None]


def _watch_children(me: int, period_s: float = 0.1) -> None:
    while True:
        for pid in _known_children():
            child = _procs.read(pid)
            death = fatal_death(child) if child is not None and child.ppid == me else None
            if death:
                _report(child.pid, death)
        time.sleep(period_s)


def _report(pid: int, death: str) -> None:
    print(f"{GUARD_PREFIX} Lava runtime process {pid} {death}", file=sys.stderr, flush=True)
    os._exit(EXIT_CHILD_DIED)  # forked children die with us (PDEATHSIG); the parent kills the group


def _wrap_multiprocessing_reaps() -> None:
    from multiprocessing import popen_fork

    original = popen_fork.Popen.poll

    def poll(self, flag=os.WNOHANG):
        code = original(self, flag)
        if code is not None and code != -signal.SIGTERM and code != 0:
            _report(self.pid, f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}")
        return code

    popen_fork.Popen.poll = poll


def _watch_parent(parent: int) -> None:
    while True:
        if os.getppid() != parent:
            os.killpg(os.getpgrp(), signal.SIGKILL)
        time.sleep(0.2)


def install(parent_pid: int | None) -> None:
    """Call once, in the worker's main thread, before anything starts threads or processes."""
    parent = parent_pid if parent_pid else os.getppid()
    if not _set_pdeathsig():
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True, name="ptsnn-parent-watch").start()
    if os.getppid() != parent:  # the parent died before the prctl took effect
        os._exit(EXIT_CHILD_DIED)
    os.register_at_fork(after_in_child=_in_forked_child)
    _wrap_multiprocessing_reaps()
    threading.Thread(target=_watch_children, args=(os.getpid(),), daemon=True, name="ptsnn-child-watch").start()
