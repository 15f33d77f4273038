"""The record every loader returns (:class:`Utterance`) and the :class:`Corpus` that holds them.

A corpus knows its classes (ordered: the index of a label is its position) and its evaluation protocol:
each utterance carries the id of the fold in which it is *test* data (``fold``), and/or a fixed
``split`` (train/valid/test). :meth:`Corpus.split` turns either into three speaker-disjoint lists.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal

from ptsnn.errors import InputError

SPLITS = ("train", "valid", "test")
SPLIT_ALIASES = {"train": "train", "valid": "valid", "val": "valid", "validation": "valid", "dev": "valid",
                 "test": "test", "eval": "test"}
# With fewer training speakers than this, holding one out for validation costs too much training data
# (CASIA: 3 left, EMOVO: 5 left), so validation is a stratified slice of utterances instead.
MIN_SPEAKERS_FOR_SPEAKER_VALID = 6
ValidBy = Literal["auto", "speaker", "utterance", "fraction", "none"]


@dataclass(frozen=True)
class Utterance:
    """One labelled recording. ``fold``: the fold in which it is test data (None: never test)."""

    path: Path
    label: str
    speaker: str
    utt_id: str
    fold: int | None = None
    split: str | None = None


def stable_rank(key: str) -> str:
    """A seed-free, platform-independent ordering key (Python's hash() is salted per process)."""
    return hashlib.sha1(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Corpus:
    """Utterances plus their ordered class list and protocol description."""

    name: str
    root: Path
    utterances: tuple[Utterance, ...]
    classes: tuple[str, ...]
    protocol: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "utterances", tuple(self.utterances))
        object.__setattr__(self, "classes", tuple(self.classes))
        if not self.utterances:
            raise InputError(f"{self.root}: no {self.name} utterances found")
        if len(set(self.classes)) != len(self.classes):
            raise InputError(f"{self.root}: duplicate class names in {list(self.classes)}")
        known = set(self.classes)
        ids: set[str] = set()
        for utt in self.utterances:
            if utt.label not in known:
                raise InputError(f"{utt.path}: label {utt.label!r} is not one of {list(self.classes)}")
            if utt.utt_id in ids:
                raise InputError(f"{utt.path}: duplicate utterance id {utt.utt_id!r} in {self.name}")
            ids.add(utt.utt_id)
            if utt.split is not None and utt.split not in SPLITS:
                raise InputError(f"{utt.path}: split {utt.split!r} is not one of {list(SPLITS)}")

    @cached_property
    def _by_fold(self) -> dict[int, tuple[Utterance, ...]]:
        by_fold: dict[int, list[Utterance]] = defaultdict(list)
        for utt in self.utterances:
            if utt.fold is not None:
                by_fold[utt.fold].append(utt)
        return {k: tuple(v) for k, v in sorted(by_fold.items())}

    def __len__(self) -> int:
        return len(self.utterances)

    @property
    def label_map(self) -> dict[str, int]:
        """Label -> class index (the order of :attr:`classes`)."""
        return {label: i for i, label in enumerate(self.classes)}

    def label_index(self, utt: Utterance) -> int:
        return self.label_map[utt.label]

    @property
    def speakers(self) -> tuple[str, ...]:
        return tuple(sorted({u.speaker for u in self.utterances}))

    def class_counts(self, utterances: Iterable[Utterance] | None = None) -> dict[str, int]:
        counts = Counter(u.label for u in (self.utterances if utterances is None else utterances))
        return {c: counts.get(c, 0) for c in self.classes}

    def folds(self) -> list[int]:
        """Fold ids of the corpus's standard cross-validation protocol (empty if it has none)."""
        return list(self._by_fold)

    def has_fixed_split(self) -> bool:
        return any(u.split is not None for u in self.utterances)

    def split(
        self, fold: int | None = None, *, valid_by: ValidBy = "auto", valid_fraction: float = 0.1, seed: int = 0
    ) -> tuple[list[Utterance], list[Utterance], list[Utterance]]:
        """Return ``(train, valid, test)``.

        ``fold=None`` uses the fixed ``split`` column (synthetic corpus, manifests). With a fold id, test is
        that fold's utterances and validation comes from the remaining ones: one held-out speaker when at
        least :data:`MIN_SPEAKERS_FOR_SPEAKER_VALID` training speakers exist (``valid_by="auto"``), else a
        per-(speaker, label) stratified ``valid_fraction`` of utterances.

        Other choices (``ptsnn train --valid-split``), from the non-test utterances (with a fixed split: its
        train and valid parts together): ``"speaker"`` one held-out speaker; ``"fraction"`` a
        ``valid_fraction`` share stratified by label and spread over speakers (:func:`stratified_share`,
        ordered by ``seed``); ``"none"`` no validation (everything not test trains). Deterministic.
        """
        if valid_by not in ("auto", "speaker", "utterance", "fraction", "none"):
            raise InputError(f"{self.name}: valid_by must be auto, speaker, utterance, fraction or none, "
                             f"not {valid_by!r}")
        if fold is None:
            train, valid, test = self._fixed_split()
            if valid_by == "auto":
                return train, valid, test
            pool = [u for u in self.utterances if u.split in ("train", "valid")]
        else:
            if fold not in self._by_fold:
                raise InputError(f"{self.name}: no fold {fold!r} (folds: {self.folds() or 'none'})")
            test = list(self._by_fold[fold])
            test_ids = {u.utt_id for u in test}
            pool = [u for u in self.utterances if u.utt_id not in test_ids]
        valid_ids = self._pick_valid(fold, pool, valid_by, valid_fraction, seed)
        train = [u for u in pool if u.utt_id not in valid_ids]
        valid = [u for u in pool if u.utt_id in valid_ids]
        return train, valid, test

    def _fixed_split(self) -> tuple[list[Utterance], list[Utterance], list[Utterance]]:
        if not self.has_fixed_split():
            raise InputError(f"{self.name}: no fixed train/valid/test split; pass a fold (folds: {self.folds()})")
        parts: dict[str, list[Utterance]] = {s: [] for s in SPLITS}
        for utt in self.utterances:
            if utt.split is not None:
                parts[utt.split].append(utt)
        return parts["train"], parts["valid"], parts["test"]

    def _pick_valid(self, fold: int | None, pool: Sequence[Utterance], valid_by: ValidBy, fraction: float,
                    seed: int = 0) -> set[str]:
        if valid_by == "none" or not pool:
            return set()
        if valid_by == "fraction":
            return stratified_share(pool, fraction, seed)
        speakers = sorted({u.speaker for u in pool})
        if valid_by == "speaker" or (valid_by == "auto" and len(speakers) >= MIN_SPEAKERS_FOR_SPEAKER_VALID):
            if len(speakers) < 2:
                where = f"fold {fold}" if fold is not None else "the train/valid split"
                raise InputError(f"{self.name}: {where} leaves {len(speakers)} training speaker(s); "
                                 "cannot hold one out for validation (choose a fraction of utterances or none)")
            speaker = (self._valid_speaker(fold, speakers) if fold is not None
                       else min(speakers, key=lambda s: stable_rank(f"{seed}/{s}")))
            return {u.utt_id for u in pool if u.speaker == speaker}
        return _stratified_slice(pool, fraction)

    def _valid_speaker(self, fold: int, pool_speakers: list[str]) -> str:
        """A speaker of the next fold (cyclic), so every fold validates on a different speaker."""
        folds = self.folds()
        nxt = folds[(folds.index(fold) + 1) % len(folds)]
        pool = set(pool_speakers)
        candidates = sorted({u.speaker for u in self._by_fold[nxt]} & pool) if nxt != fold else []
        candidates = candidates or pool_speakers
        return candidates[(folds.index(fold)) % len(candidates)]


def _stratified_slice(pool: Sequence[Utterance], fraction: float) -> set[str]:
    groups: dict[tuple[str, str], list[Utterance]] = defaultdict(list)
    for utt in pool:
        groups[(utt.speaker, utt.label)].append(utt)
    chosen: set[str] = set()
    for members in groups.values():
        n = math.floor(len(members) * fraction + 0.5)
        n = min(n, len(members) - 1)  # every (speaker, label) keeps at least one training example
        members = sorted(members, key=lambda u: stable_rank(u.utt_id))
        chosen.update(u.utt_id for u in members[:n])
    return chosen


def stratified_share(pool: Sequence[Utterance], fraction: float, seed: int = 0) -> set[str]:
    """About ``fraction`` of ``pool`` (at least one utterance) for validation: per label its share (largest
    remainders round), each label keeping at least one training utterance; within a label, speakers take turns
    (so validation spans speakers) in an order fixed by ``seed``. Made for small corpora, where the per-(speaker,
    label) slice of :func:`_stratified_slice` rounds to nothing."""
    by_label: dict[str, list[Utterance]] = defaultdict(list)
    for utt in pool:
        by_label[utt.label].append(utt)
    labels = sorted(by_label)
    quota = {lab: fraction * len(by_label[lab]) for lab in labels}
    room = {lab: len(by_label[lab]) - 1 for lab in labels}
    take = {lab: min(room[lab], math.floor(quota[lab])) for lab in labels}
    missing = max(1, math.floor(fraction * len(pool) + 0.5)) - sum(take.values())
    by_remainder = sorted(labels, key=lambda lab: (take[lab] - quota[lab], lab))
    while missing > 0 and any(take[lab] < room[lab] for lab in labels):
        for lab in by_remainder:
            if missing > 0 and take[lab] < room[lab]:
                take[lab] += 1
                missing -= 1
    chosen: set[str] = set()
    for lab in labels:
        chosen.update(u.utt_id for u in _speakers_in_turn(by_label[lab], seed)[: take[lab]])
    return chosen


def _speakers_in_turn(utts: Sequence[Utterance], seed: int) -> list[Utterance]:
    by_speaker: dict[str, list[Utterance]] = defaultdict(list)
    for utt in sorted(utts, key=lambda u: stable_rank(f"{seed}/{u.utt_id}")):
        by_speaker[utt.speaker].append(utt)
    queues = [by_speaker[s] for s in sorted(by_speaker, key=lambda s: stable_rank(f"{seed}/{s}"))]
    return [q[i] for i in range(max(map(len, queues), default=0)) for q in queues if i < len(q)]


def leave_one_speaker_out(utterances: Iterable[Utterance], speaker_order: Sequence[str]) -> list[Utterance]:
    """Assign fold = 1-based position of the speaker in ``speaker_order``."""
    index = {s: i + 1 for i, s in enumerate(speaker_order)}
    return [_with_fold(u, index[u.speaker]) for u in utterances]


def _with_fold(utt: Utterance, fold: int | None) -> Utterance:
    return Utterance(utt.path, utt.label, utt.speaker, utt.utt_id, fold, utt.split)
