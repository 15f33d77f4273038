"""Model and training configuration: named presets (``paper``, ``small``) plus overrides.

Every choice the paper leaves open is a field here, documented in docs/model.md. Overrides use dotted
``section.field=value`` strings (``model.hidden=256``, ``train.epochs=3``); values are parsed as JSON when they
parse, else kept as strings.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ptsnn.errors import InputError


@dataclass
class ModelConfig:
    input_dim: int = 80  # feature size from the front end (fbank 80; emotion2vec/wav2vec2 base 768)
    num_classes: int = 4
    xi: float = 1.0  # soft saturation tanh(xi * LayerNorm(x)) on the host
    input_bits: int = 6  # signed graded-spike payload bits of the quantized host features
    steps_per_frame: int = 1  # chip time steps per feature frame (50 Hz frames -> 20 ms steps)
    hidden: int = 128  # width of the encoder populations
    blocks: int = 2  # temporal-shift residual blocks in the encoder
    shift_div: int = 8  # 1/shift_div of channels comes from the past, 1/shift_div from the future
    key_dim: int = 32  # attention key population
    value_dim: int = 32  # attention value population
    prompts: int = 4  # learnable soft prompts (query vectors)
    calibrated_blocks: int = 1  # blocks after the attention whose neurons get prompt-driven bias current
    threshold: float = 1.0  # PLIF threshold (float units)
    tau_init: float = 4.0  # PLIF initial membrane time constant: decay factor sigmoid(w) = 1 / tau
    context_tau_init: float = 32.0  # slower leak of the context (prompt state) neurons
    surrogate: str = "atan"  # atan | sigmoid | triangle
    surrogate_alpha: float = 2.0
    dropout: float = 0.1

    def validate(self) -> "ModelConfig":
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
        if problems:
            raise InputError("model config: " + "; ".join(problems))
        return self


@dataclass
class TrainConfig:
    epochs: int = 20
    qat_epochs: int = 3  # quantization-aware fine-tuning epochs after float training (with --qat)
    batch_size: int = 16
    lr: float = 2e-3
    qat_lr: float = 5e-4
    weight_decay: float = 1e-2
    patience: int = 8  # early stopping on validation UA (one 48-utterance speaker: noisy)
    max_frames: int = 100  # crop long utterances during training (2 s at 50 Hz)
    seed: int = 0
    num_workers: int = 0
    rate_reg: float = 0.0  # optional firing-rate regulariser weight
    # How validation is formed (see parse_valid_split): auto | speaker | fraction:<0..1> | none
    valid_split: str = "auto"


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
    def from_dict(cls, d: dict) -> "Config":
        return cls(model=ModelConfig(**d.get("model", {})), train=TrainConfig(**d.get("train", {})),
                   frontend=dict(d.get("frontend", {"kind": "fbank", "n_mels": 80})), name=d.get("name", "custom"))


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


def load_config(name_or_path: str = "small", overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """A preset name or a TOML/JSON file (sections [model], [train], [frontend]), then ``key=value`` overrides."""
    path = Path(name_or_path)
    if path.suffix in (".toml", ".json"):
        if not path.is_file():
            raise InputError(f"{path}: no such config file")
        try:
            data = tomllib.loads(path.read_text()) if path.suffix == ".toml" else json.loads(path.read_text())
        except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"{path}: cannot parse ({exc})") from None
        base = preset(data.pop("base", "small"))
        try:
            merged = base.to_dict()
            for section in ("model", "train", "frontend"):
                merged[section].update(data.get(section, {}))
            merged["name"] = data.get("name", path.stem)
            cfg = Config.from_dict(merged)
        except TypeError as exc:
            raise InputError(f"{path}: {exc}") from None
    else:
        cfg = preset(name_or_path)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep:
            raise InputError(f"override {item!r}: expected key=value")
        _set_dotted(cfg, key.strip(), raw.strip())
    cfg.model.validate()
    parse_valid_split(cfg.train.valid_split)
    return cfg
