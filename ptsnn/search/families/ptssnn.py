"""The PTS-SNN family of the search: a sampled point -> a ``ptsnn.train`` Config, checked on the profile's
design rules before training, trained briefly on the embedded synthetic speech corpus, scored and costed.

* ``build``: a preset (``fixed.preset``, default ``small``) with the fixed model/train/front-end settings,
  then the sampled model fields; ``input_dim`` and ``num_classes`` follow the front end and the corpus.
* ``check``: the design rules on the chip IR of the *untrained* network with every weight set to one (all
  synapses present: the dense worst case, since a trained net rarely has exact zeros). Only the structural
  rules are kept (:data:`STRUCTURAL_RULES`); the value rules (weight/threshold/bias formats, 24-bit state)
  depend on trained weights and are enforced after training, in ``evaluate``.
* ``evaluate``: ``ptsnn.train.trainer.train`` (float, then QAT if ``budget.qat``) on the training speakers
  (``budget.train_subset`` of their utterances), WAR/UAR of the model the chip runs (the QAT model, or the
  float one after post-training quantization, as ptsnn-convert does) on the **validation speaker**, the chip
  IR, the design rules (with the state-overflow replay on the costed payloads), and ``chip_costs`` on
  ``budget.eval_samples`` validation utterances. The test speaker is not used for selection; its WAR/UAR go to
  the trial's details only.

The corpus is written once under the feature cache (``fixed.cache_dir``, default ``$PTSNN_CACHE_DIR`` or
``~/.cache/ptsnn/features``) and its features go through the front-end cache, so worker processes and reruns
share both; within a process they are kept in memory (:func:`corpus_features`). Design note: docs/search.md.
"""

from __future__ import annotations


import copy
import dataclasses
import hashlib
import io
import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import ConfigDict, Field, TypeAdapter, ValidationError

from ptsnn import safeio
from ptsnn.errors import InputError
from ptsnn.search.family import CandidateInfeasible, Evaluation, Infeasible, register
from ptsnn.train.config import Config, ModelConfig, parse_valid_split, preset

# Model fields a space may search. input_dim and num_classes are not: the front end and the corpus fix them.
SEARCHABLE = ("hidden", "blocks", "shift_div", "key_dim", "value_dim", "prompts", "calibrated_blocks",
              "steps_per_frame", "input_bits", "xi", "threshold", "tau_init", "context_tau_init", "surrogate",
              "surrogate_alpha", "dropout")
# Rules whose outcome depends only on the architecture (shapes, delays, payload bits), not on trained values.
STRUCTURAL_RULES = frozenset({"graded_input", "max_delay", "fan_in", "fan_in_core", "fan_out", "capacity",
                              "neurons_per_chip", "synapses_per_chip"})
FIXED_KEYS = ("preset", "model", "train", "frontend", "corpus", "cache_dir")
AUDIO_FRONTENDS = ("fbank", "hf", "torchaudio", "emotion2vec")  # = ptsnn.frontend.sources.AUDIO_FRONTENDS
CORPORA_DIR = "synthetic-corpora"
MAX_CORPUS_UTTERANCES = 20_000  # ~50x the default corpus (384)
MAX_UTTERANCE_SECONDS = 30.0


@dataclass
class Budget:
    """The [budget] table for this family."""

    __pydantic_config__ = ConfigDict(extra="forbid")

    epochs: Annotated[int, Field(strict=True, ge=1, le=10_000)] = 2  # float epochs
    qat: Annotated[bool, Field(strict=True)] = False  # quantization-aware fine-tuning after the float epochs
    qat_epochs: Annotated[int, Field(strict=True, ge=0, le=10_000)] = 1
    # share of each class's training utterances
    train_subset: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] = 1.0
    # validation utterances the costs are measured on
    eval_samples: Annotated[int, Field(strict=True, ge=1, le=1024)] = 4
    lr: Annotated[float | None, Field(gt=0, le=10, allow_inf_nan=False)] = None  # default: the preset's
    batch: Annotated[int | None, Field(strict=True, ge=1, le=65_536)] = None


