"""Conversion benchmark: `paper` config (1.19 M parameters) checkpoint -> loihi2 bundle.

Builds a paper-config PTS-SNN (data-driven init on random 768-d features, the shape of emotion2vec frames),
saves it as a checkpoint, then converts it several times in this process with calibration data, printing
the median wall time and the peak resident memory. Target (issue #4): a few seconds, well under 2 GB.
Usage: .venv/bin/python benchmarks/convert_paper.py [--repeats 3] [--emit netx,nir,onnx]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ptsnn.convert.bundle import convert_checkpoint
from ptsnn.hw_profiles import load_profile
from ptsnn.train.checkpoint import save_checkpoint
from ptsnn.train.config import load_config
from ptsnn.train.model import PTSSNN


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--emit", default="netx,nir,onnx")
    args = ap.parse_args()
    emit = tuple(e for e in args.emit.split(",") if e)
    cfg = load_config("paper")
    cfg.frontend = {"kind": "features", "dim": 768, "dir": "features"}
    torch.manual_seed(0)
    model = PTSSNN(cfg.model)
    model.data_init(torch.randn(4, 100, 768) * 2)
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(tmp) / "paper.pt"
        save_checkpoint(ckpt, model, cfg, {"angry": 0, "happy": 1, "neutral": 2, "sad": 3}, cfg.frontend)
        calib = Path(tmp) / "calib.npz"
        np.savez(calib, features=np.random.default_rng(0).normal(0, 2, (8, 150, 768)).astype(np.float32))
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        times = []
        for i in range(args.repeats):
            t0 = time.perf_counter()
            res = convert_checkpoint(ckpt, load_profile("loihi2"), Path(tmp) / f"bundle{i}", emit=emit, calib=calib)
            times.append(time.perf_counter() - t0)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"paper config: {model.num_trainable():,} trainable parameters, {res.report['total_cores']} loihi2 cores, "
          f"emit {','.join(emit)}, calibration 8 x 150 frames")
    print(f"conversion wall time: median {statistics.median(times):.2f} s over {args.repeats} runs "
          f"(min {min(times):.2f}, max {max(times):.2f})")
    print(f"peak RSS: {peak:.0f} MiB (process incl. torch; {rss_before:.0f} MiB before converting)")


if __name__ == "__main__":
    main()
