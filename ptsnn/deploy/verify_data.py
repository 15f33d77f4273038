"""Inputs for ``ptsnn verify``: :func:`ptsnn.frontend.sources.load_utterances` with the labels as class indices."""

from __future__ import annotations

from ptsnn.frontend.sources import load_utterances


def verification_inputs(data: str, ckpt, bundle, limit: int, max_frames: int):
    """Returns ``(features [frames, F] per utterance, host inputs (wave or features) per utterance, names,
    labels as class indices or None)``, utterances cropped to ``max_frames`` frames."""
    utts = load_utterances(data, ckpt.frontend, limit, max_frames)
    labels = [ckpt.label_map[c] for c in utts.labels] if utts.labels is not None else None
    return utts.features, utts.host_inputs, utts.names, labels
