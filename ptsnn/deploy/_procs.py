"""The process table from ``/proc`` (Linux): enough to watch a process group without psutil.

A zombie's ``/proc/<pid>/stat`` still carries its wait status (field 52, ``exit_code``), so a watcher can
learn how a process died without reaping it (reaping stays with its parent, e.g. ``multiprocessing``).
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass


@dataclass(frozen=True)
class ProcInfo:
    pid: int
    ppid: int
    pgrp: int
    state: str  # R, S, D, Z (zombie), ...
    wait_status: int  # meaningful for zombies only

    @property
    def alive(self) -> bool:
        return self.state not in ("Z", "X")

    def death(self) -> str | None:
        """For a zombie that did not end cleanly: 'was killed by SIGKILL' / 'exited with code 1'."""
        if self.alive:
            return None
        if os.WIFSIGNALED(self.wait_status):
            return f"was killed by {signal.Signals(os.WTERMSIG(self.wait_status)).name}"
        code = os.WEXITSTATUS(self.wait_status)
        return f"exited with code {code}" if code else None


def read(pid: int) -> ProcInfo | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode("ascii", "replace")
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2:].split()  # the command name (in parentheses) may hold spaces
    status = int(fields[49]) if len(fields) > 49 else 0
    return ProcInfo(pid, int(fields[1]), int(fields[2]), fields[0], status)


def table() -> list[ProcInfo]:
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            info = read(int(name))
            if info is not None:
                out.append(info)
    return out


def group(pgrp: int) -> list[ProcInfo]:
    return [p for p in table() if p.pgrp == pgrp]


def children(ppid: int) -> list[ProcInfo]:
    return [p for p in table() if p.ppid == ppid]
