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
    model: Annotated[str, typer.Option("--model", help="ptssnn (speech) or ttfs (eye data: --data synthetic-eye "
                                                       "or see:PATH)")] = "ptssnn",
    arch: Annotated[Optional[str], typer.Option(
        "--arch", metavar="RUN/front.json#N|arch.json",
        help="TTFS architecture from a search (trial N of RUN/front.json) or an architecture JSON file; "
             "--set ttfs.* still overrides its fields")] = None,
) -> None:
    """Train PTS-SNN (or, with --model ttfs, a TTFS network on eye data): float training with early stopping
    on validation UA (on the training loss with --valid-split none), then (--qat) quantization-aware
    fine-tuning. Writes OUT/float.pt, OUT/qat.pt and OUT/metrics.json (per fold: OUT/fold<N>/); TTFS:
    OUT/ttfs.pt and OUT/metrics.json."""
    if model == "ttfs":
        return _train_ttfs(out, data, overrides or [], epochs, seed, quiet, arch)
    if arch is not None:
        raise InputError("--arch takes a TTFS architecture: use it with --model ttfs")
    if model != "ptssnn":
        raise InputError(f"--model {model!r}: choose ptssnn or ttfs")
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
def _parse_ttfs_overrides(items: list[str]) -> dict:
    """``--set ttfs.FIELD=VALUE`` / ``data.FIELD=VALUE`` / ``train.FIELD=VALUE`` (JSON values; bare words are
    strings) into three tables."""
    import json

    tables: dict = {"ttfs": {}, "data": {}, "train": {}}
    for item in items:
        key, sep, raw = item.partition("=")
        table, dot, field = key.partition(".")
        if not sep or not dot or table not in tables or not field:
            raise InputError(f"--set {item!r}: expected ttfs.FIELD=VALUE, data.FIELD=VALUE or train.FIELD=VALUE")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        tables[table][field] = value
    return tables


def _train_ttfs(out: Path, data: str, overrides: list[str], epochs, seed, quiet: bool, arch: str | None = None) -> None:
    """TTFS on eye data: train the ReLU twin, calibrate windows, quantize, write OUT/ttfs.pt + metrics.json."""
    from ptsnn.data.eye import load_eye_dataset
    from ptsnn.train.checkpoint import write_json
    from ptsnn.train.ttfs_config import ConvSpec
    from ptsnn.train.ttfs_train import config_for, train_ttfs

    tables = _parse_ttfs_overrides(overrides)
    spec = "synthetic-eye" if data == "synthetic" else data
    d = {"frames": 16, "size": 16, **tables["data"]}
    if spec == "synthetic-eye":
        d.setdefault("seed", 0 if seed is None else int(seed))
    with console.status(f"loading {spec}..."):
        try:
            ds = load_eye_dataset(spec, **d)
        except TypeError as exc:
            raise InputError(f"--set data.*: {exc}") from None
    fields = dict(conv=[ConvSpec(8, pool="max"), ConvSpec(16, pool="max")], dense=[32], steps_per_window=16)
    if arch is not None:
        from ptsnn.train.ttfs_arch import read_architecture

        fields.update(read_architecture(arch))
    fields.update(tables["ttfs"])
    try:
        cfg = config_for(ds, **fields)
    except TypeError as exc:
        raise InputError(f"--set ttfs.*: {exc}") from None
    train_opts = dict(epochs=epochs or 40, lr=3e-3, seed=0 if seed is None else seed, **tables["train"])
    log = (lambda m: None) if quiet else (lambda m: console.print(m))
    result = train_ttfs(ds, cfg, out, progress=log, data_options=dict(spec=spec, **d), **train_opts)
    write_json(out / "metrics.json", result.metrics)
    for name in ("relu_twin", "grid"):
        m = result.metrics[name]
        lights = ", ".join(f"{k} {100 * v['war']:.1f}" for k, v in m["per_lighting"].items())
        console.print(f"{name:>9}: WAR {100 * m['war']:.1f} %, UAR {100 * m['uar']:.1f} % ({lights})")
    console.print(f"checkpoint: {result.checkpoint} (K = {cfg.steps_per_window}); metrics: {out / 'metrics.json'}")


app.command(no_args_is_help=False)(train)


def main() -> None:
    run_app(app, "ptsnn-train")


if __name__ == "__main__":
    main()
