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

Both hooks are idempotent, only act on those module names, and are removed by :func:`remove` (tests).
"""

from __future__ import annotations

import dataclasses
import importlib.abc
import importlib.machinery
import sys
import types

_VAR_MODEL = "lava.magma.compiler.var_model"
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


class _HashableDefaultsLoader(importlib.abc.Loader):
    """Runs the real loader with a dataclass decorator that makes the named classes hashable."""

    def __init__(self, wrapped: importlib.abc.Loader):
        self._wrapped = wrapped

    def create_module(self, spec):
        return self._wrapped.create_module(spec)

    def exec_module(self, module):
        original = dataclasses.dataclass

        def dataclass(cls=None, /, **kwargs):
            def wrap(c):
                if c.__name__ in _HASHABLE_DEFAULT_CLASSES:
                    kwargs.setdefault("unsafe_hash", True)
                return original(c, **kwargs)

            return wrap if cls is None else wrap(cls)

        dataclasses.dataclass = dataclass
        try:
            self._wrapped.exec_module(module)
        finally:
            dataclasses.dataclass = original


class _LavaCompatFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname == _OBJECT_DETECTION:
            return importlib.machinery.ModuleSpec(fullname, _PlaceholderLoader(), is_package=True)
        if fullname == _VAR_MODEL:
            for finder in sys.meta_path:
                if finder is self or not hasattr(finder, "find_spec"):
                    continue
                spec = finder.find_spec(fullname, path, target)
                if spec is not None and spec.loader is not None:
                    spec.loader = _HashableDefaultsLoader(spec.loader)
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
