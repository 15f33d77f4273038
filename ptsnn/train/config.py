"""Model and training configuration: named presets (``paper``, ``small``) plus overrides.

Every choice the paper leaves open is a field here, documented in docs/model.md. Overrides use dotted
``section.field=value`` strings (``model.hidden=256``, ``train.epochs=3``); values are parsed as JSON when they
parse, else kept as strings.

Every value is typed and bounded (pydantic validation of the dataclasses below, strict: no strings for numbers,
no floats for integers, no NaN; unknown sections and fields are refused). The bounds keep a config from asking
for more than a machine can allocate: widths up to ``safeio.limits().max_neurons`` (the largest built-in chip),
an estimated parameter count up to ``max_parameters`` and ``max_frames * steps_per_frame`` chip steps up to
``max_steps``; see docs/security.md.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError

from ptsnn import safeio
from ptsnn.errors import InputError

MAX_WIDTH = 1 << 20  # = safeio.Limits.max_neurons (checked again against the live limit in validate())
_STRICT = ConfigDict(extra="forbid")  # strictness per field: no "12" for 12, no 12.5 for an int
Count = Annotated[int, Field(strict=True, ge=1, le=MAX_WIDTH)]
Small = Annotated[int, Field(strict=True, ge=1, le=256)]


def Real(gt: float | None = None, ge: float | None = None, le: float | None = None, lt: float | None = None):
    return Annotated[float, Field(strict=True, gt=gt, ge=ge, le=le, lt=lt, allow_inf_nan=False)]


@dataclass
class ModelConfig:
    __pydantic_config__ = _STRICT

    input_dim: Count = 80  # feature size from the front end (fbank 80; emotion2vec/wav2vec2 base 768)
    num_classes: Annotated[int, Field(strict=True, ge=1, le=4096)] = 4
    xi: Real(gt=0, le=1e3) = 1.0  # soft saturation tanh(xi * LayerNorm(x)) on the host
    input_bits: Annotated[int, Field(strict=True, ge=2, le=8)] = 6  # signed graded-spike payload bits of the host features
    steps_per_frame: Small = 1  # chip time steps per feature frame (50 Hz frames -> 20 ms steps)
    hidden: Count = 128  # width of the encoder populations
    blocks: Small = 2  # temporal-shift residual blocks in the encoder
    shift_div: Count = 8  # 1/shift_div of channels comes from the past, 1/shift_div from the future
    key_dim: Count = 32  # attention key population
    value_dim: Count = 32  # attention value population
    prompts: Annotated[int, Field(strict=True, ge=1, le=4096)] = 4  # learnable soft prompts (query vectors)
    # blocks after the attention whose neurons get prompt-driven bias current
    calibrated_blocks: Annotated[int, Field(strict=True, ge=0, le=256)] = 1
    threshold: Real(gt=0, le=1e9) = 1.0  # PLIF threshold (float units)
    tau_init: Real(gt=1, le=1e6) = 4.0  # PLIF initial membrane time constant: decay factor sigmoid(w) = 1 / tau
    context_tau_init: Real(gt=1, le=1e6) = 32.0  # slower leak of the context (prompt state) neurons
    surrogate: Annotated[str, Field(strict=True)] = "atan"  # atan | sigmoid | triangle
    surrogate_alpha: Real(gt=0, le=1e3) = 2.0
    dropout: Real(ge=0, lt=1) = 0.1

    def validate(self) -> "ModelConfig":
        _typed(ModelConfig, self, "model")
        problems = []
        for name in ("input_dim", "num_classes", "hidden", "blocks", "key_dim", "value_dim", "prompts",
                     "steps_per_frame", "shift_div"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1")
        if self.hidden // self.shift_div < 1:
            problems.append("hidden // shift_div must be >= 1 (at least one shifted channel)")
        if not 0 <= self.calibrated_blocks:
            problems.append("calibrated_blocks must be >= 0")
        if not 2 <= self.input_bits <= 8:
            problems.append("input_bits must be in 2..8")
        if self.tau_init <= 1 or self.context_tau_init <= 1:
            problems.append("tau_init and context_tau_init must be > 1")
        if self.surrogate not in ("atan", "sigmoid", "triangle"):
            problems.append(f"surrogate must be atan, sigmoid or triangle, not {self.surrogate!r}")
        lim = safeio.limits()
        ctx = self.prompts * self.value_dim
        for name, n in (("hidden", self.hidden), ("input_dim", self.input_dim), ("key_dim", self.key_dim),
                        ("value_dim", self.value_dim), ("prompts * value_dim", ctx)):
            if n > lim.max_neurons:
                problems.append(f"{name} = {n:,} is above the limit of {lim.max_neurons:,} neurons per population "
                                "(PTSNN_MAX_NEURONS)")
        params = estimated_parameters(self)
        if params > lim.max_parameters:
            problems.append(f"the model would have about {params:,} parameters, above the limit of "
                            f"{lim.max_parameters:,} (PTSNN_MAX_PARAMETERS)")
        if problems:
            raise InputError("model config: " + "; ".join(problems))
        return self


def estimated_parameters(m: ModelConfig) -> int:
    """Synapse weights of the PTS-SNN a config describes (what its allocation is dominated by)."""
    ctx = m.prompts * m.value_dim
    return (m.input_dim * m.hidden + m.blocks * m.hidden * m.hidden + m.hidden * (m.key_dim + m.value_dim)
            + m.key_dim * m.prompts + ctx + m.calibrated_blocks * (m.hidden * m.hidden + ctx * m.hidden)
            + m.hidden * m.num_classes)


@dataclass
class TrainConfig:
    __pydantic_config__ = _STRICT

    epochs: Annotated[int, Field(strict=True, ge=0, le=100_000)] = 20
    # quantization-aware fine-tuning epochs after float training (with --qat)
    qat_epochs: Annotated[int, Field(strict=True, ge=0, le=100_000)] = 3
    batch_size: Annotated[int, Field(strict=True, ge=1, le=65_536)] = 16
    lr: Real(ge=0, le=10) = 2e-3  # 0 is allowed: a frozen run (tests of early stopping use it)
    qat_lr: Real(ge=0, le=10) = 5e-4
    weight_decay: Real(ge=0, le=10) = 1e-2
    patience: Annotated[int, Field(strict=True, ge=0, le=100_000)] = 8  # early stopping on validation UA (noisy: one speaker)
    max_frames: Annotated[int, Field(strict=True, ge=1, le=1_000_000)] = 100  # crop long utterances in training (2 s at 50 Hz)
    seed: Annotated[int, Field(strict=True, ge=0, le=2**32 - 1)] = 0
    num_workers: Annotated[int, Field(strict=True, ge=0, le=256)] = 0
    rate_reg: Real(ge=0, le=1e6) = 0.0  # optional firing-rate regulariser weight
    # How validation is formed (see parse_valid_split): auto | speaker | fraction:<0..1> | none
    valid_split: Annotated[str, Field(strict=True, max_length=64)] = "auto"

    def validate(self) -> "TrainConfig":
        return _typed(TrainConfig, self, "train")


_ADAPTERS: dict[type, TypeAdapter] = {}


def _typed(cls: type, value: Any, section: str, origin: str = "config") -> Any:
    """``value`` (a dataclass instance or a dict) validated against ``cls``'s typed, bounded fields."""
    adapter = _ADAPTERS.setdefault(cls, TypeAdapter(cls))
    data = dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value
    if not isinstance(data, dict):
        raise InputError(f"{origin}: [{section}] must be a table/object (got {type(data).__name__})")
    try:
        return adapter.validate_python(data)
    except ValidationError as exc:
        raise InputError(f"{origin}: {section}.{safeio.describe_validation(exc)}") from None


