"""Loihi 2 hardware: detection of Intel's lava-loihi and the generated run script of a bundle.

ptsnn cannot test this path (lava-loihi is distributed to INRC members only and needs a Loihi 2 system); it
builds exactly the process graph verified in Lava's CPU simulation (``ptsnn.deploy.lava_graph``) and runs it
with ``Loihi2HwCfg`` instead of ``Loihi2SimCfg(select_tag='fixed_pt')``.
"""

from __future__ import annotations

from pathlib import Path

from ptsnn.errors import InputError
from ptsnn.fileio import atomic_write_text

SCRIPT_NAME = "run_loihi2.py"

_SCRIPT = '''#!/usr/bin/env python3
"""Run this ptsnn bundle on Loihi 2 hardware (needs Intel's lava-loihi and a Loihi 2 system).

Usage: python run_loihi2.py PAYLOAD.npy
PAYLOAD.npy: the host part's graded payloads [steps, features] (int), e.g. from host.onnx; the script appends
the bundle's flush steps, runs the same process graph that ptsnn verified in Lava's CPU simulation, with
Loihi2HwCfg, and prints the label read from the Sigma readout.
"""
import json
import sys
from pathlib import Path

import numpy as np

from ptsnn.convert.loihi2_script import require_lava_loihi
from ptsnn.deploy.lava_graph import build

require_lava_loihi()
from lava.magma.core.run_conditions import RunSteps  # noqa: E402
from lava.magma.core.run_configs import Loihi2HwCfg  # noqa: E402

bundle = Path(__file__).resolve().parent
manifest = json.loads((bundle / "manifest.json").read_text())
payload = np.load(sys.argv[1], allow_pickle=False).astype(np.int64)
steps = len(payload) + manifest["timing"]["flush_steps"]
padded = np.zeros((steps, payload.shape[1]), np.int64)
padded[: len(payload)] = payload
runners, sinks, _ = build(bundle, padded.T, steps)
try:
    for runner in runners:
        runner.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2HwCfg())
    readout = sinks["readout"].data.get()[:, steps - 1]
finally:
    for runner in runners:
        runner.stop()
classes = manifest.get("classes") or [str(i) for i in range(len(readout))]
print(classes[int(np.argmax(readout))], readout.tolist())
'''


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
    atomic_write_text(path, _SCRIPT)
    return path
