"""Whole-process time of `ptsnn run BUNDLE x.wav --backend fast` for a 3 s utterance (start-up dominates).

Builds the small untrained bundle (``ptsnn.testing.synthetic_bundle``) and a 3 s 16 kHz wav, then times the
command as a user pays for it (a fresh interpreter each time, like hyperfine): median of ``--runs``, next to
a bare ``python -c pass`` and ``import ptsnn.cli.main``. Then one ``python -X importtime`` run lists the
imports that dominate. Target (issue 9): < 0.5 s.
Usage: .venv/bin/python benchmarks/cli_startup.py [--runs 7] [--bundle DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def timed(cmd: list[str], runs: int, env: dict) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        out.append(time.perf_counter() - t0)
    return out


def top_imports(cmd: list[str], env: dict, n: int = 12) -> list[tuple[int, str]]:
    """Top-level imports by cumulative microseconds (``-X importtime`` lines whose name is not indented)."""
    res = subprocess.run([cmd[0], "-X", "importtime", *cmd[1:]], env=env, capture_output=True, text=True, check=True)
    rows = []
    for line in res.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line.split("|")
        if not name.startswith("  "):  # one space after the bar: a top-level import
            rows.append((int(cumulative), name.strip()))
    return sorted(rows, reverse=True)[:n]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--bundle", type=Path, help="an existing bundle (default: build the small untrained one)")
    ap.add_argument("--src", type=Path, help="the ptsnn source tree to time (default: this checkout), e.g. an "
                    "older commit's `git archive` to compare in one sitting")
    args = ap.parse_args()
    env = dict(os.environ)
    src = args.src.resolve() if args.src else Path(__file__).resolve().parents[1]
    env["PYTHONPATH"] = str(src) + os.pathsep + env.get("PYTHONPATH", "")
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        bundle = args.bundle
        if bundle is None:
            from ptsnn.testing import synthetic_bundle

            bundle = synthetic_bundle(tmp / "b")
        import soundfile as sf

        t = np.arange(3 * 16000) / 16000
        wave = 0.3 * np.sin(2 * np.pi * 220 * t) * np.sin(2 * np.pi * 3 * t)
        wav = tmp / "x.wav"
        sf.write(wav, wave.astype(np.float32), 16000)
        run_cmd = [py, "-m", "ptsnn.cli.main", "run", str(bundle), str(wav), "--backend", "fast"]
        bare = timed([py, "-c", "pass"], args.runs, env)
        imp = timed([py, "-c", "import ptsnn.cli.main"], args.runs, env)
        full = timed(run_cmd, args.runs, env)
        tops = top_imports(run_cmd, env)
    med = statistics.median
    print(f"source {src}; {args.runs} runs each, fresh interpreter per run, 3 s utterance, backend fast")
    print(f"python -c pass           : median {med(bare):.3f} s")
    print(f"import ptsnn.cli.main    : median {med(imp):.3f} s")
    print(f"ptsnn run ... --backend fast: median {med(full):.3f} s (min {min(full):.3f}, max {max(full):.3f}); "
          f"target < 0.5 s")
    print("top-level imports of that command (-X importtime, cumulative):")
    for us, name in tops:
        print(f"  {us / 1e3:8.1f} ms  {name}")


if __name__ == "__main__":
    main()
