"""The embedded synthetic near-eye emotion data set: ptsnn's default eye data (nothing is downloaded).

A head-mounted camera looks at one eye (as in SEE). Each sequence is rendered from a small parametric eye:
skin with a subject's tone and texture, a brow band, an almond-shaped lid opening whose upper and lower lids
meet when the eye closes, lashes and a lid crease, sclera, iris and pupil at the gaze position. Over time the
**eyelid aperture**, **blinks**, **gaze** (fixation, saccades, smooth drift, aversion) and **brow/skin**
position move with patterns that depend on the emotion class (the 7 SEE classes). Every class-specific
trajectory is made **zero-mean over the sequence** around the subject's own baseline, so the time-averaged
image of a sequence says little about its class: the classes differ in *dynamics* (direction and speed of
aperture and brow changes, saccade patterns, blink speed, tremor), not in mean appearance.

Each sequence is rendered at ``substeps`` instants per frame interval. The intensity frame (the camera's
APS image) is the exposure average of those instants with read and shot noise, clipped to [0, 1] and
quantised to 8 bits. Events come from the log-intensity change model of a DVS pixel on the *unclipped*
irradiance: a pixel emits an ON (OFF) event each time its log intensity rises (falls) by its contrast
threshold since its last event (per-pixel threshold mismatch), plus background-activity noise; events are
counted per frame interval (ON and OFF channels) and also returned as a raw ``(t, x, y, p)`` stream.

Four lighting conditions as in SEE: ``normal``; ``overexposure`` (high gain, the frame saturates, events do
not); ``low-light`` (low gain: noisy frames, more noise events); ``HDR`` (a strong illumination gradient
across the image: part saturated, part dark). Subjects differ in eye shape and position, skin tone and
texture, iris/sclera brightness, brow, baseline aperture, expressiveness and blink rate.

Determinism: every draw comes from a generator seeded by ``(seed, stream, subject[, emotion, take])``;
the same config gives byte-identical arrays, and any single sequence regenerates on its own.
Model and knobs: docs/data_eye.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ptsnn.data.eye.classes import LIGHTINGS, SEE_CLASSES
from ptsnn.data.eye.dataset import EyeDataset, parse_channels, subject_split
from ptsnn.errors import InputError

EVENT_DTYPE = np.dtype([("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "i1")])  # t in microseconds; p: 1 ON, 0 OFF
_SUBJECT, _SEQUENCE, _LIGHT = 1, 2, 3  # stream tags: subject, motion and lighting draws never share a generator


@dataclass(frozen=True)
class EyeEmotionProfile:
    """How one emotion moves the eye region. Shapes: 'rise', 'fall', 'pulse' (there and back) or 'flat';
    amplitudes in aperture units (0 closed .. 1 wide open) and brow units; ``speed`` is the transition width
    as a fraction of the sequence (smaller = faster)."""

    aperture_shape: str
    aperture_amp: float
    aperture_speed: float
    brow_shape: str
    brow_amp: float
    brow_speed: float
    gaze: str  # 'fixate', 'scan', 'glance', 'smooth', 'avert', 'drift_down'
    saccade_rate: float  # per second, for 'scan' and 'glance'
    blink_rate: float  # per second
    blink_seconds: float  # duration of one blink
    tremor: float = 0.0  # aperture tremor amplitude (8-12 Hz)


def default_profiles() -> dict[str, EyeEmotionProfile]:
    """Per-class dynamics, loosely after facial-action descriptions of the periocular region (upper-lid
    raise in surprise/fear, lid tightening and brow lowering in anger, cheek-raise squint in happiness,
    inner-brow raise and slow lids in sadness, gaze aversion in disgust, scanning in fear)."""
    p = EyeEmotionProfile
    return {
        "angry": p("fall", 0.30, 0.05, "fall", 0.55, 0.05, "fixate", 0.0, 0.25, 0.12),
        "disgust": p("pulse", 0.28, 0.10, "fall", 0.35, 0.15, "avert", 0.0, 0.45, 0.15),
        "fear": p("rise", 0.30, 0.05, "rise", 0.50, 0.06, "scan", 4.0, 0.30, 0.12, tremor=0.05),
        "happiness": p("fall", 0.30, 0.16, "flat", 0.0, 0.1, "smooth", 0.0, 0.55, 0.15),
        "neutraL": p("flat", 0.0, 0.1, "flat", 0.0, 0.1, "glance", 1.0, 0.55, 0.12),
        "sadness": p("fall", 0.22, 0.18, "rise", 0.35, 0.18, "drift_down", 0.0, 0.45, 0.30),
        "surprise": p("rise", 0.36, 0.02, "rise", 0.60, 0.02, "fixate", 0.0, 0.05, 0.12),
    }


@dataclass(frozen=True)
class SyntheticEyeConfig:
    """Knobs of the synthetic near-eye data set (docs/data_eye.md)."""

    subjects: int = 30
    takes: int = 2  # sequences per (subject, emotion); take k uses lighting (subject + emotion + 2k) mod 4
    frames: int = 24
    size: int = 32  # frames are size x size
    frame_ms: float = 40.0
    substeps: int = 3  # render instants per frame interval (exposure average; event model resolution)
    seed: int = 0
    channels: str = "frame+event"
    contrast_threshold: float = 0.18  # DVS log-intensity threshold, ON and OFF
    threshold_mismatch: float = 0.05  # relative per-pixel spread of the threshold
    event_cap: int = 4  # event channel value = min(count, cap) / cap
    expression_noise: float = 0.01  # random-walk jitter of aperture and brow, every class
    split_fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)
    profiles: dict[str, EyeEmotionProfile] = field(default_factory=default_profiles)

    def __post_init__(self) -> None:
        checks = {"subjects": self.subjects >= 1, "takes": self.takes >= 1, "frames": self.frames >= 2,
                  "size": 8 <= self.size <= 256, "frame_ms": self.frame_ms > 0, "substeps": 1 <= self.substeps <= 16,
                  "contrast_threshold": self.contrast_threshold > 0, "event_cap": self.event_cap >= 1, "seed": self.seed >= 0,
                  "profiles": set(self.profiles) == set(SEE_CLASSES)}
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise InputError(f"synthetic eye config: invalid {', '.join(bad)}")
        parse_channels(self.channels)


@dataclass(frozen=True)
class SyntheticSequence:
    frames: np.ndarray  # [T, H, W] float32 in [0, 1] (8-bit levels)
    on: np.ndarray  # [T, H, W] uint8 ON event counts per frame interval
    off: np.ndarray  # [T, H, W] uint8 OFF event counts
    events: np.ndarray  # EVENT_DTYPE, sorted by time; frame j holds t in [j, j+1) * frame interval
    emotion: str
    lighting: str
    subject: int


def sequence_lighting(subject: int, emotion_index: int, take: int) -> str:
    return LIGHTINGS[(subject + emotion_index + 2 * take) % len(LIGHTINGS)]


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *key]))


def _subject_params(cfg: SyntheticEyeConfig, subject: int) -> dict:
    r = _rng(cfg.seed, _SUBJECT, subject)
    u = r.uniform
    return {
        "tone": u(0.35, 0.7), "sclera": u(0.68, 0.9), "iris": u(0.12, 0.42), "ew": u(0.55, 0.8),
        "eh": u(0.42, 0.58), "cx": u(-0.12, 0.12), "cy": u(0.0, 0.2), "brow_gap": u(0.18, 0.32),
        "brow_dark": u(0.3, 0.6), "brow_thick": u(0.06, 0.12), "r_iris": u(0.16, 0.22),
        "aperture": u(0.5, 0.75), "expressive": u(0.7, 1.3), "blink_mult": u(0.6, 1.6),
        "texture": (r.normal(0, 1, (6, 2)) * 3.0, r.uniform(0, 2 * math.pi, 6), r.uniform(0.01, 0.03, 6)),
    }


def _transition(u: np.ndarray, shape: str, onset: float, width: float, hold: float) -> np.ndarray:
    """Zero-mean trajectory of a given shape over normalised time ``u``."""
    step = lambda at: 1.0 / (1.0 + np.exp(-(u - at) / max(width, 1e-3)))  # noqa: E731
    if shape == "rise":
        s = step(onset)
    elif shape == "fall":
        s = -step(onset)
    elif shape == "pulse":  # narrows then releases
        s = -(step(onset) - step(onset + hold))
    else:
        s = np.zeros_like(u)
    return s - s.mean()


def _gaze(cfg: SyntheticEyeConfig, prof: EyeEmotionProfile, r: np.random.Generator, t: np.ndarray, onset_s: float):
    n = t.size
    x0, y0 = r.uniform(-0.35, 0.35), r.uniform(-0.25, 0.25)
    gx, gy = np.full(n, x0), np.full(n, y0)
    if prof.gaze in ("scan", "glance"):  # piecewise-constant fixations joined by one-instant saccades
        count = r.poisson(prof.saccade_rate * t[-1]) if t[-1] > 0 else 0
        for at in np.sort(r.uniform(0, t[-1], count)):
            gx[t >= at], gy[t >= at] = r.uniform(-0.6, 0.6), r.uniform(-0.35, 0.35)
    elif prof.gaze == "smooth":
        f, phase, amp = r.uniform(0.6, 1.2), r.uniform(0, 2 * math.pi), r.uniform(0.3, 0.5)
        gx = x0 * 0.3 + amp * np.sin(2 * math.pi * f * t + phase)
        gy = y0 + 0.3 * amp * np.cos(2 * math.pi * f * t + phase)
    elif prof.gaze == "avert":  # a saccade away (left or right) at the expression onset, then hold
        side = r.choice((-1.0, 1.0))
        gx = np.where(t >= onset_s, side * r.uniform(0.4, 0.65), x0 * 0.3)
    elif prof.gaze == "drift_down":  # a slow downward drift through the centre
        gy = np.linspace(-0.3, 0.3, n) * r.uniform(0.7, 1.2)
        gx = np.full(n, x0 * 0.5)
    gx = gx + r.normal(0, 0.015, n)  # fixational jitter
    gy = gy + r.normal(0, 0.015, n)
    return gx, gy


def _blinks(prof: EyeEmotionProfile, sub: dict, r: np.random.Generator, t: np.ndarray) -> np.ndarray:
    """Lid closure 0..1 over time from a Poisson blink process (a closing-reopening bump per blink)."""
    closure = np.zeros_like(t)
    rate = prof.blink_rate * sub["blink_mult"]
    duration = t[-1] + (t[1] - t[0] if t.size > 1 else 0.0)
    for at in r.uniform(-0.1, duration, r.poisson(rate * (duration + 0.1))):
        width = prof.blink_seconds * r.uniform(0.8, 1.25) / 3.0
        closure = np.maximum(closure, np.exp(-0.5 * ((t - at) / width) ** 2))
    return closure


def _lighting_field(kind: str, r: np.random.Generator, X: np.ndarray, Y: np.ndarray) -> tuple[float, np.ndarray]:
    """(gain, spatial illumination) of a lighting condition."""
    if kind == "overexposure":
        return r.uniform(1.8, 2.6), np.ones_like(X)
    if kind == "low-light":
        return r.uniform(0.1, 0.2), np.ones_like(X)
    if kind == "HDR":
        angle = r.uniform(0, 2 * math.pi)
        return r.uniform(0.6, 0.9), np.exp(1.5 * (X * math.cos(angle) + Y * math.sin(angle)))
    return r.uniform(0.9, 1.1), np.ones_like(X)


def _sig(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def render_sequence(cfg: SyntheticEyeConfig, subject: int, emotion: str, take: int,
                    lighting: str | None = None) -> SyntheticSequence:
    """One sequence: intensity frames, per-frame ON/OFF event counts and the raw event stream.
    ``lighting`` overrides the condition the data set assigns (the motion stays the same)."""
    if emotion not in SEE_CLASSES or (lighting is not None and lighting not in LIGHTINGS):
        raise InputError(f"synthetic eye: unknown emotion {emotion!r} or lighting {lighting!r}")
    e_index = SEE_CLASSES.index(emotion)
    prof, sub = cfg.profiles[emotion], _subject_params(cfg, subject)
    lighting = lighting or sequence_lighting(subject, e_index, take)
    r = _rng(cfg.seed, _SEQUENCE, subject, e_index, take)
    n_t, s, size = cfg.frames * cfg.substeps, cfg.substeps, cfg.size
    dt = cfg.frame_ms / 1000.0 / s
    t = np.arange(n_t) * dt  # seconds
    u = (np.arange(n_t) + 0.5) / n_t  # normalised time

    # Trajectories: class-specific zero-mean changes around the subject's baseline, plus shared jitter.
    onset = r.uniform(0.25, 0.6)
    amp = sub["expressive"] * r.uniform(0.7, 1.3)
    speed = r.uniform(0.7, 1.4)
    hold = r.uniform(0.2, 0.35)
    walk = lambda: np.cumsum(r.normal(0, cfg.expression_noise / math.sqrt(s), n_t))  # noqa: E731
    aperture = (sub["aperture"] + r.normal(0, 0.05)
                + prof.aperture_amp * amp * _transition(u, prof.aperture_shape, onset, prof.aperture_speed * speed, hold)
                + walk())
    if prof.tremor:
        aperture = aperture + prof.tremor * amp * np.sin(2 * math.pi * r.uniform(8, 12) * t + r.uniform(0, 6.3))
    brow = (r.normal(0, 0.1) + prof.brow_amp * amp
            * _transition(u, prof.brow_shape, onset, prof.brow_speed * speed, hold) + walk())
    aperture = np.clip(aperture, 0.08, 1.0) * (1.0 - 0.97 * _blinks(prof, sub, r, t))
    gx, gy = _gaze(cfg, prof, r, t, onset * t[-1])
    slip = r.normal(0, 0.03, 2)  # headset slip: a slow drift of the whole eye region, every class alike
    cx = sub["cx"] + slip[0] * u[:, None, None]
    cy = sub["cy"] + slip[1] * u[:, None, None]

    # Geometry on a [-1, 1]^2 grid, all render instants at once. Arrays broadcast as [n_t, H, W]; what
    # depends on x only stays [n_t, 1, W] (float32: the image needs no more, and it halves the cost).
    f32 = np.float32
    coords = ((np.arange(size) + 0.5) / size * 2 - 1).astype(f32)
    X, Y = coords[None, None, :], coords[None, :, None]
    edge = f32(1.2 / size)  # lid/iris edges about 0.6 pixel wide: sub-pixel motion changes intensities
    a = aperture[:, None, None].astype(f32)
    ew, eh = f32(sub["ew"]), f32(sub["eh"])
    cx, cy = cx.astype(f32), cy.astype(f32)
    prof_x = np.clip(1.0 - ((X - cx) / ew) ** 2, 0.0, 1.0).astype(f32)
    upper = cy + eh * prof_x * (f32(0.2) - a)
    lower = cy + eh * prof_x * (f32(0.2) + f32(0.35) * a)
    opening = _sig((Y - upper) / edge) * _sig((lower - Y) / edge) * (prof_x > 0)
    ix = cx + (gx[:, None, None] * ew * 0.45).astype(f32)
    iy = cy + eh * f32(0.05) + (gy[:, None, None] * eh * 0.45).astype(f32)
    dist = np.sqrt((X - ix) ** 2 + (Y - iy) ** 2)
    r_iris = f32(sub["r_iris"])
    r_pupil = r_iris * f32({"overexposure": 0.3, "low-light": 0.65, "HDR": 0.45}.get(lighting, 0.45))
    sclera, iris = f32(sub["sclera"]), f32(sub["iris"])
    interior = sclera - (sclera - iris) * _sig((r_iris - dist) / edge) - (iris - f32(0.04)) * _sig((r_pupil - dist) / edge)
    # Skin: tone, shading, a texture that stretches with the brow (first-order: texture + shift * d/dy),
    # the brow band, the lid crease and the lashes.
    brow_y0 = cy - eh * f32(0.8) - f32(sub["brow_gap"])
    b = brow[:, None, None].astype(f32)
    shift = f32(0.22) * b * np.clip((cy - Y) / np.maximum(cy - brow_y0, f32(1e-3)), 0.0, 1.2)
    freq, phase, tamp = sub["texture"]
    Xs, Ys = coords[None, :].astype(np.float64), coords[:, None].astype(np.float64)
    arg = [freq[i, 0] * Xs + freq[i, 1] * Ys + phase[i] for i in range(6)]
    texture = sum(tamp[i] * np.sin(arg[i]) for i in range(6)).astype(f32)
    texture_dy = sum(tamp[i] * freq[i, 1] * np.cos(arg[i]) for i in range(6)).astype(f32)
    skin = f32(sub["tone"]) * (1.0 - f32(0.12) * (X**2 + Y**2)) + texture + shift * texture_dy
    brow_y = brow_y0 - f32(0.22) * b + f32(0.18) * ((X - cx) / ew) ** 2
    brow_band = np.exp(-(((Y - brow_y) / f32(sub["brow_thick"])) ** 2)) * np.exp(-(((X - cx) / (f32(1.2) * ew)) ** 8))
    crease_y = upper - f32(0.1) - f32(0.25) * eh * a * prof_x
    crease = f32(0.18) * np.exp(-(((Y - crease_y) / (f32(1.5) * edge)) ** 2)) * prof_x
    lashes = f32(0.55) * np.exp(-(((Y - upper) / (f32(1.5) * edge)) ** 2)) * np.sqrt(prof_x)
    skin = skin * (1.0 - f32(sub["brow_dark"]) * brow_band) * (1.0 - crease)
    albedo = ((skin * (1.0 - opening) + interior * opening) * (1.0 - lashes)).astype(np.float64)

    gain, illumination = _lighting_field(lighting, _rng(cfg.seed, _LIGHT, subject, e_index, take), X, Y)
    flicker = 1.0 + r.normal(0, 0.01, (n_t, 1, 1))
    irradiance = np.clip(gain * illumination * albedo * flicker, 1e-4, None)

    # APS frames: exposure average over each frame interval, shot + read noise, clip, 8-bit.
    exposure = irradiance.reshape(cfg.frames, s, size, size).mean(axis=1)
    noisy = exposure + r.normal(0, 1, exposure.shape) * np.sqrt(0.004**2 + 1e-4 * exposure)
    frames = (np.rint(np.clip(noisy, 0.0, 1.0) * 255.0) / 255.0).astype(np.float32)

    on, off, events = _dvs_events(cfg, r, irradiance, lighting, dt)
    return SyntheticSequence(frames, on, off, events, emotion, lighting, subject)


def _dvs_events(cfg: SyntheticEyeConfig, r: np.random.Generator, irradiance: np.ndarray, lighting: str, dt: float):
    """Log-intensity change events of every pixel, counted per frame interval, plus the raw stream."""
    n_t, size, s = irradiance.shape[0], cfg.size, cfg.substeps
    photon_noise = 0.01 / math.sqrt(max(float(irradiance.mean()), 1e-3))  # relative: larger when darker
    log_i = np.log(irradiance * (1.0 + photon_noise * r.normal(0, 1, irradiance.shape)).clip(1e-4) + 0.004)
    theta = cfg.contrast_threshold * (1.0 + cfg.threshold_mismatch * r.normal(0, 1, (size, size)))
    theta = np.maximum(theta, 0.25 * cfg.contrast_threshold)
    background = {"low-light": 4e-3}.get(lighting, 1e-3)  # noise events per pixel per instant
    reference = log_i[0].copy()
    counts = np.zeros((2, n_t, size, size), dtype=np.int64)  # [ON/OFF, instant, y, x]
    for k in range(1, n_t):  # the reference level is state: one instant after the other
        diff = log_i[k] - reference
        n_on = np.floor(np.maximum(diff, 0.0) / theta)
        n_off = np.floor(np.maximum(-diff, 0.0) / theta)
        reference += (n_on - n_off) * theta
        counts[0, k], counts[1, k] = n_on, n_off
    noise = r.random((n_t, size, size)) < background
    noise[0] = False
    noise_on = noise & (r.random((n_t, size, size)) < 0.5)
    counts[0] += noise_on
    counts[1] += noise & ~noise_on
    per_frame = counts.reshape(2, cfg.frames, s, size, size).sum(axis=2)
    on, off = (np.minimum(c, 255).astype(np.uint8) for c in per_frame)
    # Raw stream: each count becomes events at its render instant (1 us apart within a pixel and instant).
    parts = []
    for polarity, pol_counts in ((1, counts[0]), (0, counts[1])):
        k, y, x = np.nonzero(pol_counts)
        reps = pol_counts[k, y, x]
        k, y, x = np.repeat(k, reps), np.repeat(y, reps), np.repeat(x, reps)
        offset = np.arange(k.size) - np.repeat(np.cumsum(reps) - reps, reps)
        ev = np.empty(k.size, EVENT_DTYPE)
        ev["t"] = np.rint(k * dt * 1e6).astype(np.int64) + offset
        ev["x"], ev["y"], ev["p"] = x, y, polarity
        parts.append(ev)
    events = np.concatenate(parts)
    events = events[np.lexsort((events["p"], events["x"], events["y"], events["t"]))]
    return on, off, events


def sequence_array(cfg: SyntheticEyeConfig, seq: SyntheticSequence) -> np.ndarray:
    """``[T, C, H, W]`` float32 channels of a rendered sequence, per ``cfg.channels``."""
    use_frames, use_events = parse_channels(cfg.channels)
    parts = [seq.frames[:, None]] if use_frames else []
    if use_events:
        cap = float(cfg.event_cap)
        parts += [np.minimum(seq.on, cfg.event_cap)[:, None] / cap, np.minimum(seq.off, cfg.event_cap)[:, None] / cap]
    return np.concatenate(parts, axis=1).astype(np.float32)


def channel_names(channels: str) -> tuple[str, ...]:
    use_frames, use_events = parse_channels(channels)
    return (("frame",) if use_frames else ()) + (("event_on", "event_off") if use_events else ())


def generate_dataset(cfg: SyntheticEyeConfig | None = None) -> EyeDataset:
    """The whole synthetic set as an :class:`EyeDataset`, subject-disjoint train/valid/test."""
    cfg = cfg or SyntheticEyeConfig()
    subjects = [f"{s + 1:03d}" for s in range(cfg.subjects)]
    split_of = subject_split(subjects, cfg.split_fractions, salt=f"synthetic-eye:{cfg.seed}:")
    arrays, labels, lighting, subj, names = [], [], [], [], []
    for s, sid in enumerate(subjects):
        for e, emotion in enumerate(SEE_CLASSES):
            for take in range(cfg.takes):
                seq = render_sequence(cfg, s, emotion, take)
                arrays.append(sequence_array(cfg, seq))
                labels.append(e)
                lighting.append(seq.lighting)
                subj.append(sid)
                # SEE's naming: [seq#]_[ID]_[sex]_[age]_[degree]_[lighting]_[emotion]_[length]_[take#]
                names.append(f"{len(names) + 1}_{sid}_x_0_synthetic_{seq.lighting}_{emotion}_{cfg.frames}_take{take:03d}")
    return EyeDataset(
        name="synthetic-eye", sequences=np.stack(arrays), labels=np.asarray(labels, dtype=np.int64),
        classes=SEE_CLASSES, channels=channel_names(cfg.channels), lighting=np.asarray(lighting),
        subjects=np.asarray(subj), splits=np.asarray([split_of[x] for x in subj]), names=tuple(names))
