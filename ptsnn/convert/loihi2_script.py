"""Loihi 2 hardware: detection of Intel's lava-loihi and the run script copied into a bundle.

The script (``run_loihi2.py`` in this package, copied verbatim) is self-contained: Lava, lava-loihi, numpy,
h5py and the standard library, no ptsnn, so the Loihi 2 host needs no ptsnn install. It builds the process
graph of ``ptsnn.deploy.lava_graph`` from the bundle's chip IR and runs it with ``Loihi2HwCfg``; ``--sim``
runs it with ``Loihi2SimCfg(select_tag='fixed_pt')`` instead, which is how the tests prove it right without
hardware (lava-loihi is distributed to INRC members only and needs a Loihi 2 system).
"""

from __future__ import annotations

from pathlib import Path

from ptsnn.errors import InputError
from ptsnn.fileio import atomic_write_bytes

SCRIPT_NAME = "run_loihi2.py"


def lava_loihi_installed() -> bool:
    """Lava's own test (``lava.utils.loihi.is_installed``): is Intel's lava-loihi importable?"""
    from ptsnn import compat

    compat.apply()
    try:
        from lava.utils.loihi import is_installed
    except ImportError:
        return False
    return bool(is_installed())


def require_lava_loihi() -> None:
    if not lava_loihi_installed():
        raise InputError("Loihi 2 hardware needs Intel's lava-loihi package, which is not installed (it is "
                         "distributed to INRC members); run with --backend lava (CPU simulation) or fast")


def write_run_script(bundle_dir: str | Path) -> Path:
    path = Path(bundle_dir) / SCRIPT_NAME
    atomic_write_bytes(path, Path(__file__).with_name(SCRIPT_NAME).read_bytes())  # copied verbatim
    return path
