"""From a corpus split and a front end to padded training batches.

Features come from the front end through the on-disk cache (:func:`ptsnn.frontend.extract_features`, with a
progress bar), once per corpus; labels are indices in the corpus's label map. :class:`Collate` pads a list of
``[frames, dim]`` examples to ``[B, T, F]`` with ``lengths``; in training it first crops every utterance that
is longer than ``max_frames`` to a random window. The window depends only on ``(seed, epoch, example index)``,
so a run is reproducible whatever the batch order, the number of loader workers or of distributed ranks.
Evaluation keeps every frame.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ptsnn.data.corpus import Corpus, Utterance
from ptsnn.errors import InputError


def prepare_features(corpus: Corpus, frontend, utterances: Sequence[Utterance] | None = None,
                     cache_dir: str | os.PathLike[str] | None = None, progress: bool = True,
                     expected_dim: int | None = None) -> dict[str, np.ndarray]:
    """``utt_id -> float32 [frames, dim]`` for ``utterances`` (default: the whole corpus) via the cache."""
    from ptsnn.frontend import extract_features

    utts = list(corpus.utterances if utterances is None else utterances)
    feats = extract_features(frontend, [u.path for u in utts], cache_dir=cache_dir, progress=progress)
    out: dict[str, np.ndarray] = {}
    for utt, f in zip(utts, feats):
        out[utt.utt_id] = check_features(f, utt.path, expected_dim)
    return out


def check_features(f: np.ndarray | torch.Tensor, name: str | os.PathLike[str], expected_dim: int | None) -> np.ndarray:
    arr = f.numpy() if isinstance(f, torch.Tensor) else np.asarray(f)
    if arr.ndim == 3:
        raise InputError(f"{name}: features are [layers, frames, dim] (layer='all'); the trainer needs one layer "
                         "(front-end option layer=<index> or 'last')")
    if arr.ndim != 2 or arr.shape[0] < 1:
        raise InputError(f"{name}: features have shape {arr.shape} (expected [frames, dim])")
    if expected_dim is not None and arr.shape[1] != expected_dim:
        raise InputError(f"{name}: feature dim {arr.shape[1]} != model.input_dim {expected_dim} "
                         f"(use --set model.input_dim={arr.shape[1]} or a matching front end)")
    return np.ascontiguousarray(arr, dtype=np.float32)


class FeatureDataset(Dataset):
    """``(features [T, F] float32 tensor, label index, example index)`` per utterance."""

    def __init__(self, features: Sequence[np.ndarray | torch.Tensor], labels: Sequence[int],
                 ids: Sequence[str] | None = None):
        if len(features) != len(labels):
            raise ValueError(f"{len(features)} feature arrays but {len(labels)} labels")
        self.features = [torch.as_tensor(np.asarray(f, dtype=np.float32)) for f in features]
        self.labels = [int(y) for y in labels]
        self.ids = list(ids) if ids is not None else [str(i) for i in range(len(self.features))]

    @classmethod
    def from_split(cls, corpus: Corpus, utterances: Sequence[Utterance],
                   features: Mapping[str, np.ndarray]) -> "FeatureDataset":
        label_map = corpus.label_map
        missing = [u.utt_id for u in utterances if u.utt_id not in features]
        if missing:
            raise InputError(f"{corpus.name}: no features for {len(missing)} utterance(s), e.g. {missing[0]!r}")
        dims = {int(np.shape(features[u.utt_id])[-1]) for u in utterances}
        if len(dims) > 1:
            odd = next(u for u in utterances if np.shape(features[u.utt_id])[-1] != np.shape(features[utterances[0].utt_id])[-1])
            raise InputError(f"{odd.path}: feature dim {np.shape(features[odd.utt_id])[-1]} differs from "
                             f"{np.shape(features[utterances[0].utt_id])[-1]} of the other utterances")
        return cls([features[u.utt_id] for u in utterances], [label_map[u.label] for u in utterances],
                   [u.utt_id for u in utterances])

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, int]:
        return self.features[index], self.labels[index], index

    def lengths(self) -> list[int]:
        return [int(f.shape[0]) for f in self.features]


@dataclass
class Batch:
    features: torch.Tensor  # [B, T, F] zero-padded
    lengths: torch.Tensor  # [B] long: valid frames
    labels: torch.Tensor  # [B] long
    index: torch.Tensor  # [B] long: example index in the dataset

    def to(self, device: torch.device | str) -> "Batch":
        return Batch(self.features.to(device), self.lengths.to(device), self.labels.to(device), self.index.to(device))


def crop_start(length: int, max_frames: int, seed: int, epoch: int, index: int) -> int:
    """Start of the training window of example ``index`` in ``epoch`` (0 when it fits)."""
    if max_frames <= 0 or length <= max_frames:
        return 0
    rng = np.random.default_rng([seed & 0xFFFFFFFF, epoch, index])
    return int(rng.integers(0, length - max_frames + 1))


class Collate:
    """Pads to ``[B, T, F]``; with ``train=True`` crops each example longer than ``max_frames`` to a seeded
    random window (call :meth:`set_epoch` each epoch for new windows)."""

    def __init__(self, max_frames: int | None = None, train: bool = False, seed: int = 0):
        self.max_frames = int(max_frames or 0)
        self.train = bool(train)
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __call__(self, items: Sequence[tuple[torch.Tensor, int, int]]) -> Batch:
        feats = []
        for f, _, idx in items:
            if self.train and self.max_frames:
                start = crop_start(f.shape[0], self.max_frames, self.seed, self.epoch, idx)
                f = f[start:start + self.max_frames]
            feats.append(f)
        lengths = torch.tensor([f.shape[0] for f in feats], dtype=torch.long)
        padded = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True)
        return Batch(padded, lengths, torch.tensor([y for _, y, _ in items], dtype=torch.long),
                     torch.tensor([i for _, _, i in items], dtype=torch.long))


class LengthSortedSampler(torch.utils.data.Sampler):
    """Evaluation order by length (less padding, so faster); metrics do not depend on order."""

    def __init__(self, lengths: Sequence[int], indices: Sequence[int] | None = None):
        idx = list(range(len(lengths))) if indices is None else list(indices)
        self.order = sorted(idx, key=lambda i: lengths[i])

    def __iter__(self):
        return iter(self.order)

    def __len__(self) -> int:
        return len(self.order)


def init_batch(dataset: FeatureDataset, size: int, max_frames: int, seed: int) -> Batch:
    """A fixed, seeded batch of training examples for ``PTSSNN.data_init`` (same on every rank)."""
    rng = np.random.default_rng([seed & 0xFFFFFFFF, 0x1A17])
    n = min(size, len(dataset))
    picks = sorted(rng.choice(len(dataset), size=n, replace=False).tolist())
    return Collate(max_frames, train=True, seed=seed)([dataset[i] for i in picks])


def default_synthetic_root(out_dir: str | os.PathLike[str]) -> Path:
    return Path(out_dir) / "synthetic-corpus"
