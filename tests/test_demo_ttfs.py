"""`ptsnn demo-ttfs` at a tiny size: every stage runs (train, convert, verify with one Lava clip, baselines,
report) and its summary states exactness, fire-once and both baselines beside the network."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg", "COLUMNS": "200"}


@pytest.mark.lava
def test_demo_ttfs_tiny(tmp_path):
    out = tmp_path / "demo"
    r = subprocess.run([sys.executable, "-m", "ptsnn.cli.main", "demo-ttfs", "--out", str(out), "--epochs", "2",
                        "--subjects", "6", "--takes", "1", "--size", "8", "--frames", "4", "-k", "4", "--lava", "1"],
                       capture_output=True, text=True, timeout=600, env=ENV)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    text = r.stdout
    assert "== Lava fixed_pt (1 clip(s)): exact" in text
    assert "quantized 1, fast 1, lava 1" in text  # at most one spike per neuron in every backend
    assert "per-frame-mean baseline: WAR" in text and "temporal baseline:" in text and "TNAS-ER published 48 ms" in text
    verify = json.loads((out / "verify" / "verify_ttfs.json").read_text())
    assert verify["fire_once"] == {"quantized": 1, "fast": 1, "lava": 1}
    assert all(row["quantized==fast"] == 100.0 and row["fast==lava"] == 100.0 for row in verify["layers"])
    report = json.loads((out / "report" / "report.json").read_text())
    assert report["ttfs"]["fire_once_ok"] and (out / "report" / "plots" / "first_spike_times.png").is_file()
    assert (out / "bundle" / "run_loihi2.py").is_file() and (out / "verify" / "accuracy_vs_k.png").is_file()
