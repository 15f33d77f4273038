"""The TTFS family (TNAS-ER): conv/pool/dense TTFS networks on eye data, scored by their ReLU twin.

A sampled point becomes a :class:`~ptsnn.train.ttfs_config.TTFSConfig` whose input matches the data
(frame channels, size, classes). Before training, the untrained network (seeded, windows calibrated on a
few training clips) is lowered to the chip IR and checked against the profile's *structural* design rules
(cores, neurons and synapses per chip, fan-in/out, delays, window timing): these do not depend on weight
values, so a rejection there is final and the candidate is never trained. Rules that read trained weights
(weight bits, 24-bit state, thresholds, fire-once) are checked on the trained candidate in ``evaluate``.

Fitness: the ReLU twin (it shares the SNN's exact mapping, docs/ttfs.md) trained for ``budget.epochs`` on
``budget.train_subset`` of the train split; WAR/UAR on the **validation** split (the test split is never
seen by the search: it stays for ``ptsnn train --arch``). Costs: the grid form's chip IR on the fast
simulator over ``budget.eval_samples`` validation clips (``ptsnn.search.costs.chip_costs``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ptsnn.errors import InputError
from ptsnn.search.family import CandidateInfeasible, Evaluation, Infeasible, register

# per-layer parameters are sampled once per layer as conv{i}_<rest> / dense{i}_<rest>
CONV_PARAMETERS = ("conv_out_channels", "conv_kernel", "conv_stride", "conv_pool", "conv_pool_size", "conv_skip")
DENSE_PARAMETERS = ("dense_width",)
NETWORK_PARAMETERS = ("conv_layers", "dense_layers", "steps_per_window", "frames_per_clip", "temporal_encoding",
                      "window_margin")
DEFAULTS = dict(conv_layers=2, conv_out_channels=8, conv_kernel=3, conv_stride=1, conv_pool="max", conv_pool_size=2,
                conv_skip=False, dense_layers=1, dense_width=32, steps_per_window=16, frames_per_clip=4,
                temporal_encoding="onoff", window_margin=0.0)
# [fixed] keys that choose the data (load_eye_dataset); ``data_seed`` is the synthetic generator's seed
DATA_KEYS = ("data", "frames", "size", "channels", "subjects", "takes", "data_seed")
DATA_DEFAULTS = dict(data="synthetic-eye", frames=16, size=16)
# rules that read only the network's structure: final before training
STRUCTURAL_RULES = frozenset({"capacity", "neurons_per_chip", "synapses_per_chip", "fan_in", "fan_in_core", "fan_out",
                              "max_delay", "graded_input", "ttfs_window_delay"})
CHECK_SAMPLES = 16  # training clips the untrained network's windows are calibrated on


@dataclass
class TTFSCandidate:
    ttfs: Any  # TTFSConfig, validated against the data
    data: dict[str, Any]  # load_eye_dataset spec and options
    architecture: dict[str, Any] = field(default_factory=dict)  # what `ptsnn train --arch` takes

    def to_dict(self) -> dict:
        return dict(model_kind="ttfs", architecture=self.architecture, data=self.data, ttfs=self.ttfs.to_dict())


@lru_cache(maxsize=4)
def _dataset(key: tuple):
    from ptsnn.data.eye import load_eye_dataset

    opts = dict(key)
    spec = opts.pop("data")
    if "data_seed" in opts:
        opts["seed"] = opts.pop("data_seed")
    try:
        return load_eye_dataset(spec, **opts)
    except TypeError as exc:
        raise InputError(f"fixed data options: {exc}") from None


def _loader_options(data: dict) -> dict:
    """The checkpoint's ``data_options`` as ``ptsnn train`` writes them (``spec`` + load_eye_dataset keywords),
    which ``ptsnn verify --data`` reads back to rebuild the same data."""
    opts = {k: v for k, v in data.items() if k != "data"}
    if "data_seed" in opts:
        opts["seed"] = opts.pop("data_seed")
    return dict(spec=data["data"], **opts)


def _data_options(fixed: dict) -> dict:
    return {**DATA_DEFAULTS, **{k: fixed[k] for k in DATA_KEYS if k in fixed}}


def _value(params: dict, name: str, i: int | None = None):
    """A per-layer value: ``conv{i}_kernel`` if sampled, else ``conv_kernel`` (fixed or sampled once), else
    the default."""
    if i is not None:
        head, rest = name.split("_", 1)
        layered = f"{head}{i}_{rest}"
        if layered in params:
            return params[layered]
    return params.get(name, DEFAULTS[name])


def architecture_of(params: dict) -> dict:
    """The network fields of a point (the ``--arch`` form): conv specs, dense widths, K, clip encoding."""
    conv = []
    for i in range(int(_value(params, "conv_layers"))):
        if _value(params, "conv_skip", i):
            continue  # an optional layer the point leaves out (docs/search.md: "skip choices")
        pool = _value(params, "conv_pool", i)
        conv.append(dict(out_channels=int(_value(params, "conv_out_channels", i)),
                         kernel=int(_value(params, "conv_kernel", i)), stride=int(_value(params, "conv_stride", i)),
                         pool=None if pool in (None, "none") else str(pool),
                         pool_size=int(_value(params, "conv_pool_size", i))))
    dense = [int(_value(params, "dense_width", i)) for i in range(int(_value(params, "dense_layers")))]
    return dict(conv=conv, dense=dense, steps_per_window=int(_value(params, "steps_per_window")),
                frames_per_clip=int(_value(params, "frames_per_clip")),
                temporal_encoding=str(_value(params, "temporal_encoding")),
                window_margin=float(_value(params, "window_margin")))


def _stratified(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Row indices of ``fraction`` of each class (at least one per class present), in a fixed order."""
    if fraction >= 1:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(labels):
        rows = np.flatnonzero(labels == c)
        keep.append(rng.permutation(rows)[:max(1, int(round(fraction * len(rows))))])
    return np.sort(np.concatenate(keep))


