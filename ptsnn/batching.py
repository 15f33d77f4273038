"""Batch padding, once: variable-length sequences ``[T_i, F]`` -> one zero-padded ``[B, T, F]`` array."""

from __future__ import annotations

import numpy as np


def pad_batch(seqs, length: int | None = None, dtype=None) -> tuple[np.ndarray, np.ndarray]:
    """``(batch [B, T, F], lengths [B])`` with ``T = length`` or the longest sequence; rows past each
    sequence's end are zero (the chip's flush steps, or padding the model masks with ``lengths``)."""
    arrays = [np.asarray(s) for s in seqs]
    if not arrays:
        raise ValueError("pad_batch: no sequences")
    lengths = np.array([len(a) for a in arrays], np.int64)
    t = int(lengths.max()) if length is None else int(length)
    out = np.zeros((len(arrays), t, *arrays[0].shape[1:]), dtype or arrays[0].dtype)
    for i, a in enumerate(arrays):
        out[i, : min(len(a), t)] = a[:t]
    return out, lengths
