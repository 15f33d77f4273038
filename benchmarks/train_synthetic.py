"""Benchmark: train the default ``small`` PTS-SNN on the built-in synthetic corpus, float then QAT.

Prints chance, float and QAT validation/test WA/UA and wall times. Usage::

    .venv/bin/python benchmarks/train_synthetic.py [--out DIR] [--epochs N] [--set key=value ...]

The corpus (8 speakers x 4 classes x 12 utterances; 6/1/1 speakers train/valid/test) is generated into
``OUT/synthetic-corpus`` and its fbank features cached in ``OUT/cache`` (reused by later runs).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

import torch
from rich.console import Console


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/bench-train-synthetic"))
    ap.add_argument("--config", default="small")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--no-qat", action="store_true")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--quiet", action="store_true", help="hide the trainer's per-epoch log")
    args = ap.parse_args(argv)

    from ptsnn.data.corpora import load_corpus
    from ptsnn.frontend import build_frontend
    from ptsnn.train.config import load_config
    from ptsnn.train.dataset import prepare_features
    from ptsnn.train.trainer import train

    overrides = list(args.overrides) + ([f"train.epochs={args.epochs}"] if args.epochs else [])
    cfg = load_config(args.config, overrides)
    con = Console()
    con.print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; config {cfg.name}: "
              f"{json.dumps(cfg.to_dict()['train'])}", highlight=False, soft_wrap=True)

    t0 = time.perf_counter()
    corpus = load_corpus("synthetic", args.out / "synthetic-corpus")
    t_corpus = time.perf_counter() - t0
    t0 = time.perf_counter()
    fe = build_frontend(dict(cfg.frontend))
    feats = prepare_features(corpus, fe, None, args.out / "cache", progress=True)
    t_feats = time.perf_counter() - t0

    t0 = time.perf_counter()
    log = Console(file=io.StringIO(), width=160) if args.quiet else con
    result = train(cfg, corpus, args.out / "run", qat=not args.no_qat, frontend=fe, features=feats,
                   progress=not args.quiet, console=log)
    t_train = time.perf_counter() - t0

    floats = [h for h in result.history if h.phase == "float"]
    qats = [h for h in result.history if h.phase == "qat"]
    t_float = sum(h.seconds for h in floats)
    t_qat = sum(h.seconds for h in qats)

    def pct(x):
        return f"{100 * x:5.1f}" if x is not None else "   - "

    con.print(f"\ncorpus: {len(corpus)} utterances ({t_corpus:.1f} s), features {t_feats:.1f} s; "
              f"float epochs {len(floats)} (best {result.best_epoch}) {t_float:.0f} s, "
              f"QAT epochs {max(0, len(qats) - 1)} (best {result.best_qat_epoch}) {t_qat:.0f} s; "
              f"total training {t_train:.0f} s", highlight=False, soft_wrap=True)
    con.print("              valid WA  valid UA   test WA   test UA")
    rows = [("chance", result.chance["valid"]["wa"], result.chance["valid"]["ua"], result.chance["test"]["wa"],
             result.chance["test"]["ua"]),
            ("float", result.float_valid.wa, result.float_valid.ua, result.float_test.wa, result.float_test.ua)]
    if result.ptq_valid is not None:
        rows.append(("PTQ (no FT)", result.ptq_valid.wa, result.ptq_valid.ua, None, None))
    if result.qat_valid is not None:
        rows.append(("QAT", result.qat_valid.wa, result.qat_valid.ua, result.qat_test.wa, result.qat_test.ua))
    for name, *vals in rows:
        con.print(f"{name:12s}" + "".join(f"  {pct(v):>8s}" for v in vals), highlight=False)
    con.print("per-epoch validation UA: " + ", ".join(f"{h.phase[0]}{h.epoch}:{100 * h.valid['ua']:.0f}"
                                                       for h in result.history), highlight=False, soft_wrap=True)
    con.print("train loss: " + ", ".join(f"{h.train_loss:.3f}" for h in result.history if h.train_loss is not None),
              highlight=False, soft_wrap=True)
    if result.warnings:
        con.print("warnings: " + "; ".join(result.warnings), highlight=False, soft_wrap=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
