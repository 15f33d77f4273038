"""Training: float PTS-SNN with early stopping on validation UA, then optional quantization-aware fine-tuning.

Flow of :func:`train` (one split: the corpus's fixed split or one cross-validation fold):

1. seeds (python, numpy, torch); features of every utterance through the front-end cache; datasets.
2. ``PTSSNN(cfg.model)``, ``data_init`` on a fixed seeded batch of (cropped) training features, DDP wrap
   when launched by torchrun (:mod:`ptsnn.train.distributed`).
3. Float epochs: AdamW, cosine (or step) learning-rate schedule per step, gradient clipping; after each
   epoch the validation WA/UA/macro-F1, confusion matrix and per-population firing rates (a warning when a
   population is nearly silent, < 0.1 %, or saturated, > 90 %). The best validation UA is checkpointed
   (``float.pt``); training stops after ``train.patience`` epochs without improvement.
4. With ``qat=True``: the best float weights, ``model.quantize()`` (frozen power-of-two scales), and
   ``train.qat_epochs`` epochs at ``train.qat_lr``; epoch 0 is the post-training-quantized model, the best
   validation UA among them is kept (``qat.pt``).
5. Test metrics of the best float and QAT models, chance levels, ``metrics.json``.
6. Score calibration of each kept model: a temperature fitted on the validation logits
   (:mod:`ptsnn.train.calibration`), stored in its checkpoint (``calibration``) with the validation NLL and
   expected calibration error before and after, which also go to ``metrics.json`` (``calibration``).

Only rank 0 prints or writes. :func:`train_folds` loops over folds and averages.
"""

from __future__ import annotations

import copy
import math
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from rich.console import Console
from torch.utils.data import DataLoader

from ptsnn.data.corpus import Corpus
from ptsnn.errors import InputError
from ptsnn.train import distributed as D
from ptsnn.train.checkpoint import save_checkpoint, write_json
from ptsnn.train.config import Config, parse_valid_split
from ptsnn.train.dataset import Collate, FeatureDataset, LengthSortedSampler, init_batch, prepare_features
from ptsnn.train.metrics import ClassificationMetrics, chance_levels, compute_metrics, confusion_table

RATE_LOW = 1e-3  # < 0.1 %: a population this quiet passes almost no signal (and no surrogate gradient)
RATE_HIGH = 0.9  # > 90 %: saturated, carries little information and costs energy
DATA_INIT_BATCH = 32
DEFAULT_GRAD_CLIP = 1.0
DEFAULT_SCHEDULE = "cosine"
FLOAT_CKPT = "float.pt"
QAT_CKPT = "qat.pt"


# ------------------------------------------------------------------------------------------------- results
@dataclass
class EpochRecord:
    phase: str  # "float" or "qat"
    epoch: int  # 1-based; QAT epoch 0 = post-training quantization, before any fine-tuning
    train_loss: float | None
    lr: float | None
    valid: dict | None  # ClassificationMetrics.to_dict(); None without a validation split
    rates: dict[str, float]
    seconds: float
    best: bool = False

    def to_dict(self) -> dict:
        return dict(phase=self.phase, epoch=self.epoch, train_loss=self.train_loss, lr=self.lr, valid=self.valid,
                    rates=self.rates, seconds=self.seconds, best=self.best)


@dataclass
class TrainResult:
    out_dir: Path
    fold: int | None
    classes: list[str]
    config: dict
    history: list[EpochRecord] = field(default_factory=list)
    best_epoch: int = 0
    chance: dict[str, dict[str, float]] = field(default_factory=dict)  # {"valid": {wa, ua}, "test": {...}}
    float_valid: ClassificationMetrics | None = None
    float_test: ClassificationMetrics | None = None
    qat_valid: ClassificationMetrics | None = None
    qat_test: ClassificationMetrics | None = None
    ptq_valid: ClassificationMetrics | None = None  # quantized, before fine-tuning
    best_qat_epoch: int | None = None
    checkpoints: dict[str, Path] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    calibration: dict[str, dict | None] = field(default_factory=dict)  # {"float"|"qat": calibrate() record or None}

    def summary(self) -> dict:
        def m(x: ClassificationMetrics | None) -> dict | None:
            return x.to_dict() if x is not None else None

        return {
            "fold": self.fold, "classes": self.classes, "best_epoch": self.best_epoch,
            "best_qat_epoch": self.best_qat_epoch, "chance": self.chance,
            "float": {"valid": m(self.float_valid), "test": m(self.float_test)},
            "qat": {"valid": m(self.qat_valid), "test": m(self.qat_test), "ptq_valid": m(self.ptq_valid)},
            "checkpoints": {k: str(v) for k, v in self.checkpoints.items()},
            "warnings": self.warnings, "seconds": self.seconds, "calibration": self.calibration,
        }

    def to_dict(self) -> dict:
        return {**self.summary(), "config": self.config, "history": [h.to_dict() for h in self.history]}


