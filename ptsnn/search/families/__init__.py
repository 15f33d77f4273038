"""The model families the search knows; importing this package registers each in
``ptsnn.search.family.FAMILIES``."""

from __future__ import annotations

from ptsnn.errors import InputError
from ptsnn.search.family import FAMILIES, Family
from ptsnn.search.families import ptssnn, ttfs  # noqa: F401  (register "ptssnn", "ttfs")


def get_family(name: str, origin: str = "search") -> Family:
    if name not in FAMILIES:
        raise InputError(f"{origin}: search.family {name!r}: expected one of {', '.join(sorted(FAMILIES))}")
    return FAMILIES[name]()