def search_split(ds, train_subset: float):
    """The data the search trains and scores on: a stratified share of train, and valid; no test rows."""
    train_rows = np.flatnonzero(ds.splits == "train")
    train_rows = train_rows[_stratified(ds.labels[train_rows], train_subset, seed=0)]
    valid_rows = np.flatnonzero(ds.splits == "valid")
    if not len(train_rows) or not len(valid_rows):
        raise InputError(f"{ds.name}: the search needs sequences in both the train and the valid split")
    return ds.select(np.concatenate([train_rows, valid_rows]))


@register("ttfs")
class TTFSFamily:
    name = "ttfs"
    defaults = DEFAULTS
    per_layer = {"conv_layers": list(CONV_PARAMETERS), "dense_layers": list(DENSE_PARAMETERS)}

    def parameter_names(self) -> set[str]:
        return set(NETWORK_PARAMETERS) | set(CONV_PARAMETERS) | set(DENSE_PARAMETERS)

    def check_fixed(self, fixed: dict) -> None:
        allowed = set(DATA_KEYS) | self.parameter_names()
        unknown = sorted(set(fixed) - allowed)
        if unknown:
            raise InputError(f"fixed.{unknown[0]}: unknown setting for family ttfs (known: {', '.join(sorted(allowed))})")
        data = fixed.get("data", DATA_DEFAULTS["data"])
        if not isinstance(data, str) or not (data == "synthetic-eye" or (data.startswith("see:") and len(data) > 4)):
            raise InputError(f"fixed.data: expected 'synthetic-eye' or 'see:PATH', not {data!r}")
        for key in DATA_KEYS:
            if key in fixed and not isinstance(fixed[key], (str, int, float, bool)):
                raise InputError(f"fixed.{key}: expected a single value, not {fixed[key]!r}")
        for key in ("frames", "size", "subjects", "takes", "data_seed"):
            v = fixed.get(key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
                raise InputError(f"fixed.{key}: expected a non-negative integer, not {v!r}")

    def build(self, params: dict[str, Any], fixed: dict[str, Any]) -> TTFSCandidate:
        from ptsnn.train.ttfs_train import config_for

        merged = {**{k: v for k, v in fixed.items() if k not in DATA_KEYS}, **params}
        data = _data_options(fixed)
        ds = _dataset(tuple(sorted(data.items())))
        arch = architecture_of(merged)
        try:
            cfg = config_for(ds, **arch)
        except TypeError as exc:
            raise InputError(f"ttfs config: {exc}") from None
        return TTFSCandidate(cfg, data, arch)

    def check(self, config: TTFSCandidate, profile) -> list[Infeasible]:
        import torch

        from ptsnn.convert import design_rules
        from ptsnn.train.ttfs import TTFSNet, calibrate_windows
        from ptsnn.train.ttfs_integer import quantize_ttfs
        from ptsnn.train.ttfs_train import encode_dataset

        ds = _dataset(tuple(sorted(config.data.items())))
        torch.manual_seed(0)
        net = TTFSNet(config.ttfs).eval()
        x = encode_dataset(ds.subset("train").select(np.arange(min(CHECK_SAMPLES, len(ds.subset("train"))))), config.ttfs)
        graph = quantize_ttfs(net, calibrate_windows(net, x)).chip_graph()
        return [Infeasible(v.rule, v.layer, v.message()) for v in design_rules.check(graph, profile)
                if v.rule in STRUCTURAL_RULES]

    def evaluate(self, config: TTFSCandidate, profile, budget: dict[str, Any], out_dir: Path, seed: int,
                 log: Callable[[str], None] = lambda _msg: None) -> Evaluation:
        from ptsnn.convert import design_rules
        from ptsnn.search.costs import chip_costs
        from ptsnn.train.ttfs_checkpoint import load_integer
        from ptsnn.train.ttfs_chip import payloads
        from ptsnn.train.ttfs_train import encode_dataset, train_ttfs

        ds = search_split(_dataset(tuple(sorted(config.data.items()))), float(budget["train_subset"]))
        t0 = time.perf_counter()
        result = train_ttfs(ds, config.ttfs, out_dir, epochs=int(budget["epochs"]), lr=float(budget["lr"]),
                            batch=int(budget["batch"]), seed=seed, progress=log,
                            data_options=_loader_options(config.data))
        t1 = time.perf_counter()
        log("converting: grid form -> chip IR -> design rules -> fast-simulator costs")
        grid, _, _ = load_integer(result.checkpoint)  # reads back what ptsnn-convert will read
        graph = grid.chip_graph()
        violations = design_rules.check(graph, profile)
        if violations:
            raise CandidateInfeasible([Infeasible(v.rule, v.layer, v.message()) for v in violations])
        valid = ds.subset("valid")
        n = min(int(budget["eval_samples"]), len(valid))
        x = encode_dataset(valid.select(np.arange(n)), config.ttfs)
        q0 = grid.quantize_input(x).numpy().astype(np.int64)
        costs = chip_costs(graph, payloads(graph, q0), profile)
        t2 = time.perf_counter()
        twin, chip = result.metrics["relu_twin"], result.metrics["grid"]
        return Evaluation(war=float(twin["war"]), uar=float(twin["uar"]), costs=costs, checkpoint=result.checkpoint,
                          train_seconds=t1 - t0, convert_seconds=t2 - t1,
                          details=dict(split=result.metrics["split"], grid_war=float(chip["war"]),
                                       grid_uar=float(chip["uar"]), valid_uar_best=float(result.metrics["valid_uar_best"]),
                                       train_sequences=int((ds.splits == "train").sum()), cost_samples=n))
