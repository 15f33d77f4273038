"""Benchmark: search trials per hour on this machine, and where a trial's time goes (training vs conversion).

For each family with a shipped small space (``ptssnn_small``, ``ttfs_small`` when the TTFS family exists),
``--points`` points are sampled from the space file's ``[space]`` table (seeded; uniform over choices and
integer/float ranges) and each goes through the family interface as a search trial does: ``build`` ->
``check`` on the space's profile -> ``evaluate`` with the space's ``[budget]``. Printed per family: median
wall time per trial, trials per hour (one worker process, or ``--processes N`` workers sharing the
cores as ``ptsnn search --workers N`` would), and the shares of training, conversion
(chip IR + design rules + fast-simulator costs) and the rest (build, check, held-out scoring, data). The
first trial, which also generates the corpus and fills the feature cache, is reported apart.

With ``--engine`` (when ``ptsnn.search.engine`` exists) a real ``ptsnn search`` run of ``--points`` trials per
family is timed too. Usage::

    .venv/bin/python benchmarks/search_trials.py [--points 6] [--processes 2] [--out DIR] [--engine] [--family ptssnn]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SPACES = Path(__file__).resolve().parents[1] / "ptsnn" / "search" / "spaces"


def sample(space: dict, rng: np.random.Generator) -> dict:
    """One point of a ``[space]`` table: ``{choices}``, or ``{low, high}`` ints (``step``, ``log``) or floats."""
    point = {}
    for name, spec in space.items():
        if "choices" in spec:
            point[name] = spec["choices"][int(rng.integers(len(spec["choices"])))]
        elif isinstance(spec["low"], int) and isinstance(spec["high"], int):
            step = int(spec.get("step", 1))
            if spec.get("log"):
                point[name] = int(round(np.exp(rng.uniform(np.log(spec["low"]), np.log(spec["high"])))))
            else:
                point[name] = int(spec["low"] + step * rng.integers((spec["high"] - spec["low"]) // step + 1))
        else:
            lo, hi = float(spec["low"]), float(spec["high"])
            point[name] = float(np.exp(rng.uniform(np.log(lo), np.log(hi))) if spec.get("log") else rng.uniform(lo, hi))
    return point


def run_points(name: str, doc: dict, points: list[tuple[int, dict]], out: Path, seed: int,
               threads: int | None = None) -> dict:
    """build -> check -> evaluate for each ``(index, params)``; ``threads``: torch threads of this process."""
    import torch

    import ptsnn.search.families  # noqa: F401  (a spawned worker registers the families itself)
    from ptsnn.errors import PtsnnError
    from ptsnn.hw_profiles import load_profile
    from ptsnn.search.family import FAMILIES

    if threads:
        torch.set_num_threads(threads)
    family = FAMILIES[name]()
    profile = load_profile(doc["search"].get("profile", "loihi2"))
    fixed = dict(doc.get("fixed", {}))
    if name == "ptssnn":
        fixed.setdefault("cache_dir", str(out / "cache"))  # a fresh cache: the first trial pays for the data
    rows, infeasible, failed = [], {}, {}
    for i, params in points:
        t0 = time.perf_counter()
        try:
            config = family.build(params, fixed)
        except PtsnnError as exc:
            infeasible["config"] = infeasible.get("config", 0) + 1
            print(f"  {name} {i}: not a network: {exc}", flush=True)
            continue
        t_build = time.perf_counter() - t0
        t0 = time.perf_counter()
        rejected = family.check(config, profile)
        t_check = time.perf_counter() - t0
        if rejected:
            infeasible[rejected[0].rule] = infeasible.get(rejected[0].rule, 0) + 1
            print(f"  {name} {i}: infeasible ({rejected[0].rule}) after {t_check:.2f} s check", flush=True)
            continue
        t0 = time.perf_counter()
        try:
            ev = family.evaluate(config, profile, dict(doc.get("budget", {})), out / name / f"trial{i}", seed + i)
        except PtsnnError as exc:  # e.g. a value design rule after training
            failed[type(exc).__name__] = failed.get(type(exc).__name__, 0) + 1
            print(f"  {name} {i}: failed: {exc}", flush=True)
            continue
        t_eval = time.perf_counter() - t0
        wall = t_build + t_check + t_eval
        rows.append(dict(index=i, wall=wall, train=ev.train_seconds, convert=ev.convert_seconds,
                         other=wall - ev.train_seconds - ev.convert_seconds, war=ev.war, uar=ev.uar,
                         energy_uj=ev.costs.get("energy_uj"), params=params))
        print(f"  {name} {i}: {wall:6.2f} s (train {ev.train_seconds:.2f}, convert {ev.convert_seconds:.2f}) "
              f"WAR {100 * ev.war:.1f} % UAR {100 * ev.uar:.1f} %  {json.dumps(params)}", flush=True)
    return dict(rows=rows, infeasible=infeasible, failed=failed)


def bench_family(name: str, doc: dict, points: int, out: Path, seed: int, processes: int = 1) -> dict:
    """``points`` sampled points, in one process (torch's default threads) or spread round-robin over
    ``processes`` spawned workers sharing the cores (as ``ptsnn search --workers`` would)."""
    rng = np.random.default_rng(seed)
    todo = [(i, sample(doc["space"], rng)) for i in range(points)]
    t0 = time.perf_counter()
    if processes <= 1:
        res = run_points(name, doc, todo, out, seed)
    else:
        import multiprocessing
        import os
        from concurrent.futures import ProcessPoolExecutor

        threads = max(1, (os.cpu_count() or 1) // processes)
        with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")) as pool:
            parts = list(pool.map(run_points, [name] * processes, [doc] * processes,
                                  [todo[k::processes] for k in range(processes)], [out] * processes,
                                  [seed] * processes, [threads] * processes))
        res = dict(rows=sorted((r for p in parts for r in p["rows"]), key=lambda r: r["index"]),
                   infeasible=_merge(p["infeasible"] for p in parts), failed=_merge(p["failed"] for p in parts))
    res.update(wall=time.perf_counter() - t0, processes=processes)
    return res


def _merge(counts) -> dict:
    out: dict = {}
    for c in counts:
        for k, v in c.items():
            out[k] = out.get(k, 0) + v
    return out


def summarise(name: str, res: dict) -> dict | None:
    rows = res["rows"]
    if not rows:
        print(f"{name}: no trial was evaluated (infeasible {res['infeasible']}, failed {res['failed']})")
        return None
    first, steady = rows[0], rows[1:] or rows
    med = {k: statistics.median(r[k] for r in steady) for k in ("wall", "train", "convert", "other")}
    total = sum(r["wall"] for r in steady)
    share = {k: sum(r[k] for r in steady) / total for k in ("train", "convert", "other")}
    procs = res["processes"]
    # one process: from the median trial (the corpus-building first trial apart); several: what they got done
    per_hour = 3600.0 / med["wall"] if procs <= 1 else 3600.0 * len(rows) / res["wall"]
    summary = dict(family=name, processes=procs, evaluated=len(rows), infeasible=res["infeasible"],
                   failed=res["failed"], wall_s=res["wall"], first_trial_s=first["wall"],
                   median_trial_s=med["wall"], median_train_s=med["train"], median_convert_s=med["convert"],
                   trials_per_hour=per_hour, share_train=share["train"], share_convert=share["convert"],
                   share_other=share["other"],
                   train_to_convert=med["train"] / med["convert"] if med["convert"] else None)
    how = (f"median {med['wall']:.2f} s per trial after the first ({first['wall']:.1f} s: corpus + feature "
           f"cache) = {per_hour:.0f} trials/hour on one worker" if procs <= 1 else
           f"{len(rows)} trials in {res['wall']:.1f} s on {procs} worker processes = {per_hour:.0f} trials/hour "
           f"(median trial {med['wall']:.2f} s)")
    print(f"{name}: {len(rows)} evaluated (+ infeasible {res['infeasible'] or 0}, failed {res['failed'] or 0}); "
          f"{how}; median train {med['train']:.2f} s, convert {med['convert']:.2f} s "
          f"(train/convert {summary['train_to_convert']:.1f}x); time shares: training {100 * share['train']:.1f} %, "
          f"conversion {100 * share['convert']:.1f} %, other {100 * share['other']:.1f} %")
    return summary


def engine_run(space: str, points: int, out: Path) -> dict | None:
    if importlib.util.find_spec("ptsnn.search.engine") is None:
        print("ptsnn.search.engine is not part of this checkout: no engine run")
        return None
    cmd = [sys.executable, "-m", "ptsnn.cli.main", "search", "--space", space, "--out", str(out / f"engine-{space}"),
           "--trials", str(points), "-q"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        print(f"engine run of {space} failed (exit {proc.returncode}): {proc.stderr.strip()[-400:]}")
        return None
    print(f"engine `ptsnn search --space {space} --trials {points}`: {wall:.1f} s = "
          f"{3600 * points / wall:.0f} trials/hour (one worker, start-up and outputs included)")
    return dict(space=space, trials=points, wall_s=wall, trials_per_hour=3600 * points / wall)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=6, help="sampled points per family (default 6)")
    ap.add_argument("--family", action="append", choices=["ptssnn", "ttfs"], help="default: every family present")
    ap.add_argument("--out", type=Path, default=None, help="trial folders (default: a temporary folder)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--processes", type=int, default=1,
                    help="spread the points over N worker processes sharing the cores (default 1)")
    ap.add_argument("--engine", action="store_true", help="also time a real `ptsnn search` run per family")
    ap.add_argument("--json", type=Path, default=None, help="write the summaries here")
    args = ap.parse_args(argv)

    import torch

    import ptsnn.search.families  # noqa: F401  (registers the families present)
    from ptsnn import safeio
    from ptsnn.search.family import FAMILIES

    wanted = args.family or [f for f in ("ptssnn", "ttfs") if f in FAMILIES]
    missing = [f for f in wanted if f not in FAMILIES]
    if missing:
        print(f"family {missing[0]} is not part of this checkout (present: {', '.join(FAMILIES)})")
        return 2
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; families {', '.join(wanted)}; "
          f"{args.points} points each")
    with tempfile.TemporaryDirectory(prefix="ptsnn-bench-search-") as tmp:
        out = args.out or Path(tmp)
        summaries, engines = [], []
        for name in wanted:
            path = SPACES / f"{name}_small.toml"
            doc = safeio.parse_toml(safeio.read_text(path, "search space"), str(path))
            summary = summarise(name, bench_family(name, doc, args.points, out, args.seed, args.processes))
            if summary:
                summaries.append(summary)
            if args.engine:
                engines.append(engine_run(f"{name}_small", args.points, out))
        if len(summaries) == 2:
            a, b = summaries
            print(f"{a['family']} / {b['family']} median trial time: {a['median_trial_s'] / b['median_trial_s']:.2f}x")
    if args.json:
        args.json.write_text(json.dumps(dict(families=summaries, engine=[e for e in engines if e]), indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
