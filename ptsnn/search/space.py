"""Search spaces as data: a TOML file read through ``ptsnn.safeio`` (bounded) and checked against a strict
pydantic schema; every problem is one line naming the file, the field and what is wrong (docs/search.md).

    [search]  family, profile, objectives ("name:max|min"), seed, trials, study
    [search.nsga2]  population_size, crossover, crossover_prob, swapping_prob, mutation_prob
    [fixed]   family settings that are not searched (data, frame size, a parameter held constant ...)
    [budget]  epochs, train_subset, eval_samples, lr, batch
    [space]   name = {low, high[, step, log]} | {choices = [...]}

Built-in spaces live in ``ptsnn/search/spaces/NAME.toml``; ``--space`` takes a NAME or a path.
"""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path
from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ptsnn.errors import InputError
from ptsnn.safeio import describe_validation, parse_toml, read_text

SPACES_DIR = Path(__file__).with_name("spaces")
ACCURACY_OBJECTIVES = ("war", "uar")
COST_OBJECTIVES = ("energy_uj", "latency_ms", "cores", "synops")
OBJECTIVES = ACCURACY_OBJECTIVES + COST_OBJECTIVES
CROSSOVERS = ("uniform", "blxalpha", "sbx", "spx", "undx", "vsbx")
MAX_CHOICES = 256


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IntRange(_Strict):
    low: int
    high: int
    step: int = Field(1, ge=1)
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self):
        if self.low > self.high:
            raise ValueError(f"low {self.low} is above high {self.high}")
        if self.log and (self.low < 1 or self.step != 1):
            raise ValueError("log ranges need low >= 1 and step 1")
        return self


class FloatRange(_Strict):
    low: float
    high: float
    step: float | None = Field(None, gt=0)
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self):
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise ValueError("low and high must be finite")
        if self.low > self.high:
            raise ValueError(f"low {self.low} is above high {self.high}")
        if self.log and (self.low <= 0 or self.step is not None):
            raise ValueError("log ranges need low > 0 and no step")
        return self


class Choices(_Strict):
    choices: list[Union[bool, int, float, str]] = Field(min_length=1, max_length=MAX_CHOICES)

    @field_validator("choices")
    @classmethod
    def _distinct(cls, v):
        if len({(type(c), c) for c in v}) != len(v):
            raise ValueError("choices must be distinct")
        return v


Parameter = Union[IntRange, FloatRange, Choices]


class NSGA2Options(_Strict):
    population_size: int = Field(16, ge=2, le=10_000)
    crossover: Literal[CROSSOVERS] = "uniform"  # type: ignore[valid-type]
    crossover_prob: float = Field(0.9, ge=0, le=1)
    swapping_prob: float = Field(0.5, ge=0, le=1)
    mutation_prob: float | None = Field(None, ge=0, le=1)  # None: Optuna's 1 / number of parameters


