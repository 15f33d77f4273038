"""AEDAT4 recordings: written by iniVation's dv-processing, decoded by aedat, framed by tonic."""

from __future__ import annotations

import numpy as np
import pytest

from ptsnn.data.eye import events_to_frames, read_aedat4, recording_sequence
from ptsnn.errors import InputError

WIDTH, HEIGHT = 20, 12


def write_aedat4(path, events, size=(WIDTH, HEIGHT)):
    """An AEDAT 4.0 file with one event stream, through dv-processing's own writer."""
    import dv_processing as dv

    writer = dv.io.MonoCameraWriter(str(path), dv.io.MonoCameraWriter.EventOnlyConfig("DVXplorer_test", size))
    if len(events):
        store = dv.EventStore()
        for t, x, y, p in events:
            store.push_back(int(t), int(x), int(y), bool(p))
        writer.writeEvents(store)
    del writer  # closes the file (writes the trailing index)


@pytest.fixture
def recording(tmp_path):
    rng = np.random.default_rng(7)
    n = 300
    t = np.sort(rng.integers(10_000, 10_000 + 99_000, n))
    events = np.stack([t, rng.integers(0, WIDTH, n), rng.integers(0, HEIGHT, n), rng.integers(0, 2, n)], axis=1)
    path = tmp_path / "eye.aedat4"
    write_aedat4(path, events)
    return path, events


def test_decode_exactly(recording):
    path, written = recording
    events, sensor = read_aedat4(path)
    assert sensor == (WIDTH, HEIGHT) and events.size == len(written)
    for i, name in enumerate(("t", "x", "y", "p")):
        assert np.array_equal(events[name], written[:, i]), name


def test_frames_count_every_event_by_polarity(recording):
    path, written = recording
    events, sensor = read_aedat4(path)
    frame_us = 10_000
    counts = events_to_frames(events, sensor, frame_us=frame_us, start_us=10_000, end_us=110_000)
    assert counts.shape == (10, 2, HEIGHT, WIDTH)
    want = np.zeros_like(counts, dtype=np.int64)
    t, x, y, p = written.T
    np.add.at(want, ((t - 10_000) // frame_us, p, y, x), 1)  # tonic's channel order: 0 OFF, 1 ON
    assert np.array_equal(counts, want)
    # a fixed number of frames spread over the recording keeps every event
    binned = events_to_frames(events, sensor, frames=7)
    assert binned.shape == (7, 2, HEIGHT, WIDTH) and binned.sum() == len(written)
    assert binned[:, 1].sum() == written[:, 3].sum()
    # downsampled to the model's size: same totals per polarity
    small = events_to_frames(events, sensor, frames=3, size=8)
    assert small.shape == (3, 2, 8, 8) and small[:, 0].sum() == (written[:, 3] == 0).sum()


def test_denoise_drops_isolated_events(tmp_path):
    # a burst of neighbouring events plus one event far away in space and time
    burst = [(1000 + 10 * i, 5 + i % 2, 5, 1) for i in range(6)]
    path = tmp_path / "noisy.aedat4"
    write_aedat4(path, burst + [(500_000, 18, 10, 0)])
    events, sensor = read_aedat4(path)
    kept = events_to_frames(events, sensor, frames=1, denoise_us=100)
    assert kept.sum() < 7 and kept[0, 0].sum() == 0  # the isolated OFF event is gone


def test_recording_sequence_layout(recording):
    path, written = recording
    x = recording_sequence(path, frames=5, size=8, event_cap=2)
    assert x.shape == (5, 2, 8, 8) and x.dtype == np.float32
    assert set(np.unique(x)) <= {0.0, 0.5, 1.0}  # min(count, 2) / 2
    on_heavy = recording_sequence(path, frames=1, size=1, event_cap=10_000)
    assert round(float(on_heavy[0, 0, 0, 0]) * 10_000) == written[:, 3].sum()  # channel 0 is ON


def test_bad_recordings_one_line(tmp_path):
    empty = tmp_path / "empty.aedat4"
    write_aedat4(empty, [])
    cases = {empty: "contains no events", tmp_path / "none.aedat4": "not found"}
    huge = tmp_path / "huge_sensor.aedat4"  # frames and tonic's Denoise allocate width x height
    write_aedat4(huge, [(10_000, 1, 1, 1)], size=(20_000, 12))
    cases[huge] = "declares a 20000x12 sensor"
    garbage = tmp_path / "garbage.aedat4"
    garbage.write_bytes(b"#!AEDAT4.0\r\n" + b"\x00" * 7)
    cases[garbage] = "not a readable AEDAT4 file"
    for path, expected in cases.items():
        with pytest.raises(InputError, match=expected) as exc:
            read_aedat4(path)
        assert str(path) in str(exc.value) and "\n" not in str(exc.value)
    with pytest.raises(InputError, match="exactly one of"):
        events_to_frames(np.zeros(0), (2, 2))