_BUDGET = TypeAdapter(Budget)


def parse_budget(budget: dict[str, Any] | None) -> Budget:
    try:
        return _BUDGET.validate_python(dict(budget or {}))
    except ValidationError as exc:
        raise InputError(f"ptssnn budget: {safeio.describe_validation(exc)}") from None


# ----------------------------------------------------------------------------------------------- corpus
def _corpus_config(options: dict[str, Any]):
    from ptsnn.data.synthetic import SyntheticCorpusConfig

    allowed = {f.name for f in fields(SyntheticCorpusConfig)} - {"profiles"}
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise InputError(f"ptssnn fixed.corpus: unknown option {unknown[0]!r} (known: {', '.join(sorted(allowed))})")
    opts = dict(options)
    for key in ("classes", "snr_db", "valid_speakers", "test_speakers"):
        if isinstance(opts.get(key), list):
            opts[key] = tuple(opts[key])
    try:
        config = SyntheticCorpusConfig(**opts)
        utterances = config.num_speakers * len(config.classes) * config.utterances_per_class
        seconds = float(config.max_duration)
    except (TypeError, ValueError) as exc:
        raise InputError(f"ptssnn fixed.corpus: {exc}") from None
    except InputError as exc:
        raise InputError(f"ptssnn fixed.corpus: {exc}") from None
    # Bounded like every reader: a space file must not ask for hours of synthesis or gigabytes of audio.
    if utterances > MAX_CORPUS_UTTERANCES or not seconds <= MAX_UTTERANCE_SECONDS:
        raise InputError(f"ptssnn fixed.corpus: {utterances:,} utterances of up to {seconds:g} s; the limits are "
                         f"{MAX_CORPUS_UTTERANCES:,} utterances and {MAX_UTTERANCE_SECONDS:g} s each")
    return config


def _corpus_root(cache_dir: Path, options: dict[str, Any]) -> Path:
    digest = hashlib.sha256(json.dumps(options, sort_keys=True, default=str).encode()).hexdigest()
    return cache_dir / CORPORA_DIR / digest[:16]


def _write_once(root: Path, config) -> None:
    """Write the corpus into a fresh folder and rename it into place; the first process to finish wins (a
    rename onto a folder that another process completed fails, and ours is thrown away)."""
    from ptsnn.data.synthetic import MANIFEST_NAME, write_corpus

    if (root / MANIFEST_NAME).is_file():
        return
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root.parent, prefix=f".{root.name}.", suffix=".tmp"))
    try:
        write_corpus(config, tmp)
        os.rename(tmp, root)
    except OSError:
        if not (root / MANIFEST_NAME).is_file():
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


_FEATURES: dict[str, tuple[Any, dict[str, np.ndarray]]] = {}  # per process: (corpus, utt_id -> features)


def corpus_features(options: dict[str, Any], frontend, cache_dir: Path):
    """``(Corpus, utt_id -> [frames, F])`` of the synthetic corpus ``options`` through ``frontend``, computed
    once per process (then memoised) and through the on-disk feature cache."""
    from ptsnn.data.corpora import load_synthetic
    from ptsnn.train.dataset import prepare_features

    key = json.dumps([options, frontend.spec_hash(), str(cache_dir)], sort_keys=True, default=str)
    if key not in _FEATURES:
        root = _corpus_root(cache_dir, options)
        _write_once(root, _corpus_config(options))
        corpus = load_synthetic(root)
        _FEATURES[key] = corpus, prepare_features(corpus, frontend, cache_dir=cache_dir, progress=False)
    return _FEATURES[key]


