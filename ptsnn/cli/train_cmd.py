"""``ptsnn train`` / ``ptsnn-train``: train PTS-SNN on a corpus (float, then optional QAT).

Distributed: ``torchrun --nproc_per_node N -m ptsnn.cli.train_cmd [same options]``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ptsnn.cli._app import console, new_app, run_app
from ptsnn.errors import InputError
from ptsnn.fileio import output_folder


def train(
    out: Annotated[Path, typer.Option("--out", help="output folder (checkpoints, metrics.json)")],
    config: Annotated[str, typer.Argument(help="preset (small, paper) or a .toml/.json config file")] = "small",
    overrides: Annotated[Optional[list[str]], typer.Option(
        "--set", metavar="KEY=VALUE", help="override a config field, e.g. --set train.lr=1e-3 (repeatable)")] = None,
    data: Annotated[str, typer.Option(
        "--data", help="'synthetic' (generate the built-in corpus) or the corpus root / manifest path")] = "synthetic",
    corpus_name: Annotated[Optional[str], typer.Option(
        "--corpus", help="corpus layout: iemocap, emodb, casia, emovo, urdu, manifest, synthetic "
                         "(default: synthetic for --data synthetic, else manifest)")] = None,
    qat: Annotated[bool, typer.Option("--qat", help="quantization-aware fine-tuning after float training")] = False,
    fold: Annotated[Optional[int], typer.Option("--fold", help="cross-validation fold to train (test fold)")] = None,
    all_folds: Annotated[bool, typer.Option("--all-folds", help="train every fold and average")] = False,
    epochs: Annotated[Optional[int], typer.Option("--epochs", help="shortcut for --set train.epochs=N")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="shortcut for --set train.seed=N")] = None,
    valid_split: Annotated[Optional[str], typer.Option(
        "--valid-split", metavar="auto|speaker|fraction:F|none",
        help="how validation is formed: auto (the corpus protocol), speaker (one held-out training speaker), "
             "fraction:0.1 (a share of the training utterances, stratified by label: for small corpora) or none "
             "(early stopping on the training loss); shortcut for --set train.valid_split=...")] = None,
    cache_dir: Annotated[Optional[Path], typer.Option(
        "--cache-dir", help="feature cache (default: $PTSNN_CACHE_DIR or ~/.cache/ptsnn/features)")] = None,
    synthetic_dir: Annotated[Optional[Path], typer.Option(
        "--synthetic-dir", help="where --data synthetic generates/reuses the corpus (default: OUT/synthetic-corpus)")] = None,
    device: Annotated[Optional[str], typer.Option("--device", help="cpu or cuda (default: cuda if available)")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bars")] = False,
) -> None:
    """Train PTS-SNN: float training with early stopping on validation UA (on the training loss with
    --valid-split none), then (--qat) quantization-aware fine-tuning. Writes OUT/float.pt, OUT/qat.pt and OUT/metrics.json (per fold: OUT/fold<N>/)."""
    from ptsnn.data.corpora import load_corpus
    from ptsnn.train import distributed as D
    from ptsnn.train.config import load_config
    from ptsnn.train.dataset import default_synthetic_root
    from ptsnn.train.trainer import train as train_split, train_folds

    items = list(overrides or [])
    if epochs is not None:
        items.append(f"train.epochs={epochs}")
    if seed is not None:
        items.append(f"train.seed={seed}")
    if valid_split is not None:
        items.append(f"train.valid_split={valid_split}")
    cfg = load_config(config, items)
    if fold is not None and all_folds:
        raise InputError("--fold and --all-folds exclude each other")
    if cfg.train.epochs < 1:
        raise InputError(f"train.epochs must be >= 1, not {cfg.train.epochs}")
    name = corpus_name or ("synthetic" if data == "synthetic" else "manifest")
    root = Path(data)
    if data == "synthetic":
        root = synthetic_dir or default_synthetic_root(out)
        name = "synthetic"
    ctx = D.init_distributed(device)
    with output_folder(out):  # a failed run leaves no empty OUT behind
        try:
            if ctx.is_main:  # generates the synthetic corpus when missing
                corpus = load_corpus(name, root)
            D.barrier(ctx)
            if not ctx.is_main:
                corpus = load_corpus(name, root)
            if all_folds:
                train_folds(cfg, corpus, out, qat=qat, cache_dir=cache_dir, progress=not quiet, console=console, ctx=ctx)
            else:
                target = out / f"fold{fold}" if fold is not None else out
                train_split(cfg, corpus, target, fold=fold, qat=qat, cache_dir=cache_dir, progress=not quiet,
                            console=console, ctx=ctx)
        finally:
            D.cleanup(ctx)


app = new_app("ptsnn-train", "Train PTS-SNN (float, then optional quantization-aware fine-tuning).")
app.command(no_args_is_help=False)(train)


def main() -> None:
    run_app(app, "ptsnn-train")


if __name__ == "__main__":
    main()
