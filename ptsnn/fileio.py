"""File helpers below every stage: atomic outputs and file digests.

Atomic outputs: every writer writes a temporary file (or folder) beside the target and moves it into place.

A reader (or a crash) never sees a half-written output; on any error, KeyboardInterrupt or SIGTERM (turned
into an exception by :func:`signals_as_exceptions`) the temporary is removed and an existing target is left
as it was. Files get the permissions an ordinary ``open(path, "w")`` would give (0666 minus the umask), not
``mkstemp``'s 0600, so every file of a bundle has the same mode.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import tempfile
from pathlib import Path


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB blocks (bundle manifests, front-end weights, caches)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, directory: bool = False):
    """Yield a temporary path beside ``path`` for any writer (h5py, ``nir.write``, ``torch.save``, a folder
    of files); on success it replaces ``path`` (``os.replace``; a folder replaces an existing folder), on any
    exception it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if directory:
        tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
        os.chmod(tmp, 0o777 & ~_umask())
    else:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        tmp = Path(name)
        os.chmod(tmp, 0o666 & ~_umask())
    try:
        yield tmp
        if directory and path.is_dir():
            with _signals_held():  # a signal between the two replaces would lose the previous folder
                old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".old"))
                os.replace(path, old / path.name)
                os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def _signals_held():
    """Hold SIGINT/SIGTERM/SIGHUP for a few system calls; they are delivered when the block ends."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM, signal.SIGHUP})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


@contextlib.contextmanager
def output_folder(path: str | os.PathLike):
    """For a command that writes into the folder ``path``: if the command fails and the folder did not exist
    before, remove what it left there as long as that holds no file (a failed run leaves no empty folder;
    it never deletes a file)."""
    path = Path(path).absolute()
    top = next((p for p in reversed([path, *path.parents]) if not p.exists()), None)  # first folder we create
    try:
        yield path
    except BaseException:
        if top is not None and top.is_dir() and not any(p.is_file() or p.is_symlink() for p in top.rglob("*")):
            shutil.rmtree(top, ignore_errors=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())  # on disk before the rename makes it visible
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


class Interrupted(BaseException):
    """SIGTERM/SIGHUP received: unwinds like KeyboardInterrupt so that ``finally`` blocks clean up."""

    def __init__(self, message: str, signum: int = signal.SIGTERM):
        super().__init__(message)
        self.signum = signum


@contextlib.contextmanager
def signals_as_exceptions():
    """Within the block, SIGTERM and SIGHUP raise :class:`Interrupted` (SIGINT already raises
    KeyboardInterrupt), so atomic outputs remove their temporaries. Only in the main thread."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _raise(signum, _frame):
        raise Interrupted(f"interrupted by signal {signal.Signals(signum).name}", signum)

    import sys

    def _redeliver(unraisable):
        # A handler's exception raised inside a weakref callback or __del__ is printed and dropped by Python
        # ("Exception ignored in ..."), and the signal would be lost: send it again, to the main flow.
        exc = unraisable.exc_value
        if isinstance(exc, (Interrupted, KeyboardInterrupt)):
            signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
            # from another thread, a little later: the handler then runs in the main flow, not in this hook
            threading.Timer(0.01, os.kill, (os.getpid(), signum)).start()
        else:
            previous_hook(unraisable)

    previous = {s: signal.signal(s, _raise) for s in (signal.SIGTERM, signal.SIGHUP)}
    previous_hook, sys.unraisablehook = sys.unraisablehook, _redeliver
    try:
        yield
    finally:
        sys.unraisablehook = previous_hook
        for s, handler in previous.items():
            signal.signal(s, handler)
