"""Shared test helpers. Tests run with --import-mode=importlib (lava installs a top-level `tests` package)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

BIN = Path(sys.executable).parent


@pytest.fixture
def entry_point():
    """Path of an installed console script (ptsnn, ptsnn-convert) in the running environment."""

    def find(name: str) -> str:
        path = BIN / name
        if not path.exists():
            pytest.fail(f"console script {name} is not installed in {BIN}; run `make setup`")
        return str(path)

    return find
