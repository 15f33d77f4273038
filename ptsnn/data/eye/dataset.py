"""One in-memory form for every eye-emotion data source: :class:`EyeDataset` (plain numpy arrays).

Training code takes ``load_eye_dataset("synthetic-eye")`` or ``load_eye_dataset("see:/data/SEE")`` and gets
the same thing: ``sequences [N, T, C, H, W]`` float32 in ``[0, 1]``, integer labels, the lighting condition,
the subject and the train/valid/test split of every sequence (subject-disjoint), the class names and the
channel names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ptsnn.data.corpus import stable_rank
from ptsnn.data.eye.classes import LIGHTINGS, SPLITS
from ptsnn.errors import InputError

CHANNEL_CHOICES = ("frame", "event", "frame+event")


@dataclass(frozen=True)
class EyeDataset:
    """Sequences of near-eye frames with their labels and metadata (row ``i`` of every array belongs together)."""

    name: str
    sequences: np.ndarray  # [N, T, C, H, W] float32 in [0, 1]
    labels: np.ndarray  # [N] int64, index into classes
    classes: tuple[str, ...]
    channels: tuple[str, ...]  # names of the C channels
    lighting: np.ndarray  # [N] str, one of LIGHTINGS
    subjects: np.ndarray  # [N] str
    splits: np.ndarray  # [N] str, one of SPLITS
    names: tuple[str, ...]  # [N] sequence ids

    def __post_init__(self) -> None:
        n = len(self.names)
        if self.sequences.ndim != 5 or self.sequences.shape[0] != n or self.sequences.shape[2] != len(self.channels):
            raise ValueError(f"sequences {self.sequences.shape} do not match {n} names and channels {self.channels}")
        for field_name in ("labels", "lighting", "subjects", "splits"):
            if len(getattr(self, field_name)) != n:
                raise ValueError(f"{field_name} has {len(getattr(self, field_name))} rows, expected {n}")
        if n and (self.labels.min() < 0 or self.labels.max() >= len(self.classes)):
            raise ValueError("label index outside the class list")
        if not set(self.lighting) <= set(LIGHTINGS) or not set(self.splits) <= set(SPLITS):
            raise ValueError("unknown lighting condition or split name")

    def __len__(self) -> int:
        return len(self.names)

    @property
    def frames(self) -> int:
        return int(self.sequences.shape[1])

    def subset(self, split: str) -> "EyeDataset":
        """The sequences of one split (``train``, ``valid`` or ``test``)."""
        if split not in SPLITS:
            raise InputError(f"split {split!r}: expected one of {', '.join(SPLITS)}")
        return self.select(np.flatnonzero(self.splits == split))

    def select(self, index: Sequence[int] | np.ndarray) -> "EyeDataset":
        idx = np.asarray(index, dtype=np.int64)
        return EyeDataset(self.name, self.sequences[idx], self.labels[idx], self.classes, self.channels,
                          self.lighting[idx], self.subjects[idx], self.splits[idx],
                          tuple(self.names[i] for i in idx))

    def arrays(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """``(sequences, labels)`` of one split."""
        part = self.subset(split)
        return part.sequences, part.labels


def subject_split(subjects: Sequence[str], fractions: tuple[float, float, float], salt: str = "") -> dict[str, str]:
    """Assign whole subjects to train/valid/test in the given proportions, by a stable hash of their ids
    (seed-free, platform-independent): the three parts never share a subject."""
    unique = sorted(set(subjects), key=lambda s: stable_rank(f"{salt}{s}"))
    if not unique:
        return {}
    total = sum(fractions)
    n_test = int(round(len(unique) * fractions[2] / total))
    n_valid = int(round(len(unique) * fractions[1] / total))
    if len(unique) >= 3:  # every part asked for gets at least one subject when there are enough
        n_test = max(n_test, 1) if fractions[2] > 0 else 0
        n_valid = max(n_valid, 1) if fractions[1] > 0 else 0
    out = {}
    for i, subject in enumerate(unique):
        out[subject] = "test" if i < n_test else "valid" if i < n_test + n_valid else "train"
    return out


def resample_frames(n_available: int, n_wanted: int) -> np.ndarray:
    """Indices of ``n_wanted`` frames spread uniformly over ``n_available`` (nearest frame; repeats frames
    when the sequence is shorter than wanted)."""
    if n_available <= 0:
        raise ValueError("no frames to sample from")
    pos = (np.arange(n_wanted) + 0.5) * n_available / n_wanted - 0.5
    return np.clip(np.rint(pos), 0, n_available - 1).astype(np.int64)


def parse_channels(channels: str) -> tuple[bool, bool]:
    """``(use_frames, use_events)`` of a channel option."""
    if channels not in CHANNEL_CHOICES:
        raise InputError(f"channels {channels!r}: expected one of {', '.join(CHANNEL_CHOICES)}")
    return channels in ("frame", "frame+event"), channels in ("event", "frame+event")


def check_frames_size(frames: int, size: int) -> None:
    if not (isinstance(frames, int) and isinstance(size, int) and frames >= 1 and 4 <= size <= 1024):
        raise InputError(f"frames={frames}, size={size}: need at least 1 frame of 4x4 to 1024x1024 pixels")


def load_eye_dataset(spec: str, *, frames: int = 24, size: int = 32, channels: str = "frame+event",
                     seed: int = 0, **options) -> EyeDataset:
    """``synthetic-eye`` (the embedded generator; ``options`` go to :class:`SyntheticEyeConfig`) or
    ``see:PATH`` (the SEE data set in its published layout; ``options`` go to :func:`load_see`)."""
    check_frames_size(frames, size)
    if spec == "synthetic-eye":
        from ptsnn.data.eye.synthetic import SyntheticEyeConfig, generate_dataset

        return generate_dataset(SyntheticEyeConfig(frames=frames, size=size, channels=channels, seed=seed, **options))
    if spec.startswith("see:") and len(spec) > 4:
        from ptsnn.data.eye.see import load_see

        return load_see(spec[4:], frames=frames, size=size, channels=channels, **options)
    raise InputError(f"eye data {spec!r}: expected 'synthetic-eye' or 'see:PATH'")
