"""Model families of the search; importing this package registers each in ``ptsnn.search.family.FAMILIES``."""

from importlib import import_module

for _name in ("ttfs", "ptssnn"):
    try:
        import_module(f"{__name__}.{_name}")
    except ModuleNotFoundError as exc:  # a family module not (yet) part of this checkout
        if exc.name != f"{__name__}.{_name}":
            raise