@dataclass
class CrossValidationResult:
    out_dir: Path
    folds: list[TrainResult]
    mean: dict[str, dict[str, float]]  # {"float_test": {wa, ua, macro_f1}, ...}; NaN-free means over folds
    std: dict[str, dict[str, float]]

    def to_dict(self) -> dict:
        return {"folds": [r.summary() for r in self.folds], "mean": self.mean, "std": self.std}


# ------------------------------------------------------------------------------------------------- helpers
def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed & 0xFFFFFFFF)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def make_schedule(kind: str, total_steps: int, steps_per_epoch: int, epochs: int):
    """Multiplier of the base learning rate at optimiser step ``s``."""
    total = max(1, total_steps)
    if kind == "cosine":
        return lambda s: 0.5 * (1.0 + math.cos(math.pi * min(s, total) / total))
    if kind == "step":  # halve every quarter of the run
        every = max(1, epochs // 4) * max(1, steps_per_epoch)
        return lambda s: 0.5 ** (s // every)
    if kind == "constant":
        return lambda s: 1.0
    raise InputError(f"train.schedule: {kind!r} (expected cosine, step or constant)")


def rate_problems(rates: Mapping[str, float], low: float = RATE_LOW, high: float = RATE_HIGH) -> list[str]:
    out = []
    for name, r in rates.items():
        if r < low:
            out.append(f"{name} nearly silent ({100 * r:.3f} %)")
        elif r > high:
            out.append(f"{name} saturated ({100 * r:.1f} %)")
    return out


def _fmt(x: float | None) -> str:
    return "  -  " if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:5.1f}"


def rates_table(rates: Mapping[str, float], title: str = "firing rates (per neuron and step)"):
    from rich.table import Table

    table = Table(title=title, title_justify="left", min_width=len(title) + 2)
    table.add_column("population", no_wrap=True)
    table.add_column("rate %", justify="right", no_wrap=True)
    table.add_column("", no_wrap=True)
    for name, r in rates.items():
        flag = "[red]silent[/]" if r < RATE_LOW else "[red]saturated[/]" if r > RATE_HIGH else ""
        table.add_row(name, f"{100 * r:.2f}", flag)
    return table


def _progress(console: Console, enabled: bool):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                    TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=True,
                    disable=not enabled)


# ------------------------------------------------------------------------------------------------ evaluate
def _eval_outputs(model: torch.nn.Module, dataset: FeatureDataset, batch_size: int, ctx: D.DistContext):
    """Eval-mode forward passes, full length, over this rank's strided shard in length order: yields
    ``(batch, output)`` and restores the model's mode afterwards. Callers hold ``torch.no_grad``."""
    model = D.unwrap(model)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    mine = D.shard(LengthSortedSampler(dataset.lengths()).order, ctx)
    loader = DataLoader(dataset, batch_size=batch_size, sampler=mine, collate_fn=Collate(train=False))
    try:
        for batch in loader:
            batch = batch.to(device)
            yield batch, model(batch.features, batch.lengths)
    finally:
        model.train(was_training)


