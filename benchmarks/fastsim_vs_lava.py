"""Fast simulator vs Lava CPU simulation (fixed_pt) on the same netx network and inputs, in one run.

Prints medians over repeats and the ratio per sample. Lava's time includes building and compiling the
process graph for each sample (that is what a user pays per utterance); the fast simulator runs the whole
batch at once. Usage: .venv/bin/python benchmarks/fastsim_vs_lava.py [--steps 200] [--batch 4] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from ptsnn.deploy import fastsim, lava_runner
from ptsnn.deploy.smoke import SmokeConfig, build_network, make_inputs
from ptsnn.formats.netx import write_netx


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    cfg = SmokeConfig(steps=args.steps, batch=args.batch)
    layers, inputs = build_network(cfg), make_inputs(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        path = write_netx(Path(tmp) / "bench.net", layers)
        fast_times, lava_times = [], []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            fast = fastsim.simulate(layers, inputs)
            fast_times.append(time.perf_counter() - t0)
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            lava = lava_runner.run_netx(path, inputs, timeout_s=1200)
            lava_times.append(time.perf_counter() - t0)
    assert np.array_equal(lava.output, fast.output), "fast simulator and Lava disagree"
    fast_ps = statistics.median(fast_times) / args.batch
    lava_ps = statistics.median(lava_times) / args.batch
    print(f"network {' -> '.join(map(str, cfg.sizes))}, {args.steps} steps, batch {args.batch}, {args.repeats} repeats")
    print(f"fast simulator: {fast_ps * 1e3:9.3f} ms per sample (median)")
    print(f"Lava fixed_pt : {lava_ps * 1e3:9.1f} ms per sample (median, incl. per-sample graph build)")
    print(f"ratio Lava/fast: {lava_ps / fast_ps:,.0f}x (outputs identical)")


if __name__ == "__main__":
    main()
