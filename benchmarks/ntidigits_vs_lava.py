"""lava-dl's NTIDIGITS reference network (5 netx layers, axonal delays up to 62), 3,000 steps, one sample:
the fast netx executor in-process vs Lava's CPU simulation (fixed_pt), side by side in one run.

The fast side is the median of ``--repeats`` in-process runs (``ptsnn.deploy.fastsim.simulate`` on the parsed
file); Lava is one run through ``ptsnn.deploy.lava_runner.run_netx`` (a worker process: network build, compile
and 3,000 steps), timed around the whole call, and its in-worker run time when the worker reports it. Both
outputs must be identical. Target (issue 9): >= 1,000x.
Usage: .venv/bin/python benchmarks/ntidigits_vs_lava.py [--repeats 7] [--no-lava]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from ptsnn.deploy import fastsim, lava_runner
from ptsnn.formats.netx import read_netx

GTS = Path(np.__file__).resolve().parents[1] / "tests" / "lava" / "lib" / "dl" / "netx" / "gts" / "ntidigits"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--no-lava", action="store_true", help="time the fast side only")
    args = ap.parse_args()
    net = GTS / "ntidigits.net"
    layers = read_netx(net, num_layers=5)  # layer 5 is an 'average' layer that netx does not build either
    inp = np.load(GTS / "input.npy").astype(np.int32)
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        fast = fastsim.simulate(layers, inp)
        times.append(time.perf_counter() - t0)
    fast_s = statistics.median(times)
    print(f"NTIDIGITS reference network, input {inp.shape} ({inp.shape[-1]} steps), one sample")
    print(f"fast executor (in-process): median {fast_s * 1e3:.1f} ms over {args.repeats} runs "
          f"(min {min(times) * 1e3:.1f} ms)")
    if args.no_lava:
        return
    t0 = time.perf_counter()
    lava = lava_runner.run_netx(net, inp, timeout_s=3600, num_layers=5)
    lava_s = time.perf_counter() - t0
    same = len(lava.layer_outputs) == len(fast.layer_outputs) and all(
        np.array_equal(a, b) for a, b in zip(lava.layer_outputs, fast.layer_outputs))
    assert same, "fast executor and Lava disagree"
    print(f"Lava fixed_pt (worker: build, compile, run): {lava_s:.1f} s")
    print(f"ratio Lava / fast: {lava_s / fast_s:,.0f}x (every layer's output identical); target >= 1,000x")


if __name__ == "__main__":
    main()
