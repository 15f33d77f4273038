"""The synthetic near-eye data set: determinism, layout, the DVS model, lighting, and that its classes need
temporal cues (the frame-mean baseline does clearly worse than the temporal one)."""

from __future__ import annotations

import numpy as np
import pytest

from ptsnn.data import load_eye_dataset
from ptsnn.data.eye import LIGHTINGS, SEE_CLASSES, SyntheticEyeConfig, generate_dataset, render_sequence, run_baseline
from ptsnn.data.eye.synthetic import EVENT_DTYPE
from ptsnn.errors import InputError
from ptsnn.train.metrics import compute_metrics

SMALL = dict(subjects=5, takes=1, frames=12, size=16, substeps=2)


def test_same_seed_same_bytes_other_seed_differs():
    a, b = generate_dataset(SyntheticEyeConfig(**SMALL)), generate_dataset(SyntheticEyeConfig(**SMALL))
    assert a.sequences.tobytes() == b.sequences.tobytes() and a.names == b.names
    assert np.array_equal(a.labels, b.labels) and np.array_equal(a.splits, b.splits)
    c = generate_dataset(SyntheticEyeConfig(**SMALL, seed=1))
    assert c.sequences.shape == a.sequences.shape and c.sequences.tobytes() != a.sequences.tobytes()
    # one sequence regenerates on its own, identical to its row in the data set
    one = render_sequence(SyntheticEyeConfig(**SMALL), 3, "fear", 0)
    row = a.names.index(next(n for n in a.names if n.split("_")[1] == "004" and "_fear_" in n))
    assert np.array_equal(one.frames, a.sequences[row, :, 0])


def test_layout_splits_and_channels():
    ds = load_eye_dataset("synthetic-eye", frames=10, size=16, subjects=6, takes=2, substeps=1)
    assert ds.sequences.shape == (6 * 7 * 2, 10, 3, 16, 16) and ds.sequences.dtype == np.float32
    assert ds.channels == ("frame", "event_on", "event_off") and ds.classes == SEE_CLASSES
    assert 0.0 <= ds.sequences.min() and ds.sequences.max() <= 1.0
    assert np.bincount(ds.labels).tolist() == [12] * 7
    assert sorted(set(ds.lighting)) == sorted(LIGHTINGS)
    parts = {p: set(ds.subset(p).subjects) for p in ("train", "valid", "test")}
    assert all(parts.values()) and not (parts["train"] & parts["valid"]) and not (parts["train"] & parts["test"]) \
        and not (parts["valid"] & parts["test"])
    events_only = load_eye_dataset("synthetic-eye", frames=4, size=8, channels="event", subjects=1, takes=1)
    assert events_only.channels == ("event_on", "event_off") and events_only.sequences.shape[2] == 2
    for bad in (dict(subjects=0), dict(size=4), dict(seed=-1), dict(channels="rgb")):
        with pytest.raises(InputError):
            SyntheticEyeConfig(**bad)


def test_event_stream_matches_counts_through_tonic():
    import tonic.transforms as T

    cfg = SyntheticEyeConfig(**SMALL)
    seq = render_sequence(cfg, 0, "surprise", 0)
    assert seq.events.dtype == EVENT_DTYPE and np.all(np.diff(seq.events["t"]) >= 0)
    assert seq.on.sum() > 0 and seq.off.sum() > 0 and seq.events.size == int(seq.on.sum()) + int(seq.off.sum())
    ev = np.empty(seq.events.size, [("x", int), ("y", int), ("t", int), ("p", int)])
    for name in ("x", "y", "t", "p"):
        ev[name] = seq.events[name]
    frame_us = cfg.frame_ms * 1000
    counts = T.ToFrame(sensor_size=(cfg.size, cfg.size, 2), time_window=frame_us, start_time=0,
                       end_time=cfg.frames * frame_us)(ev)
    assert counts.shape == (cfg.frames, 2, cfg.size, cfg.size)
    assert np.array_equal(counts[:, 1], seq.on) and np.array_equal(counts[:, 0], seq.off)


def test_lighting_saturates_frames_not_events():
    cfg = SyntheticEyeConfig(**SMALL)
    normal = render_sequence(cfg, 2, "fear", 0, lighting="normal")
    over = render_sequence(cfg, 2, "fear", 0, lighting="overexposure")
    dark = render_sequence(cfg, 2, "fear", 0, lighting="low-light")
    assert (over.frames >= 1.0).mean() > 0.3 and (normal.frames >= 1.0).mean() < 0.01
    assert dark.frames.mean() < 0.25 * normal.frames.mean()
    # the log-intensity model sees the motion whatever the gain: similar event counts, saturation or not
    n_normal, n_over = int(normal.on.sum() + normal.off.sum()), int(over.on.sum() + over.off.sum())
    assert abs(n_over - n_normal) < 0.25 * n_normal
    assert dark.on.sum() + dark.off.sum() > n_normal  # low light: more noise events


def test_classes_need_temporal_cues():
    """Per-frame-mean logistic regression sits near chance; the temporal one does clearly better."""
    ds = generate_dataset(SyntheticEyeConfig(subjects=16, takes=2, frames=16, size=16, substeps=2))
    train, test = ds.subset("train"), ds.subset("test")
    scores = {kind: compute_metrics(test.labels, run_baseline(kind, train, test), ds.classes)
              for kind in ("frame-mean", "temporal")}
    assert scores["frame-mean"].wa < 0.3
    assert scores["temporal"].wa > scores["frame-mean"].wa + 0.2 and scores["temporal"].ua > 0.4