SECTIONS = ("model", "train", "frontend", "name", "base")
_FRONTEND_KINDS = ("fbank", "hf", "torchaudio", "emotion2vec", "features")  # = ptsnn.frontend.FRONTENDS (checked in a test)


def check_frontend_spec(spec: Any, origin: str = "config") -> dict:
    """The ``frontend`` table: a known ``kind`` and plain values (the front end checks its own options)."""
    if not isinstance(spec, dict):
        raise InputError(f"{origin}: frontend must be a table/object (got {type(spec).__name__})")
    kind = spec.get("kind")
    if kind not in _FRONTEND_KINDS:
        raise InputError(f"{origin}: frontend.kind {kind!r} is unknown (known: {', '.join(_FRONTEND_KINDS)})")
    for key, v in spec.items():
        if not isinstance(key, str):
            raise InputError(f"{origin}: frontend key {key!r} is not a string")
        plain = v is None or isinstance(v, (bool, int, str)) or (isinstance(v, float) and v == v and abs(v) < 1e300)
        if not plain and not (isinstance(v, list) and all(isinstance(x, (int, float, str)) for x in v)):
            raise InputError(f"{origin}: frontend.{key} must be a number, string, boolean or list of them")
    return spec


VALID_SPLITS = "auto, speaker, fraction:<share> (e.g. fraction:0.1) or none"


