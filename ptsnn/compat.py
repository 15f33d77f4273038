"""Make lava-nc 0.10 and lava-dl 0.6 import on Python 3.11, without editing installed files.

Call :func:`apply` before the first ``import lava...`` (every ptsnn module that touches Lava does, through
:func:`import_lava`). It installs two narrowly targeted import hooks, each for one module:

1. ``lava.magma.compiler.var_model`` uses a dataclass instance (``ByteEncoder()``) as a field default.
   Python 3.11 rejects unhashable defaults (3.10 only rejected list/dict/set), so the module fails to
   import. While *that module* executes, ``dataclasses.dataclass`` gives the class ``ByteEncoder``
   ``unsafe_hash=True``. Behaviour then equals Python 3.10's: the default instance is shared, as it was.
2. ``lava.lib.dl.slayer`` imports its object-detection package at import time, which needs torchvision and
   OpenCV (CUDA-only / not installed with CPU torch). We register a placeholder module for
   ``lava.lib.dl.slayer.object_detection``; touching anything in it raises an ImportError that says why.
   ptsnn never uses slayer's object detection.

3. ``lava.magma.runtime.message_infrastructure.multiprocessing`` calls ``multiprocessing.set_start_method(
   'fork')`` at import time, which raises "context has already been set" when anything in the process
   (torch, a test, an application) chose a start method before Lava was first imported. While *that module*
   executes, ``set_start_method`` becomes tolerant: a no-op when the method is already the one asked for,
   otherwise forced (Lava's runtime only works with ``fork``).

All hooks are idempotent, only act on those module names, and are removed by :func:`remove` (tests).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.abc
import importlib.machinery
import multiprocessing
import sys
import types

_VAR_MODEL = "lava.magma.compiler.var_model"
_MP_INFRA = "lava.magma.runtime.message_infrastructure.multiprocessing"
_OBJECT_DETECTION = "lava.lib.dl.slayer.object_detection"
_HASHABLE_DEFAULT_CLASSES = frozenset({"ByteEncoder"})


class _ObjectDetectionPlaceholder(types.ModuleType):
    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        raise ImportError(
            "lava.lib.dl.slayer.object_detection needs torchvision and OpenCV, which ptsnn does not install "
            "(no CPU build of torchvision matches torch 2.13); see ptsnn/compat.py"
        )


class _PlaceholderLoader(importlib.abc.Loader):
    def create_module(self, spec):
        module = _ObjectDetectionPlaceholder(spec.name)
        module.__path__ = []  # a package, so `from .object_detection import x` fails cleanly too
        return module

    def exec_module(self, module):
        return None


@contextlib.contextmanager
def _hashable_defaults():
    """``dataclasses.dataclass`` gives the named classes ``unsafe_hash=True`` (Python 3.10 behaviour)."""
    original = dataclasses.dataclass

    def dataclass(cls=None, /, **kwargs):
        def wrap(c):
            if c.__name__ in _HASHABLE_DEFAULT_CLASSES:
                kwargs.setdefault("unsafe_hash", True)
            return original(c, **kwargs)

        return wrap if cls is None else wrap(cls)

    dataclasses.dataclass = dataclass
    try:
        yield
    finally:
        dataclasses.dataclass = original


@contextlib.contextmanager
def _tolerant_start_method():
    """``multiprocessing.set_start_method`` that does not fail when a start method is already chosen."""
    original = multiprocessing.set_start_method

    def set_start_method(method, force=False):
        current = multiprocessing.get_start_method(allow_none=True)
        if current == method:
            return None
        return original(method, force=force or current is not None)

    multiprocessing.set_start_method = set_start_method
    try:
        yield
    finally:
        multiprocessing.set_start_method = original


_PATCHES = {_VAR_MODEL: _hashable_defaults, _MP_INFRA: _tolerant_start_method}


class _PatchedLoader(importlib.abc.Loader):
    """Runs the real loader for one module inside a temporary patch of the standard library."""

    def __init__(self, wrapped: importlib.abc.Loader, patch):
        self._wrapped, self._patch = wrapped, patch

    def create_module(self, spec):
        return self._wrapped.create_module(spec)

    def exec_module(self, module):
        with self._patch():
            self._wrapped.exec_module(module)


class _LavaCompatFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname == _OBJECT_DETECTION:
            return importlib.machinery.ModuleSpec(fullname, _PlaceholderLoader(), is_package=True)
        if fullname in _PATCHES:
            for finder in sys.meta_path:
                if finder is self or not hasattr(finder, "find_spec"):
                    continue
                spec = finder.find_spec(fullname, path, target)
                if spec is not None and spec.loader is not None:
                    spec.loader = _PatchedLoader(spec.loader, _PATCHES[fullname])
                    return spec
        return None


_FINDER = _LavaCompatFinder()


def apply() -> None:
    """Install the hooks (idempotent). Must run before lava is first imported."""
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)


def remove() -> None:
    if _FINDER in sys.meta_path:
        sys.meta_path.remove(_FINDER)


def import_lava() -> None:
    """Apply the hooks and import the parts of Lava ptsnn uses, so a broken install fails early and clearly."""
    apply()
    try:
        import lava.magma.compiler.compiler  # noqa: F401
        import lava.magma.core.run_configs  # noqa: F401
        import lava.lib.dl.netx  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the installation
        from ptsnn.errors import PtsnnError

        raise PtsnnError(
            f"Lava is not importable ({exc}); run `make setup` (scripts/setup_env.sh) to install lava-nc/lava-dl"
        ) from exc
