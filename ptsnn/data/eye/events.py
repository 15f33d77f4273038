"""Raw event recordings (AEDAT4) for users who record their own, and event transforms through tonic.

* Decoding: the maintained ``aedat`` package (Rust, by the Neuromorphic Systems group; reads AEDAT 4.0
  files as written by iniVation's DV software and ``dv-processing``). It yields packets per stream;
  ``read_aedat4`` gathers the events of one event stream into the structured array tonic uses.
* Transforms: ``tonic`` (the ecosystem's library of event transforms): ``Denoise`` (drop events with no
  neighbour within a time window), ``Downsample`` (sensor -> model resolution), ``ToFrame`` (count events
  per polarity per time bin). ``recording_sequence`` chains them into the ``[T, 2, H, W]`` ON/OFF event
  channels of the synthetic data set (``channels="event"``), so a network trained on synthetic or SEE-style
  event frames can run on a recording.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ptsnn.errors import InputError

# tonic's event layout (tonic.io.make_structured_array): fields x, y, t (microseconds), p (0 OFF, 1 ON).
TONIC_DTYPE = np.dtype([("x", "<i8"), ("y", "<i8"), ("t", "<i8"), ("p", "<i8")])
MAX_SENSOR_SIDE = 8192  # pixels per side: event cameras today are at most 1280 x 720
MAX_EVENTS = 200_000_000  # refuse to gather more (about 6 GB): a bound, not a limit any eye clip reaches


def read_aedat4(path: str | os.PathLike[str], *, stream: int | None = None,
                max_events: int = MAX_EVENTS) -> tuple[np.ndarray, tuple[int, int]]:
    """Events of one event stream of an AEDAT4 file: ``(events, (width, height))``, events in
    :data:`TONIC_DTYPE`, time-sorted. ``stream``: the stream id (default: the only event stream)."""
    import aedat

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: AEDAT4 file not found")
    try:
        decoder = aedat.Decoder(str(path))
        streams = decoder.id_to_stream()
    except (RuntimeError, OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable AEDAT4 file ({exc})") from None
    event_streams = {sid: info for sid, info in streams.items() if info.get("type") == "events"}
    if stream is None:
        if len(event_streams) != 1:
            raise InputError(f"{path}: {len(event_streams)} event streams (ids {sorted(event_streams)}); "
                             "choose one with stream=")
        stream = next(iter(event_streams))
    if stream not in event_streams:
        raise InputError(f"{path}: no event stream with id {stream} (event streams: {sorted(event_streams)})")
    width, height = int(event_streams[stream]["width"]), int(event_streams[stream]["height"])
    if not (1 <= width <= MAX_SENSOR_SIDE and 1 <= height <= MAX_SENSOR_SIDE):  # frames and tonic's Denoise
        raise InputError(f"{path}: event stream {stream} declares a {width}x{height} sensor "  # allocate W x H
                         f"(expected 1..{MAX_SENSOR_SIDE} per side)")
    chunks, total = [], 0
    try:
        for packet in decoder:
            if packet["stream_id"] != stream or "events" not in packet:
                continue
            ev = packet["events"]
            total += ev.size
            if total > max_events:
                raise InputError(f"{path}: more than {max_events} events; cut the recording first")
            out = np.empty(ev.size, TONIC_DTYPE)
            out["x"], out["y"], out["t"], out["p"] = ev["x"], ev["y"], ev["t"], ev["on"]
            chunks.append(out)
    except (RuntimeError, OSError, ValueError) as exc:
        raise InputError(f"{path}: corrupt AEDAT4 packet ({exc})") from None
    if total == 0:
        raise InputError(f"{path}: event stream {stream} contains no events")
    events = np.concatenate(chunks)
    if events["x"].max() >= width or events["y"].max() >= height:
        raise InputError(f"{path}: event coordinates outside the stream's {width}x{height} sensor")
    if np.any(np.diff(events["t"]) < 0):
        events = events[np.argsort(events["t"], kind="stable")]
    return events, (width, height)


def events_to_frames(events: np.ndarray, sensor: tuple[int, int], *, frames: int | None = None,
                     frame_us: float | None = None, size: int | None = None, denoise_us: float | None = None,
                     start_us: int | None = None, end_us: int | None = None) -> np.ndarray:
    """Event counts ``[T, 2, H, W]`` (channel 0 OFF, 1 ON, as tonic orders polarities) through tonic:
    optional ``Denoise(filter_time=denoise_us)``, optional ``Downsample`` to ``size x size``, then
    ``ToFrame`` with ``frames`` equal time bins or fixed ``frame_us`` windows from ``start_us``."""
    import tonic.transforms as T

    if (frames is None) == (frame_us is None):
        raise InputError("give exactly one of frames= (number of time bins) or frame_us= (window length)")
    if events.size == 0:
        raise InputError("no events to turn into frames")
    width, height = sensor
    if denoise_us:
        events = T.Denoise(filter_time=denoise_us)(events)
        if events.size == 0:
            raise InputError(f"Denoise(filter_time={denoise_us}) removed every event")
    if size is not None and (width, height) != (size, size):
        events = T.Downsample(sensor_size=(width, height, 2), target_size=(size, size))(events)
        width, height = size, size
    if frames is not None:
        # Equal windows that cover first..last event. (tonic's n_time_bins slicing drops the events at the
        # very last timestamp; explicit windows with an end time keep every event.)
        if frames < 1:
            raise InputError(f"frames={frames}: need at least one frame")
        start_us = int(events["t"].min())
        frame_us = max(1, -(-(int(events["t"].max()) - start_us + 1) // frames))
        end_us = start_us + frame_us * frames
    elif frame_us <= 0:
        raise InputError(f"frame_us={frame_us}: must be positive")
    to_frame = T.ToFrame(sensor_size=(width, height, 2), time_window=frame_us, start_time=start_us, end_time=end_us)
    out = np.asarray(to_frame(events))
    return out[:frames] if frames is not None else out


def recording_sequence(path: str | os.PathLike[str], *, frames: int = 24, size: int = 32, event_cap: int = 4,
                       denoise_us: float | None = None) -> np.ndarray:
    """An AEDAT4 recording as ``[frames, 2, size, size]`` float32 channels ``(event_on, event_off)``, each
    ``min(count, event_cap) / event_cap``: the layout of the synthetic set's ``channels="event"``."""
    events, sensor = read_aedat4(path)
    counts = events_to_frames(events, sensor, frames=frames, size=size, denoise_us=denoise_us)
    on_off = counts[:, ::-1].astype(np.float32)  # tonic: [OFF, ON] -> ours: [ON, OFF]
    return np.minimum(on_off, event_cap) / np.float32(event_cap)