def parse_valid_split(value: str) -> tuple[str, float]:
    """``train.valid_split`` -> ``(mode, fraction)`` for :meth:`ptsnn.data.corpus.Corpus.split`.

    * ``auto``: the corpus's protocol (its fixed valid split, or per fold one held-out speaker, or a 10 %
      utterance slice when fewer than 6 training speakers remain);
    * ``speaker``: one held-out training speaker;
    * ``fraction:F``: a share F of the training utterances, stratified by label and spread over speakers;
      never empty while a class has two utterances, and every class keeps training utterances;
    * ``none``: no validation; early stopping on the training loss (``train.patience``; set it to
      ``train.epochs`` for a fixed epoch count).
    """
    text = str(value).strip().lower()
    if text in ("auto", "speaker", "none"):
        return text, 0.0
    kind, sep, share = text.partition(":")
    if kind == "fraction" and sep:
        try:
            fraction = float(share)
        except ValueError:
            fraction = math.nan
        if 0.0 < fraction < 1.0:
            return "fraction", fraction
        raise InputError(f"valid split {value!r}: the share must be a number between 0 and 1 (exclusive)")
    raise InputError(f"valid split {value!r}: choose {VALID_SPLITS}")


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    frontend: dict = field(default_factory=lambda: {"kind": "fbank", "n_mels": 80})
    name: str = "small"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Any, origin: str = "config") -> "Config":
        """A config from plain data (a checkpoint's or a file's), every section typed and bounded."""
        _check_sections(d, origin)
        name = d.get("name", "custom")
        if not isinstance(name, str) or len(name) > 200:
            raise InputError(f"{origin}: name must be a string of at most 200 characters")
        model = _typed(ModelConfig, d.get("model", {}), "model", origin)
        train = _typed(TrainConfig, d.get("train", {}), "train", origin)
        frontend = check_frontend_spec(dict(d.get("frontend", {"kind": "fbank", "n_mels": 80}))
                                       if isinstance(d.get("frontend", {}), dict) else d.get("frontend"), origin)
        try:
            model.validate()
        except InputError as exc:
            raise InputError(f"{origin}: {exc}") from None
        if train.max_frames * model.steps_per_frame > safeio.limits().max_steps:
            raise InputError(f"{origin}: train.max_frames * model.steps_per_frame = "
                             f"{train.max_frames * model.steps_per_frame:,} chip steps, above the limit of "
                             f"{safeio.limits().max_steps:,} (PTSNN_MAX_STEPS)")
        return cls(model=model, train=train, frontend=frontend, name=name)


def preset(name: str) -> Config:
    """Named configurations. ``paper``: 768-d SSL features, 1.19 M trainable parameters (see docs/model.md);
    ``small``: the embedded default on 80-d fbank features, trains in minutes on 2 cores."""
    if name == "small":
        return Config(name="small")
    if name == "paper":
        return Config(
            name="paper",
            model=ModelConfig(input_dim=768, hidden=PAPER_HIDDEN, blocks=2, key_dim=64, value_dim=64, prompts=8,
                              calibrated_blocks=1),
            frontend={"kind": "features", "dim": 768},
        )
    raise InputError(f"unknown config {name!r}; known: small, paper (or a .toml/.json file)")


PAPER_HIDDEN = 436  # -> 1,191,676 trainable parameters (paper: 1.19 M)


def _set_dotted(cfg: Config, key: str, raw: str) -> None:
    section, _, name = key.partition(".")
    if section == "frontend" and name:
        try:
            cfg.frontend[name] = json.loads(raw)
        except json.JSONDecodeError:
            cfg.frontend[name] = raw
        return
    target = getattr(cfg, section, None)
    if not dataclasses.is_dataclass(target) or name not in {f.name for f in dataclasses.fields(target)}:
        raise InputError(f"override {key}={raw}: unknown field (use model.<field>, train.<field> or frontend.<key>)")
    current = getattr(target, name)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    if isinstance(current, bool) or not isinstance(current, (int, float, str)):
        ok = isinstance(value, type(current))
    elif isinstance(current, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    else:
        ok = isinstance(value, type(current)) and not isinstance(value, bool)
    if not ok:
        raise InputError(f"override {key}={raw}: expected {type(current).__name__}")
    setattr(target, name, value)
    try:
        _typed(type(target), target, section, f"override {key}={raw}")
    except InputError as exc:
        setattr(target, name, current)
        raise exc from None


def _check_sections(d: Any, origin: str) -> None:
    """The top level of a config: a table whose keys are known sections."""
    if not isinstance(d, dict):
        raise InputError(f"{origin}: expected a table/object of sections (got {type(d).__name__})")
    unknown = [k for k in d if k not in SECTIONS]
    if unknown:
        raise InputError(f"{origin}: unknown section {unknown[0]!r} (known: model, train, frontend, name, base)")


def load_config(name_or_path: str = "small", overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """A preset name or a TOML/JSON file (sections [model], [train], [frontend]), then ``key=value`` overrides."""
    path = Path(name_or_path)
    if path.suffix in (".toml", ".json"):
        text = safeio.read_text(path, "config file")
        data = safeio.parse_toml(text, str(path)) if path.suffix == ".toml" else safeio.parse_json(text, str(path))
        _check_sections(data, str(path))
        base_name = data.pop("base", "small")
        if not isinstance(base_name, str):
            raise InputError(f"{path}: base must be a preset name (small, paper)")
        try:
            merged = preset(base_name).to_dict()
        except InputError as exc:
            raise InputError(f"{path}: base: {exc}") from None
        for section in ("model", "train", "frontend"):
            part = data.get(section, {})
            if not isinstance(part, dict):
                raise InputError(f"{path}: [{section}] must be a table/object (got {type(part).__name__})")
            merged[section].update(part)
        merged["name"] = data.get("name", path.stem)
        cfg = Config.from_dict(merged, str(path))
    else:
        cfg = preset(name_or_path)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep:
            raise InputError(f"override {item!r}: expected key=value")
        _set_dotted(cfg, key.strip(), raw.strip())
    if overrides:
        cfg = Config.from_dict(cfg.to_dict(), "config with overrides")
    parse_valid_split(cfg.train.valid_split)
    return cfg
