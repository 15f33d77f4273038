"""The model families the search knows, registered in ``ptsnn.search.family.FAMILIES`` on import.

``ptssnn`` is optional here: the module is written separately and may be absent from a checkout.
"""

from __future__ import annotations

import importlib

from ptsnn.errors import InputError
from ptsnn.search.family import FAMILIES, Family
from ptsnn.search.families import ttfs  # noqa: F401  (registers "ttfs")

try:  # registers "ptssnn"
    importlib.import_module("ptsnn.search.families.ptssnn")
except ModuleNotFoundError as exc:
    if exc.name != "ptsnn.search.families.ptssnn":
        raise


def get_family(name: str, origin: str = "search") -> Family:
    if name not in FAMILIES:
        raise InputError(f"{origin}: search.family {name!r}: expected one of {', '.join(sorted(FAMILIES))}")
    return FAMILIES[name]()