def training_subset(corpus, share: float):
    """The corpus with ``ceil(share * n)`` of each class's training utterances (at least one per class; the
    same for every candidate: ordered by a seed-free hash of the utterance id); valid and test stay whole."""
    from ptsnn.data.corpus import Corpus, stable_rank

    if share >= 1.0:
        return corpus
    train = [u for u in corpus.utterances if u.split == "train"]
    keep: set[str] = set()
    for label in corpus.classes:
        members = sorted((u for u in train if u.label == label), key=lambda u: stable_rank(u.utt_id))
        keep.update(u.utt_id for u in members[: max(1, math.ceil(share * len(members)))])
    kept = tuple(u for u in corpus.utterances if u.split != "train" or u.utt_id in keep)
    return Corpus(corpus.name, corpus.root, kept, corpus.classes, corpus.protocol)


_FRONTENDS: dict[str, Any] = {}


def _frontend(spec: dict):
    from ptsnn.frontend import build_frontend

    key = json.dumps(spec, sort_keys=True)
    if key not in _FRONTENDS:
        _FRONTENDS[key] = build_frontend(dict(spec))
    return _FRONTENDS[key]


# ----------------------------------------------------------------------------------------------- family
@register("ptssnn")
class PTSSNNFamily:
    name = "ptssnn"

    def parameter_names(self) -> set[str]:
        return set(SEARCHABLE)

    # ------------------------------------------------------------------------------------------ build
    def build(self, params: dict[str, Any], fixed: dict[str, Any]) -> Config:
        fixed = dict(fixed or {})
        unknown = sorted(set(fixed) - set(FIXED_KEYS))
        if unknown:
            raise InputError(f"ptssnn [fixed]: unknown key {unknown[0]!r} (known: {', '.join(FIXED_KEYS)})")
        unknown = sorted(set(params) - set(SEARCHABLE))
        if unknown:
            raise InputError(f"ptssnn [space]: unknown parameter {unknown[0]!r} (known: {', '.join(SEARCHABLE)})")
        name = fixed.get("preset", "small")
        if not isinstance(name, str):
            raise InputError("ptssnn fixed.preset: must be a preset name (small, paper)")
        data = preset(name).to_dict()
        for section in ("model", "train", "frontend"):
            part = fixed.get(section, {})
            if not isinstance(part, dict):
                raise InputError(f"ptssnn fixed.{section}: must be a table")
            if section == "frontend" and part:
                data["frontend"] = dict(part)  # a front end replaces the preset's whole (kind-specific) table
            else:
                data[section].update(part)
        if data["frontend"].get("kind") not in AUDIO_FRONTENDS:
            raise InputError(f"ptssnn fixed.frontend: kind {data['frontend'].get('kind')!r} does not read audio; "
                             f"the synthetic speech corpus needs one of {', '.join(AUDIO_FRONTENDS)} "
                             "(e.g. kind = \"fbank\")")
        corpus = _corpus_config(self._corpus_options(fixed))
        data["model"].update(params)
        data["model"]["num_classes"] = len(corpus.classes)
        data["model"]["input_dim"] = int(_frontend(data["frontend"]).dim)
        data["name"] = f"search-{name}"
        split = data["train"].get("valid_split")
        if isinstance(split, str) and parse_valid_split(split)[0] == "none":
            raise InputError("ptssnn fixed.train.valid_split: 'none' leaves no validation split, and the search "
                             "scores candidates on it (choose auto, speaker or fraction:<share>)")
        config = Config.from_dict(data, "ptssnn search point " + json.dumps(params, sort_keys=True))
        # Where evaluate finds its data. An attribute, not a field: the checkpoint keeps a plain ptsnn Config.
        config.search_data = {"corpus": self._corpus_options(fixed), "cache_dir": fixed.get("cache_dir")}
        return config

    @staticmethod
    def _corpus_options(fixed: dict[str, Any]) -> dict[str, Any]:
        options = fixed.get("corpus", {})
        if not isinstance(options, dict):
            raise InputError("ptssnn fixed.corpus: must be a table of synthetic-corpus options")
        return options

    # ------------------------------------------------------------------------------------------ check
    def check(self, config: Config, profile) -> list[Infeasible]:
        from ptsnn.convert import design_rules

        found = design_rules.check(dense_chip_graph(config), profile)
        return [Infeasible(v.rule, v.layer, v.message()) for v in found if v.rule in STRUCTURAL_RULES]

    # --------------------------------------------------------------------------------------- evaluate
    def parse_budget(self, budget: dict[str, Any]) -> dict[str, Any]:
        """This family's [budget] table (QAT on/off and epochs; lr/batch default to the preset's)."""
        return dataclasses.asdict(parse_budget(budget))

    def evaluate(self, config: Config, profile, budget: dict[str, Any], out_dir: Path, seed: int,
                 log: Callable[[str], None] = lambda _msg: None) -> Evaluation:
        from rich.console import Console

        from ptsnn.train.trainer import train

        b = parse_budget(budget)
        data = getattr(config, "search_data", None)
        if data is None:
            raise InputError("ptssnn evaluate: the config was not made by PTSSNNFamily.build (no corpus settings)")
        cfg = copy.deepcopy(config)
        cfg.train.epochs, cfg.train.qat_epochs, cfg.train.seed = b.epochs, b.qat_epochs, int(seed)
        cfg.train.patience = max(cfg.train.patience, b.epochs)  # a brief budget trains every epoch it is given
        if b.lr is not None:
            cfg.train.lr = b.lr
        if b.batch is not None:
            cfg.train.batch_size = b.batch
        fe = _frontend(cfg.frontend)
        cache_dir = Path(data["cache_dir"] or _default_cache_dir()).expanduser()
        corpus, features = corpus_features(data["corpus"], fe, cache_dir)
        corpus = training_subset(corpus, b.train_subset)
        out_dir = Path(out_dir)

        log(f"training {_describe(cfg.model)}: {b.epochs} float epoch(s)"
            + (f" + {b.qat_epochs} QAT epoch(s)" if b.qat else "") + f", seed {seed}")
        lines = _LineLog(log)
        t0 = time.perf_counter()
        result = train(cfg, corpus, out_dir, qat=b.qat, frontend=fe, features=features, progress=False,
                       console=Console(file=lines, width=160, color_system=None))
        train_seconds = time.perf_counter() - t0
        lines.flush()
        checkpoint = result.checkpoints["qat" if b.qat else "float"]
        return self._score_and_cost(checkpoint, corpus, features, profile, b, train_seconds, result, log)

    def _score_and_cost(self, checkpoint: Path, corpus, features, profile, b: Budget, train_seconds: float,
                        result, log) -> Evaluation:
        import torch

        from ptsnn.batching import pad_batch
        from ptsnn.convert import design_rules
        from ptsnn.convert.calibration import max_synaptic_input, state_overflows
        from ptsnn.search.costs import chip_costs
        from ptsnn.train.checkpoint import load_model
        from ptsnn.train.dataset import FeatureDataset
        from ptsnn.train.trainer import evaluate

        t0 = time.perf_counter()
        model, ckpt = load_model(checkpoint)
        quantization = "qat" if model.quantized else "post-training"
        if not model.quantized:
            model.quantize()  # what ptsnn-convert does with a float checkpoint
        # the trainer's own split (train.valid_split), so the scored speakers are the ones it validated on
        valid_by, share = parse_valid_split(ckpt.config.train.valid_split)
        _, valid_utts, test_utts = corpus.split(None, valid_by=valid_by, valid_fraction=share or 0.1,
                                                seed=ckpt.config.train.seed)
        classes = list(corpus.classes)
        scores = {}
        for split, utts in (("valid", valid_utts), ("test", test_utts)):
            if utts:
                scores[split], _ = evaluate(model, FeatureDataset.from_split(corpus, utts, features), classes,
                                            ckpt.config.train.batch_size)
        score_seconds = time.perf_counter() - t0

        t0 = time.perf_counter()
        graph = model.chip_graph(meta=dict(classes=ckpt.classes, frontend=ckpt.frontend,
                                           config=ckpt.config.to_dict()))
        # The host part of the quantized model makes the payloads, as ptsnn-convert --calib and verify do.
        held_out = [features[u.utt_id] for u in valid_utts[: b.eval_samples]]
        batch, lengths = (torch.as_tensor(a) for a in pad_batch(held_out, dtype=np.float32))
        with torch.no_grad():
            out = model(batch, lengths, record=True)
        payload = out.spikes["input"].numpy().astype(np.int64)
        allocation = design_rules.allocate_cores(graph, profile)
        violations = design_rules.check(graph, profile, max_synaptic_input=max_synaptic_input(graph, payload),
                                        allocation=allocation, state_overflow=state_overflows(graph, payload))
        if violations:
            log(f"design rule {violations[0].rule} after training: {violations[0].message()}")
        if violations:  # recorded by the engine like a rejection before training (rule, layer, message)
            raise CandidateInfeasible([Infeasible(v.rule, v.layer, v.message()) for v in violations])
        costs = chip_costs(graph, payload, profile, steps=out.steps.numpy())
        convert_seconds = time.perf_counter() - t0
        valid = scores["valid"]
        log(f"valid WAR {100 * valid.wa:.1f} % UAR {100 * valid.ua:.1f} % ({quantization} model); "
            f"energy {costs['energy_uj']} uJ, latency {costs['latency_ms']} ms, {costs['cores']} cores; "
            f"train {train_seconds:.1f} s, convert {convert_seconds:.2f} s")
        details = dict(score_split="valid", quantization=quantization, score_seconds=score_seconds,
                       train_utterances=sum(1 for u in corpus.utterances if u.split == "train"),
                       valid_utterances=len(valid_utts), cost_utterances=len(held_out),
                       best_epoch=result.best_epoch, warnings=list(result.warnings),
                       valid=valid.to_dict(), parameters=int(model.num_trainable()))
        if "test" in scores:
            details.update(test_war=scores["test"].wa, test_uar=scores["test"].ua)
        return Evaluation(war=float(valid.wa), uar=float(valid.ua), costs=costs, checkpoint=Path(checkpoint),
                          train_seconds=train_seconds, convert_seconds=convert_seconds, details=details)


