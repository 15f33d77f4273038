"""Fast simulator vs Lava CPU simulation on the same PTS-SNN bundle and inputs, in one run.

Runs the synthetic test split through the bundle's host part (host.onnx), then the chip part on the fast
simulator (all utterances in one batch) and in Lava (the first --lava utterances, one process graph each,
what `ptsnn run` does), checks they agree exactly, and prints per-utterance medians and their ratio.
Without --bundle it converts a freshly initialised small-config model (same architecture as the demo).
Usage: .venv/bin/python benchmarks/bundle_fast_vs_lava.py [--bundle runs/demo/bundle] [--utterances 48] [--lava 2]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    from ptsnn.deploy.bundle_io import load_bundle
    from ptsnn.deploy.run import chip_run
    from ptsnn.report.inputs import report_payloads
    from ptsnn.testing import synthetic_bundle

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", type=Path)
    ap.add_argument("--utterances", type=int, default=48)
    ap.add_argument("--lava", type=int, default=2)
    ap.add_argument("--max-frames", type=int, default=150)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bundle = load_bundle(args.bundle or synthetic_bundle(Path(tmp)))
        payloads, names, _ = report_payloads(bundle, "synthetic", args.utterances, args.max_frames)
        fast_times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            fast = chip_run(bundle, payloads, "fast")
            fast_times.append(time.perf_counter() - t0)
        lava_times = []
        for i in range(min(args.lava, len(payloads))):
            t0 = time.perf_counter()
            (lava,) = chip_run(bundle, [payloads[i]], "lava", timeout_s=1800)
            lava_times.append(time.perf_counter() - t0)
            for name, spikes in lava["spikes"].items():
                assert np.array_equal(spikes, fast[i]["spikes"][name]), f"{name} differs on utterance {i}"
            assert np.array_equal(lava["readout"], fast[i]["readout"])
    steps = statistics.mean(len(p) + bundle.flush_steps for p in payloads)
    fast_per = statistics.median(fast_times) / len(payloads)
    lava_per = statistics.median(lava_times)
    print(f"bundle {bundle.path.name}: {sum(p.size for p in bundle.graph.populations)} neurons, "
          f"{len(payloads)} synthetic test utterances, {steps:.0f} chip steps each on average")
    print(f"fast simulator: whole split in {statistics.median(fast_times):.2f} s (median of {args.repeats}), "
          f"{fast_per * 1e3:.1f} ms per utterance")
    print(f"Lava fixed_pt : {lava_per:.1f} s per utterance (median of {len(lava_times)}, incl. graph build)")
    print(f"ratio per utterance: {lava_per / fast_per:,.0f}x; spikes and readout identical on the Lava utterances")


if __name__ == "__main__":
    main()