@torch.no_grad()
def evaluate(model: torch.nn.Module, dataset: FeatureDataset, classes: Sequence[str], batch_size: int,
             ctx: D.DistContext | None = None) -> tuple[ClassificationMetrics, dict[str, float]]:
    """Full-length evaluation (eval mode): metrics and per-population firing rates (step-weighted means).
    Distributed: each rank evaluates a strided shard; predictions are gathered so each example counts once."""
    ctx = ctx or D.DistContext()
    device = next(D.unwrap(model).parameters()).device
    preds: list[tuple[int, int]] = []
    names: list[str] = []
    sums = None
    for batch, out in _eval_outputs(model, dataset, batch_size, ctx):
        preds += list(zip(batch.index.tolist(), out.logits.argmax(1).tolist()))
        weight = out.steps.sum().double()
        if sums is None:
            names = list(out.rates)
            sums = torch.zeros(len(names) + 1, dtype=torch.float64, device=device)
        sums[:-1] += torch.stack([out.rates[n].double() for n in names]) * weight
        sums[-1] += weight
    gathered = [p for part in D.gather_objects(preds, ctx) for p in part]
    all_names = next((n for n in D.gather_objects(names, ctx) if n), names)
    if sums is None:
        sums = torch.zeros(len(all_names) + 1, dtype=torch.float64, device=device)
    sums = D.all_reduce_sum(sums, ctx)
    rates = {n: float(sums[i] / sums[-1]) if float(sums[-1]) else 0.0 for i, n in enumerate(all_names)}
    y_true = [dataset.labels[i] for i, _ in gathered]
    y_pred = [p for _, p in gathered]
    return compute_metrics(y_true, y_pred, classes), rates


def _validate(model, datasets: dict[str, FeatureDataset], classes, batch_size: int, ctx):
    """Validation metrics and firing rates; without a validation split (``--valid-split none``) no metrics,
    and the rates (for the warnings) measured on the training data."""
    if len(datasets["valid"]):
        return evaluate(model, datasets["valid"], classes, batch_size, ctx)
    _, rates = evaluate(model, datasets["train"], classes, batch_size, ctx)
    return None, rates