def dense_chip_graph(config: Config):
    """The chip IR of the untrained network with every weight one: every synapse of the architecture exists
    (an untrained net's small weights would quantize to zero and hide synapses from the fan and capacity
    rules). Values (thresholds, biases, weight exponents) are meaningless here; only structure is."""
    import torch

    from ptsnn.train.model import PTSSNN
    from ptsnn.train.spiking import SynapseGroup

    model = PTSSNN(config.model)
    with torch.no_grad():
        for group in model.modules():
            if isinstance(group, SynapseGroup):
                group.weight.fill_(1.0)
    model.quantize()
    return model.chip_graph()


class _LineLog(io.TextIOBase):
    """A text stream that hands each finished line to ``log`` as it is written (the trainer's per-epoch lines
    reach the trial's log while it trains, not only at the end)."""

    def __init__(self, log: Callable[[str], None]):
        super().__init__()
        self._log, self._pending = log, ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        *done, self._pending = (self._pending + text).split("\n")
        for line in done:
            if line.strip():
                self._log(line.rstrip())
        return len(text)

    def flush(self) -> None:
        if self._pending.strip():
            self._log(self._pending.rstrip())
        self._pending = ""


def _default_cache_dir() -> Path:
    from ptsnn.frontend.cache import default_cache_dir

    return default_cache_dir()


def _describe(m: ModelConfig) -> str:
    shown = {k: v for k, v in asdict(m).items() if k in SEARCHABLE[:9]}
    return ", ".join(f"{k}={v}" for k, v in shown.items())
