"""Whole-process time of `ptsnn run BUNDLE x.wav --backend fast` for a 3 s utterance (start-up dominates).

Builds the small untrained bundle (``ptsnn.testing.synthetic_bundle``) and a 3 s 16 kHz wav, then times the
command as a user pays for it (a fresh interpreter each time, like hyperfine): median of ``--runs``, next to
a bare ``python -c pass`` and the floor of the libraries the command cannot do without (numpy, h5py,
onnxruntime, soundfile). Bytecode is cached in a temporary folder (``PYTHONPYCACHEPREFIX``, one warm-up run)
as in an installed package; an environment with ``PYTHONDONTWRITEBYTECODE=1`` would otherwise recompile
every module on every run. With several ``--src`` trees the runs are interleaved (tree A, B, A, B, ...) so
that a change of load on a shared machine hits every tree alike. Then one ``python -X importtime`` run
lists the imports that dominate. Target (issue 9): < 0.5 s.
Usage: .venv/bin/python benchmarks/cli_startup.py [--runs 15] [--bundle DIR] [--src TREE ...]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TARGET_S = 0.5
FLOOR = "import numpy, h5py, onnxruntime, soundfile"


CPU: dict[tuple, list[float]] = {}  # command -> CPU seconds (user + system) of each run


def once(cmd: list[str], env: dict) -> float:
    """One run, from a neutral folder: ``python -m`` puts the working directory first on ``sys.path``, so
    started from a checkout it would import that checkout whatever ``PYTHONPATH`` says. Returns the wall
    time; the child's CPU time, which other jobs on a shared machine disturb much less, goes to ``CPU``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   cwd=env["PTSNN_BENCH_CWD"])
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    key = (*cmd, env.get("PYTHONPATH", ""))
    CPU.setdefault(key, []).append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return wall


def top_imports(cmd: list[str], env: dict, n: int = 12) -> list[tuple[int, str]]:
    """Top-level imports by cumulative microseconds (``-X importtime`` lines whose name is not indented)."""
    res = subprocess.run([cmd[0], "-X", "importtime", *cmd[1:]], env=env, capture_output=True, text=True, check=True,
                         cwd=env["PTSNN_BENCH_CWD"])
    rows = []
    for line in res.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line.split("|")
        if not name[1:].startswith(" "):  # one space after the bar: a top-level import
            rows.append((int(cumulative), name.strip()))
    return sorted(rows, reverse=True)[:n]


def load_average() -> str:
    try:
        return " / ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--bundle", type=Path, help="an existing bundle (default: build the small untrained one)")
    ap.add_argument("--src", type=Path, action="append", help="a ptsnn source tree to time (default: this "
                    "checkout); repeat to compare, e.g. an older commit's `git archive`, in one sitting")
    args = ap.parse_args()
    srcs = [s.resolve() for s in args.src] if args.src else [Path(__file__).resolve().parents[1]]
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        base = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        base.update(PYTHONPYCACHEPREFIX=str(tmp / "pycache"), OMP_NUM_THREADS="1", PTSNN_BENCH_CWD=str(tmp))
        envs = {s: dict(base, PYTHONPATH=str(s) + os.pathsep + base.get("PYTHONPATH", "")) for s in srcs}
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
        for s in srcs:  # warm-up: writes the bytecode cache
            once(run_cmd, envs[s])
        once([py, "-c", FLOOR], base)
        load_before = load_average()
        bare, floor, full = [], [], {s: [] for s in srcs}
        for _ in range(args.runs):
            bare.append(once([py, "-c", "pass"], base))
            floor.append(once([py, "-c", FLOOR], base))
            for s in srcs:
                full[s].append(once(run_cmd, envs[s]))
        load_after = load_average()
        tops = top_imports(run_cmd, envs[srcs[-1]])
    med = statistics.median
    cpu = {s: med(CPU[(*run_cmd, envs[s]["PYTHONPATH"])][1:]) for s in srcs}  # [0] is the warm-up
    cpu_floor = med(CPU[(py, "-c", FLOOR, base.get("PYTHONPATH", ""))][1:])
    print(f"{args.runs} runs each, interleaved, fresh interpreter per run, 3 s utterance, backend fast; "
          f"load average (1/5/15 min) before {load_before}, after {load_after}")
    print(f"python -c pass                         : median {med(bare):.3f} s")
    print(f"{FLOOR:39s}: median {med(floor):.3f} s, CPU {cpu_floor:.3f} s (what the command cannot do without)")
    for s in srcs:
        m = med(full[s])
        print(f"ptsnn run ... --backend fast  [{s}]\n    median {m:.3f} s (min {min(full[s]):.3f}, max "
              f"{max(full[s]):.3f}); {m / TARGET_S:.2f}x the {TARGET_S} s target "
              f"({'met' if m < TARGET_S else 'missed'}); {m - med(floor):.3f} s above the library floor; "
              f"CPU (user + system) median {cpu[s]:.3f} s")
    print(f"top-level imports of that command ({srcs[-1].name}, -X importtime, cumulative):")
    for us, name in tops:
        print(f"  {us / 1e3:8.1f} ms  {name}")


if __name__ == "__main__":
    main()