class SearchOptions(_Strict):
    family: str
    profile: str = "loihi2"
    objectives: list[str] = Field(default_factory=lambda: ["war:max", "uar:max", "energy_uj:min", "latency_ms:min"],
                                  min_length=1, max_length=len(OBJECTIVES))
    seed: int = Field(0, ge=0, le=2**31 - 1)
    trials: int = Field(20, ge=1, le=100_000)
    study: str = Field("ptsnn-search", min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")
    nsga2: NSGA2Options = Field(default_factory=NSGA2Options)

    @field_validator("objectives")
    @classmethod
    def _objectives(cls, v):
        seen = set()
        for item in v:
            name, sep, direction = item.partition(":")
            if not sep or name not in OBJECTIVES or direction not in ("max", "min"):
                raise ValueError(f"objective {item!r}: expected NAME:max or NAME:min with NAME one of "
                                 f"{', '.join(OBJECTIVES)}")
            if name in seen:
                raise ValueError(f"objective {name!r} listed twice")
            seen.add(name)
        return v


class Budget(_Strict):
    """The common [budget] table (the TTFS family's); a family may bring its own (``Family.parse_budget``)."""

    epochs: int = Field(2, ge=1, le=1000)
    train_subset: float = Field(1.0, gt=0, le=1)  # fraction of the train split, stratified by class
    eval_samples: int = Field(8, ge=1, le=4096)  # held-out inputs the chip costs are measured on
    lr: float = Field(3e-3, gt=0, le=1)
    batch: int = Field(32, ge=1, le=65536)


class SpaceFile(_Strict):
    search: SearchOptions
    fixed: dict[str, Any] = Field(default_factory=dict)
    budget: dict[str, Any] = Field(default_factory=dict)  # checked by the family's parse_budget
    space: dict[str, Parameter] = Field(min_length=1)

    @field_validator("space", mode="before")
    @classmethod
    def _kinds(cls, v):
        """Each entry's kind from its keys: ``choices`` -> Choices, integer bounds -> IntRange, else FloatRange
        (pydantic's own union would try every member and report all of their errors)."""
        if not isinstance(v, dict):
            return v
        out = {}
        for name, entry in v.items():
            if not isinstance(entry, dict):
                raise ValueError(f"{name}: expected a table {{low=, high=}} or {{choices=[...]}}, got {entry!r}")
            try:
                if "choices" in entry:
                    out[name] = Choices(**entry)
                elif all(isinstance(entry.get(k), int) and not isinstance(entry.get(k), bool) for k in ("low", "high")) \
                        and not isinstance(entry.get("step"), float):
                    out[name] = IntRange(**entry)
                else:
                    out[name] = FloatRange(**entry)
            except ValidationError as exc:
                raise ValueError(f"{name}.{describe_validation(exc)}") from None
        return out


class SearchSpace:
    """A validated space file: its options, parameters, and where it came from."""

    def __init__(self, data: SpaceFile, origin: str, text: str, budget: dict[str, Any] | None = None):
        self.data = data
        self._budget = dict(budget) if budget is not None else Budget.model_validate(data.budget).model_dump()
        self.origin = origin
        self.text = text

    @property
    def options(self) -> SearchOptions:
        return self.data.search

    @property
    def parameters(self) -> dict[str, Parameter]:
        return dict(self.data.space)

    @property
    def fixed(self) -> dict[str, Any]:
        return dict(self.data.fixed)

    @property
    def budget(self) -> dict[str, Any]:
        return dict(self._budget)

    @property
    def objectives(self) -> list[tuple[str, str]]:
        """``[(name, "maximize" | "minimize")]`` in file order."""
        return [(n, "maximize" if d == "max" else "minimize") for n, d in
                (o.partition(":")[::2] for o in self.options.objectives)]

    @property
    def sha256(self) -> str:
        """Identity of the space's meaning (not its comments): a resumed study must use the same space."""
        return hashlib.sha256(self.data.model_dump_json().encode()).hexdigest()


def builtin_spaces() -> list[str]:
    return sorted(p.stem for p in SPACES_DIR.glob("*.toml"))


def resolve_space(name_or_path: str | os.PathLike) -> Path:
    """A built-in NAME (``ptsnn/search/spaces/NAME.toml``) or a path to a TOML file."""
    s = str(name_or_path)
    if os.sep not in s and "/" not in s and not s.endswith(".toml"):
        p = SPACES_DIR / f"{s}.toml"
        if not p.is_file():
            raise InputError(f"search space {s!r}: not a built-in space ({', '.join(builtin_spaces())}) "
                             "and not a .toml path")
        return p
    return Path(s)


def load_space(name_or_path: str | os.PathLike) -> SearchSpace:
    path = resolve_space(name_or_path)
    return parse_space(read_text(path, "search space"), str(path))


def parse_space(text: str, origin: str) -> SearchSpace:
    raw = parse_toml(text, origin)
    try:
        data = SpaceFile.model_validate(raw)
    except ValidationError as exc:
        raise InputError(f"{origin}: {describe_validation(exc)}") from None
    from ptsnn.search.families import get_family

    family = get_family(data.search.family, origin)
    known = family.parameter_names()
    unknown = sorted(set(data.space) - known)
    if unknown:
        raise InputError(f"{origin}: space.{unknown[0]}: not a parameter of family {data.search.family!r} "
                         f"(known: {', '.join(sorted(known))})")
    check_fixed = getattr(family, "check_fixed", None)
    if check_fixed is not None:
        try:
            check_fixed(data.fixed)
        except InputError as exc:
            raise InputError(f"{origin}: {exc}") from None
    parse_budget = getattr(family, "parse_budget", None)
    try:
        budget = parse_budget(data.budget) if parse_budget is not None else Budget.model_validate(data.budget).model_dump()
    except ValidationError as exc:
        raise InputError(f"{origin}: budget.{describe_validation(exc)}") from None
    except InputError as exc:
        raise InputError(f"{origin}: {exc}") from None
    return SearchSpace(data, origin, text, budget)
