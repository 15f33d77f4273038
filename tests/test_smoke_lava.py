"""Lava fixed_pt == fast simulator, spike for spike, on a dense CUBA network with delays (runs Lava)."""

import os
import time
from pathlib import Path

import numpy as np
import pytest

from ptsnn.deploy import lava_runner
from ptsnn.deploy.smoke import SmokeConfig, build_network, make_inputs, run_smoke
from ptsnn.errors import LavaRunError
from ptsnn.formats.netx import write_netx

pytestmark = pytest.mark.lava


def _our_lava_processes(marker: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


def test_smoke_network_is_bit_exact_in_every_layer(tmp_path):
    report = run_smoke(tmp_path, SmokeConfig(steps=40, batch=1), timeout_s=240)
    assert all(c > 0 for c in report.lava_counts), "every layer must be active for the test to mean anything"
    assert report.mismatches == [0, 0, 0]
    assert report.lava_counts == report.fast_counts


@pytest.mark.slow
def test_smoke_long_run_is_bit_exact(tmp_path):
    report = run_smoke(tmp_path, SmokeConfig(steps=1000, batch=2, seed=3), timeout_s=600)
    assert report.exact and min(report.lava_counts) > 0


def test_timeout_kills_the_whole_lava_process_group(tmp_path):
    cfg = SmokeConfig(steps=20000, batch=1)
    path = write_netx(tmp_path / "big.net", build_network(cfg))
    start = time.monotonic()
    with pytest.raises(LavaRunError, match="timed out"):
        lava_runner.run_netx(path, make_inputs(cfg), timeout_s=3, log_dir=tmp_path)
    assert time.monotonic() - start < 30
    time.sleep(0.5)
    assert _our_lava_processes(str(tmp_path)) == [] and _our_lava_processes("ptsnn.deploy._lava_worker job") == []


def test_lava_failure_is_one_line_with_log(tmp_path):
    bad = tmp_path / "bad.net"
    bad.write_bytes(b"this is not hdf5")
    with pytest.raises(LavaRunError) as err:
        lava_runner.run_netx(bad, np.zeros((1, 4, 5), np.int32), timeout_s=120, log_dir=tmp_path)
    msg = str(err.value)
    assert "\n" not in msg and "failed" in msg and "lava.log" in msg
    assert os.path.getsize(tmp_path / "lava.log") > 0
