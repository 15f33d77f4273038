"""What a model family gives the search: how a sampled point becomes a config, how a config is checked
against a hardware profile before any training, and how a candidate is trained and scored.

One family per model kind (``ttfs``, ``ptssnn``), registered in ``FAMILIES``; the engine (``engine.py``)
knows nothing of either. A family never samples: the engine samples the parameters the search-space file
declares and hands the family a plain ``params`` dict (JSON values), so the same point can be rebuilt from a
study's stored trial (``ptsnn search export``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol


@dataclass(frozen=True)
class Infeasible:
    """A candidate the profile's design rules reject before training: recorded in the study, never trained."""

    rule: str  # the design rule's name, e.g. "capacity", "ttfs_window_delay"
    layer: str
    message: str  # the rule's one-line message (limit, value, fix)


class CandidateInfeasible(Exception):
    """Raised by ``Family.evaluate`` when a rule that depends on trained weights (weight bits, 24-bit state,
    thresholds) rejects the trained candidate: the engine records it like a ``check`` rejection."""

    def __init__(self, violations: list[Infeasible]):
        super().__init__(violations[0].message if violations else "infeasible")
        self.violations = violations


@dataclass
class Evaluation:
    """A trained and costed candidate. Objectives are read from here by name (``war``, ``uar`` and the keys of
    ``costs``); every number says per inference."""

    war: float  # weighted average recall on the held-out split (= accuracy)
    uar: float  # unweighted average recall (mean recall over classes)
    costs: dict[str, float]  # e.g. energy_uj, latency_ms, cores, synops (per inference, on the chosen profile)
    checkpoint: Path  # a checkpoint ptsnn-convert takes
    train_seconds: float
    convert_seconds: float  # chip IR + design rules + fast-backend activity + energy model
    details: dict[str, Any] = field(default_factory=dict)  # JSON-able extras for the trial log


class Family(Protocol):
    """Optional members the engine uses when present: ``per_layer`` ({depth parameter: [per-layer parameter
    names]}: ``conv_kernel`` under ``conv_layers`` is sampled as ``conv0_kernel``, ``conv1_kernel``, ... up
    to the sampled depth), ``defaults`` ({parameter: value}: the depth used when it is neither sampled nor
    fixed), ``check_fixed(fixed)`` (raises ``InputError`` for an unknown or bad ``[fixed]`` key when the space
    file is read, before any trial). A config with ``to_dict()`` is stored through it (else a dataclass's
    fields, else the value itself, as JSON)."""

    name: str  # "ttfs" | "ptssnn"

    def parameter_names(self) -> set[str]:
        """The parameter names the family understands in a search-space file's [space] table."""

    def build(self, params: dict[str, Any], fixed: dict[str, Any]) -> Any:
        """The family's validated config for one sampled point (``fixed``: the space file's fixed settings).
        Raises ``ptsnn.errors.InputError`` for a point that is not a network (then recorded as infeasible
        with rule ``config``)."""

    def check(self, config: Any, profile) -> list[Infeasible]:
        """Design-rule violations of the candidate on ``profile``, before training (from the chip IR of the
        untrained network where the rules are structural)."""

    def evaluate(self, config: Any, profile, budget: dict[str, Any], out_dir: Path, seed: int,
                 log: Callable[[str], None] = lambda _msg: None) -> Evaluation:
        """Train briefly (``budget``: epochs, data subset ...), score WAR/UAR on the held-out split, convert,
        cost on ``profile``; write the candidate's checkpoint into ``out_dir``. Deterministic for a seed."""


FAMILIES: dict[str, Callable[[], Family]] = {}


def register(name: str):
    """Class decorator: ``@register("ttfs")`` adds a family factory to ``FAMILIES``."""

    def deco(cls):
        FAMILIES[name] = cls
        return cls

    return deco