@torch.no_grad()
def collect_logits(model: torch.nn.Module, dataset: FeatureDataset, batch_size: int,
                   ctx: D.DistContext | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Full-length eval-mode logits ``[N, classes]`` and labels ``[N]`` of ``dataset`` in dataset order
    (distributed: each rank a shard, gathered)."""
    ctx = ctx or D.DistContext()
    rows: list[tuple[int, list[float]]] = []
    for batch, out in _eval_outputs(model, dataset, batch_size, ctx):
        rows += list(zip(batch.index.tolist(), out.logits.double().cpu().tolist()))
    gathered = sorted(r for part in D.gather_objects(rows, ctx) for r in part)
    logits = np.asarray([r for _, r in gathered], np.float64).reshape(len(gathered), -1)
    return logits, np.asarray([dataset.labels[i] for i, _ in gathered], np.int64)


def calibrate_scores(model: torch.nn.Module, dataset: FeatureDataset, batch_size: int, ctx: D.DistContext,
                     console: Console, phase: str) -> dict | None:
    """Fit the score temperature on ``dataset`` (the validation split) and print what it changed; None (no
    temperature stored, runs use T = 1 and say so) without a validation split."""
    from ptsnn.train.calibration import calibrate

    if not len(dataset):
        console.print(f"{phase}: no validation split, so no score temperature (scores stay uncalibrated)",
                      highlight=False, soft_wrap=True)
        return None
    cal = calibrate(*collect_logits(model, dataset, batch_size, ctx), split="valid")
    console.print(f"{phase} score temperature {cal['temperature']:.3g} (validation): NLL {cal['nll_before']:.3f} -> "
                  f"{cal['nll_after']:.3f}, ECE {100 * cal['ece_before']:.1f} % -> {100 * cal['ece_after']:.1f} % "
                  f"({cal['bins']} bins)", highlight=False, soft_wrap=True)
    return cal


# --------------------------------------------------------------------------------------------------- train
class _Run:
    """State of one training run (one split)."""

    def __init__(self, cfg: Config, ctx: D.DistContext, console: Console, progress: bool):
        self.cfg, self.ctx, self.console, self.progress = cfg, ctx, console, progress

    def loader(self, dataset: FeatureDataset, collate: Collate, epoch_seed: int) -> DataLoader:
        tc = self.cfg.train
        sampler = D.train_sampler(dataset, self.ctx, tc.seed)
        gen = torch.Generator().manual_seed(epoch_seed)
        return DataLoader(dataset, batch_size=tc.batch_size, shuffle=sampler is None, sampler=sampler,
                          collate_fn=collate, num_workers=tc.num_workers, generator=gen, drop_last=False)

    def train_epoch(self, net: torch.nn.Module, dataset: FeatureDataset, collate: Collate, epoch: int,
                    opt: torch.optim.Optimizer, sched, label: str) -> float:
        tc = self.cfg.train
        collate.set_epoch(epoch)
        loader = self.loader(dataset, collate, tc.seed * 1000 + epoch)
        if isinstance(loader.sampler, torch.utils.data.distributed.DistributedSampler):
            loader.sampler.set_epoch(epoch)
        net.train()
        clip = float(getattr(tc, "grad_clip", DEFAULT_GRAD_CLIP) or 0.0)
        device = self.ctx.device
        total = torch.zeros(2, dtype=torch.float64, device=device)
        with _progress(self.console, self.progress) as bar:
            task = bar.add_task(label, total=len(loader), info="")
            for batch in loader:
                batch = batch.to(device)
                out = net(batch.features, batch.lengths)
                loss = F.cross_entropy(out.logits, batch.labels)
                if tc.rate_reg:
                    loss = loss + tc.rate_reg * torch.stack(list(out.rates.values())).mean()
                if not torch.isfinite(loss):
                    raise InputError(f"training diverged (loss {float(loss)}) in {label}; lower the learning rate")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if clip > 0:
                    torch.nn.utils.clip_grad_norm_(net.parameters(), clip)
                opt.step()
                sched.step()
                total[0] += float(loss.detach()) * len(batch.labels)
                total[1] += len(batch.labels)
                bar.update(task, advance=1, info=f"loss {float(total[0] / total[1]):.3f}")
        total = D.all_reduce_sum(total, self.ctx)
        return float(total[0] / total[1]) if float(total[1]) else math.nan

    def report_epoch(self, rec: EpochRecord, epochs: int) -> list[str]:
        v = rec.valid or {"wa": None, "ua": None, "macro_f1": None}
        problems = rate_problems(rec.rates)
        lo = min(rec.rates, key=rec.rates.get) if rec.rates else "-"
        hi = max(rec.rates, key=rec.rates.get) if rec.rates else "-"
        loss = f"loss {rec.train_loss:.3f}" if rec.train_loss is not None else "loss   -  "
        lr = f"lr {rec.lr:.1e}" if rec.lr is not None else "lr    -   "
        rates = (f"rates {100 * rec.rates[lo]:.2f} % ({lo}) .. {100 * rec.rates[hi]:.1f} % ({hi})"
                 if rec.rates else "")
        self.console.print(
            f"{rec.phase:5s} {rec.epoch:3d}/{epochs:<3d} {loss}  {lr}  valid WA {_fmt(v['wa'])} UA {_fmt(v['ua'])} "
            f"F1 {_fmt(v['macro_f1'])}  {rates}  {rec.seconds:5.1f} s" + ("  [bold green]best[/]" if rec.best else ""),
            highlight=False, soft_wrap=True)
        if problems:
            self.console.print(f"[yellow]warning:[/] firing rates: {'; '.join(problems)}", highlight=False,
                               soft_wrap=True)
        return problems


def _resolve_model_config(cfg: Config, classes: Sequence[str], dim: int, console: Console) -> Config:
    cfg = copy.deepcopy(cfg)
    if cfg.model.num_classes != len(classes):
        console.print(f"note: model.num_classes {cfg.model.num_classes} -> {len(classes)} (the corpus's classes: "
                      f"{', '.join(classes)})", highlight=False, soft_wrap=True)
        cfg.model.num_classes = len(classes)
    if cfg.model.input_dim != dim:
        console.print(f"note: model.input_dim {cfg.model.input_dim} -> {dim} (the front end's feature size)",
                      highlight=False, soft_wrap=True)
        cfg.model.input_dim = dim
    cfg.model.validate()
    return cfg


def train(cfg: Config, corpus: Corpus, out_dir: str | Path, *, fold: int | None = None, qat: bool = False,
          frontend=None, features: Mapping[str, np.ndarray] | None = None, cache_dir: str | Path | None = None,
          progress: bool = True, console: Console | None = None, device: str | None = None,
          ctx: D.DistContext | None = None) -> TrainResult:
    """Train one split (``fold=None``: the corpus's fixed split) into ``out_dir``; see the module docstring.

    ``frontend``: a FrontEnd (default: ``build_frontend(cfg.frontend)``); ``features``: precomputed
    ``utt_id -> [frames, dim]`` (skips extraction). ``ctx``: distributed context (default: from the torchrun
    environment; single process otherwise)."""
    from ptsnn.frontend import build_frontend

    t_start = time.perf_counter()
    own_ctx = ctx is None
    ctx = ctx or D.init_distributed(device)
    console = console or Console(emoji=False)
    if not ctx.is_main:
        console = Console(quiet=True)
    progress = progress and ctx.is_main
    try:
        out = Path(out_dir)
        if ctx.is_main:
            out.mkdir(parents=True, exist_ok=True)
        fe = frontend if frontend is not None else build_frontend(dict(cfg.frontend))
        valid_by, share = parse_valid_split(cfg.train.valid_split)
        train_utts, valid_utts, test_utts = corpus.split(fold, valid_by=valid_by, valid_fraction=share or 0.1,
                                                         seed=cfg.train.seed)
        if not train_utts:
            raise InputError(f"{corpus.name}: the split{_fold_txt(fold)} has no training utterances")
        if not valid_utts and valid_by != "none":
            raise InputError(f"{corpus.name}: the split{_fold_txt(fold)} has no validation utterances (needed for "
                             "early stopping); for a small corpus choose --valid-split fraction:0.1 (a share of the "
                             "training utterances) or --valid-split none (early stopping on the training loss)")
        if features is None:
            needed = [*train_utts, *valid_utts, *test_utts]
            if ctx.is_main:  # rank 0 fills the cache, the others then read it
                features = prepare_features(corpus, fe, needed, cache_dir, progress)
            D.barrier(ctx)
            if not ctx.is_main:
                features = prepare_features(corpus, fe, needed, cache_dir, False)
        dim = int(next(iter(features.values())).shape[1])
        cfg = _resolve_model_config(cfg, corpus.classes, dim, console)
        if isinstance(getattr(fe, "spec", None), dict):
            cfg.frontend = dict(fe.spec)  # what really made the features (the checkpoint's config says so too)
        datasets = {name: FeatureDataset.from_split(corpus, utts, features)
                    for name, utts in (("train", train_utts), ("valid", valid_utts), ("test", test_utts))}
        result = TrainResult(out, fold, list(corpus.classes), cfg.to_dict())
        for split in ("valid", "test"):
            result.chance[split] = chance_levels(datasets["train"].labels, datasets[split].labels, len(corpus.classes))
        console.print(f"[bold]{corpus.name}[/]{_fold_txt(fold)}: {len(train_utts)} train / {len(valid_utts)} valid / "
                      f"{len(test_utts)} test utterances, {len(corpus.classes)} classes; config {cfg.name}; "
                      f"world size {ctx.world_size}", highlight=False, soft_wrap=True)
        _fit(cfg, corpus, fe, datasets, result, qat, ctx, console, progress)
        result.seconds = time.perf_counter() - t_start
        if ctx.is_main:
            write_json(out / "metrics.json", result.to_dict())
        D.barrier(ctx)  # every file is written before any rank returns
        return result
    finally:
        if own_ctx:
            D.cleanup(ctx)


def _fold_txt(fold: int | None) -> str:
    return f" fold {fold}" if fold is not None else ""


def _fit(cfg: Config, corpus: Corpus, fe, datasets: dict[str, FeatureDataset], result: TrainResult, qat: bool,
         ctx: D.DistContext, console: Console, progress: bool) -> None:
    from ptsnn.train.model import PTSSNN

    tc = cfg.train
    seed_everything(tc.seed)
    run = _Run(cfg, ctx, console, progress)
    classes = list(corpus.classes)
    label_map = corpus.label_map
    spec = fe.spec if hasattr(fe, "spec") else dict(cfg.frontend)
    model = PTSSNN(cfg.model).to(ctx.device)
    init = init_batch(datasets["train"], DATA_INIT_BATCH, tc.max_frames, tc.seed).to(ctx.device)
    reached = model.data_init(init.features, init.lengths)
    D.broadcast_module(model, ctx)  # identical start on every rank, whatever each computed
    console.print("data_init rates: " + ", ".join(f"{k} {100 * v:.1f} %" for k, v in reached.items()), highlight=False, soft_wrap=True)
    net = D.wrap_model(model, ctx)
    float_path, qat_path = result.out_dir / FLOAT_CKPT, result.out_dir / QAT_CKPT

    # ------------------------------------------------------------------ float training
    collate = Collate(tc.max_frames, train=True, seed=tc.seed)
    steps = math.ceil(len(D.shard(range(len(datasets["train"])), ctx)) / tc.batch_size)
    opt = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    kind = str(getattr(tc, "schedule", DEFAULT_SCHEDULE))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, make_schedule(kind, tc.epochs * steps, steps, tc.epochs))
    # The score early stopping follows: validation UA, or (no validation split) minus the training loss.
    validated = len(datasets["valid"]) > 0
    criterion = "validation UA" if validated else "training loss"
    best_score, best_state, stale = -math.inf, None, 0
    problems_seen: set[str] = set()
    for epoch in range(1, tc.epochs + 1):
        t0 = time.perf_counter()
        lr = opt.param_groups[0]["lr"]
        loss = run.train_epoch(net, datasets["train"], collate, epoch, opt, sched, f"float {epoch}/{tc.epochs}")
        metrics, rates = _validate(model, datasets, classes, tc.batch_size, ctx)
        score = metrics.ua if validated else -loss
        improved = score > best_score + 1e-12
        rec = EpochRecord("float", epoch, loss, lr, metrics.to_dict() if metrics else None, rates,
                          time.perf_counter() - t0, improved)
        result.history.append(rec)
        problems_seen.update(p.split(" (")[0] for p in run.report_epoch(rec, tc.epochs))
        if improved:
            best_score, stale = score, 0
            best_state = copy.deepcopy(model.state_dict())
            result.best_epoch, result.float_valid = epoch, metrics
            if ctx.is_main:
                save_checkpoint(float_path, model, cfg, label_map, spec,
                                {"phase": "float", "epoch": epoch, "valid": rec.valid, "rates": rates})
        else:
            stale += 1
            if stale >= tc.patience:
                best = f"{100 * best_score:.1f} %" if validated else f"loss {-best_score:.3f}"
                console.print(f"early stop: no {criterion} gain in {tc.patience} epochs "
                              f"(best {best} at epoch {result.best_epoch})", highlight=False, soft_wrap=True)
                break
    result.warnings += sorted(f"float: {p}" for p in problems_seen)
    model.load_state_dict(best_state)
    result.checkpoints["float"] = float_path
    result.float_test = _close_phase(run, cfg, model, datasets, classes, label_map, spec, result, phase="float",
                                     title="float", epoch=result.best_epoch, valid=result.float_valid,
                                     rates=result.history[result.best_epoch - 1].rates, path=float_path)

    # ------------------------------------------------------------------ quantization-aware fine-tuning
    if qat:
        _qat(cfg, run, model, net, datasets, result, classes, label_map, spec, qat_path, problems_seen)
    _print_summary(console, result)


def _qat(cfg: Config, run: _Run, model, net, datasets, result: TrainResult, classes, label_map, spec, qat_path: Path,
         float_problems: set[str]) -> None:
    tc, ctx, console = cfg.train, run.ctx, run.console
    model.quantize()
    D.broadcast_module(model, ctx)
    t0 = time.perf_counter()
    validated = len(datasets["valid"]) > 0
    metrics, rates = _validate(model, datasets, classes, tc.batch_size, ctx)
    result.ptq_valid = metrics
    rec = EpochRecord("qat", 0, None, None, metrics.to_dict() if metrics else None, rates, time.perf_counter() - t0,
                      True)
    result.history.append(rec)
    problems: set[str] = set(p.split(" (")[0] for p in run.report_epoch(rec, tc.qat_epochs))
    # Without validation, the fine-tuned model is the last epoch's (a fixed qat_epochs count).
    best_ua = metrics.ua if validated else -math.inf
    best_state, best_epoch = copy.deepcopy(model.state_dict()), 0
    best_rates = rates
    if tc.qat_epochs > 0:
        collate = Collate(tc.max_frames, train=True, seed=tc.seed + 1)
        steps = math.ceil(len(D.shard(range(len(datasets["train"])), ctx)) / tc.batch_size)
        opt = torch.optim.AdamW(model.parameters(), lr=tc.qat_lr, weight_decay=tc.weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, make_schedule("cosine", tc.qat_epochs * steps, steps,
                                                                      tc.qat_epochs))
        for epoch in range(1, tc.qat_epochs + 1):
            t0 = time.perf_counter()
            lr = opt.param_groups[0]["lr"]
            loss = run.train_epoch(net, datasets["train"], collate, epoch, opt, sched, f"qat {epoch}/{tc.qat_epochs}")
            metrics, rates = _validate(model, datasets, classes, tc.batch_size, ctx)
            improved = metrics.ua > best_ua + 1e-12 if validated else True
            rec = EpochRecord("qat", epoch, loss, lr, metrics.to_dict() if metrics else None, rates,
                              time.perf_counter() - t0, improved)
            result.history.append(rec)
            problems.update(p.split(" (")[0] for p in run.report_epoch(rec, tc.qat_epochs))
            if improved:
                best_ua = metrics.ua if validated else best_ua
                best_state, best_epoch, best_rates = copy.deepcopy(model.state_dict()), epoch, rates
    for r in result.history:
        if r.phase == "qat":
            r.best = r.epoch == best_epoch
    model.load_state_dict(best_state)
    result.best_qat_epoch = best_epoch
    result.qat_valid = next((ClassificationMetrics.from_dict(r.valid) for r in result.history
                             if r.phase == "qat" and r.epoch == best_epoch and r.valid), None)
    result.warnings += sorted(f"qat: {p}" for p in problems)
    result.qat_test = _close_phase(run, cfg, model, datasets, classes, label_map, spec, result, phase="qat",
                                   title="QAT", epoch=best_epoch, valid=result.qat_valid, rates=best_rates,
                                   path=qat_path,
                                   extra={"ptq_valid": result.ptq_valid.to_dict() if result.ptq_valid else None})
    result.checkpoints["qat"] = qat_path


def _close_phase(run: _Run, cfg: Config, model, datasets, classes, label_map, spec, result: TrainResult, *,
                 phase: str, title: str, epoch: int, valid, rates, path: Path, extra: dict | None = None):
    """What ends a training phase (float or QAT), on the kept epoch's weights: its firing rates and
    validation confusion, the test split, score calibration and the phase's checkpoint. Returns the test
    metrics (None without a test split)."""
    tc, ctx, console = cfg.train, run.ctx, run.console
    validated = len(datasets["valid"]) > 0
    console.print(rates_table(rates, f"firing rates, {title} epoch {epoch} "
                                     f"({'validation' if validated else 'training data'})"))
    if validated:
        console.print(confusion_table(valid, f"{title}, validation (epoch {epoch})"))
    test = None
    if len(datasets["test"]):
        test, _ = evaluate(model, datasets["test"], classes, tc.batch_size, ctx)
        console.print(confusion_table(test, f"{title}, test"))
    result.calibration[phase] = calibrate_scores(model, datasets["valid"], tc.batch_size, ctx, console, title)
    if ctx.is_main:
        save_checkpoint(path, model, cfg, label_map, spec, {
            "phase": phase, "epoch": epoch, "valid": valid.to_dict() if valid else None,
            "test": test.to_dict() if test else None, "chance": result.chance, **(extra or {})},
            calibration=result.calibration[phase])
    return test


def _print_summary(console: Console, r: TrainResult) -> None:
    from rich.table import Table

    table = Table(title=f"summary{_fold_txt(r.fold)} (%)", title_justify="left")
    for col in ("", "valid WA", "valid UA", "test WA", "test UA"):
        table.add_column(col, justify="right" if col else "left", no_wrap=True)
    table.add_row("chance", _fmt(r.chance["valid"]["wa"]), _fmt(r.chance["valid"]["ua"]),
                  _fmt(r.chance["test"]["wa"]), _fmt(r.chance["test"]["ua"]))
    for name, v, t in (("float", r.float_valid, r.float_test), ("QAT", r.qat_valid, r.qat_test)):
        if v is not None or t is not None:
            table.add_row(name, _fmt(v.wa if v else None), _fmt(v.ua if v else None), _fmt(t.wa if t else None),
                          _fmt(t.ua if t else None))
    console.print(table)
    if r.warnings:
        console.print("[yellow]warnings:[/] " + "; ".join(r.warnings), highlight=False, soft_wrap=True)
    console.print(f"checkpoints: {', '.join(str(p) for p in r.checkpoints.values())}", highlight=False, soft_wrap=True)


# --------------------------------------------------------------------------------------------- all folds
def _mean_std(values: list[float]) -> tuple[float, float]:
    vals = [v for v in values if v is not None and not math.isnan(v)]
    if not vals:
        return math.nan, math.nan
    return float(np.mean(vals)), float(np.std(vals))


def train_folds(cfg: Config, corpus: Corpus, out_dir: str | Path, folds: Sequence[int] | None = None, *,
                qat: bool = False, frontend=None, cache_dir: str | Path | None = None, progress: bool = True,
                console: Console | None = None, device: str | None = None,
                ctx: D.DistContext | None = None) -> CrossValidationResult:
    """Train every fold (default: all of the corpus's folds) into ``out_dir/fold<N>``; mean and std of the
    float and QAT test WA/UA/macro-F1 over folds go to ``out_dir/summary.json``."""
    from ptsnn.frontend import build_frontend

    folds = list(folds) if folds is not None else corpus.folds()
    if not folds:
        raise InputError(f"{corpus.name}: no cross-validation folds (use its fixed split: leave out --all-folds)")
    own_ctx = ctx is None
    ctx = ctx or D.init_distributed(device)
    console = console or Console(emoji=False)
    if not ctx.is_main:
        console = Console(quiet=True)
    try:
        fe = frontend if frontend is not None else build_frontend(dict(cfg.frontend))
        if ctx.is_main:
            features = prepare_features(corpus, fe, None, cache_dir, progress)
        D.barrier(ctx)
        if not ctx.is_main:
            features = prepare_features(corpus, fe, None, cache_dir, False)
        results = []
        for f in folds:
            console.rule(f"fold {f}")
            results.append(train(cfg, corpus, Path(out_dir) / f"fold{f}", fold=f, qat=qat, frontend=fe,
                                 features=features, progress=progress, console=console, ctx=ctx))
        mean: dict[str, dict[str, float]] = {}
        std: dict[str, dict[str, float]] = {}
        for key in ("float_valid", "float_test", "qat_valid", "qat_test"):
            ms = [getattr(r, key) for r in results]
            if all(m is None for m in ms):
                continue
            mean[key], std[key] = {}, {}
            for metric in ("wa", "ua", "macro_f1"):
                mean[key][metric], std[key][metric] = _mean_std([getattr(m, metric) if m else None for m in ms])
        for split in ("valid", "test"):
            mean[f"chance_{split}"] = {k: _mean_std([r.chance[split][k] for r in results])[0] for k in ("wa", "ua")}
        cv = CrossValidationResult(Path(out_dir), results, mean, std)
        if ctx.is_main:
            write_json(Path(out_dir) / "summary.json", cv.to_dict())
            _print_cv(console, cv)
        return cv
    finally:
        if own_ctx:
            D.cleanup(ctx)


def _print_cv(console: Console, cv: CrossValidationResult) -> None:
    from rich.table import Table

    table = Table(title=f"{len(cv.folds)} folds: mean ± std (%)", title_justify="left")
    for col in ("", "WA", "UA", "macro-F1"):
        table.add_column(col, justify="right" if col else "left", no_wrap=True)
    for key, m in cv.mean.items():
        s = cv.std.get(key, {})
        cells = [f"{_fmt(m.get(k))}" + (f" ± {100 * s[k]:.1f}" if k in s and not math.isnan(s[k]) else "")
                 for k in ("wa", "ua", "macro_f1")]
        table.add_row(key.replace("_", " "), *cells)
    console.print(table)
