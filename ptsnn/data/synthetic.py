"""A synthetic acted-emotion speech corpus: ptsnn's embedded default data set (nothing is downloaded).

Source-filter synthesis (see docs/data.md for the model and why it is a fair stand-in):
glottal pulse train on a time-varying F0 contour with jitter and shimmer -> glottal low-pass whose pole sets
the spectral tilt -> lip radiation -> aspiration noise (breathiness) -> a cascade of four formant resonators,
one vowel per syllable -> syllabic amplitude envelope, with fricative/stop noise onsets -> level, recording
gain and background noise.

Emotions move prosody and voice quality relative to each speaker's habitual voice (pitch level and range,
rate, effort, tilt, jitter/shimmer, breathiness, articulation, formants), with overlapping distributions;
speakers differ in sex, pitch, vocal-tract length and tempo; the same sentences (syllable/vowel sequences)
recur across speakers and emotions as in acted corpora. Every random draw comes from a generator seeded by
``(seed, what, speaker, label, index)``, so any subset of the corpus regenerates bit-identically.
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from ptsnn.data.audio import save_audio
from ptsnn.data.corpus import Utterance
from ptsnn.data.manifest import write_manifest
from ptsnn.errors import InputError
from ptsnn.fileio import atomic_write_text


def scipy_signal():
    """``scipy.signal``, imported on first use: it takes ~0.5 s, and ``ptsnn run`` imports this package."""
    import scipy.signal

    return scipy.signal

MANIFEST_NAME = "manifest.csv"
INFO_NAME = "corpus.json"
_REFERENCE_LEVEL_DB = -30.0  # typical RMS of speech recordings in dBFS, leaving headroom for peaks
# Peterson & Barney (1952) adult male formants F1..F4 (Hz) for five cardinal vowels.
VOWEL_FORMANTS = np.array(
    [[730, 1090, 2440, 3400],  # a
     [530, 1840, 2480, 3500],  # e
     [270, 2290, 3010, 3700],  # i
     [570, 840, 2410, 3400],  # o
     [300, 870, 2240, 3300]],  # u
    dtype=np.float64,
)
FORMANT_BANDWIDTHS = np.array([70.0, 100.0, 150.0, 220.0])
# Stream tags keep the generators of different kinds of draws independent of each other.
_SPEAKER, _SENTENCE, _UTTERANCE = 1, 2, 3


@dataclass(frozen=True)
class Gauss:
    """A normal distribution clipped to ``[low, high]``."""

    mean: float
    sd: float = 0.0
    low: float = -math.inf
    high: float = math.inf

    def sample(self, rng: np.random.Generator) -> float:
        value = rng.normal(self.mean, self.sd) if self.sd > 0 else self.mean
        return float(min(max(value, self.low), self.high))


@dataclass(frozen=True)
class EmotionProfile:
    """How one acted emotion moves the voice away from the speaker's habitual (neutral) voice."""

    f0_shift_st: Gauss  # mean pitch, semitones above the speaker's base pitch
    f0_range_st: Gauss  # spread of per-syllable pitch accents, semitones
    f0_slope_st: Gauss  # pitch change from start to end of the utterance (declination < 0)
    rate: Gauss  # multiplier of the speaker's syllable rate
    loudness_db: Gauss  # vocal effort, dB relative to neutral
    tilt: Gauss  # glottal low-pass pole in (0, 1): larger = steeper spectral tilt (darker, less effort)
    jitter: Gauss  # relative period-to-period F0 perturbation
    shimmer: Gauss  # relative period-to-period amplitude perturbation
    breathiness: Gauss  # aspiration noise relative to the voiced source
    articulation: Gauss  # syllable envelope exponent: < 1 abrupt, boxy; > 1 smooth, slurred
    formant_shift: Gauss  # relative formant shift (smiling raises formants, a lax sad voice lowers them)


def _p(mean: float, sd: float, low: float = -math.inf, high: float = math.inf) -> Gauss:
    return Gauss(mean, sd, low, high)


def default_profiles() -> dict[str, EmotionProfile]:
    """Acoustic profiles after Scherer (2003) and Juslin & Laukka (2003): hot anger and joy raise pitch,
    effort and rate (anger: tense, flat tilt, abrupt; joy: wide pitch range, rising); sadness lowers pitch,
    range, rate and effort and adds breathiness. Spreads are wide so that classes overlap."""
    return {
        "angry": EmotionProfile(
            f0_shift_st=_p(4.0, 1.8), f0_range_st=_p(2.6, 0.9, 0.3), f0_slope_st=_p(-2.0, 1.5),
            rate=_p(1.10, 0.08, 0.6),
            loudness_db=_p(4.5, 2.5), tilt=_p(0.60, 0.07, 0.3, 0.95), jitter=_p(0.014, 0.005, 0.0),
            shimmer=_p(0.09, 0.03, 0.0), breathiness=_p(0.04, 0.03, 0.0), articulation=_p(0.65, 0.18, 0.3),
            formant_shift=_p(0.03, 0.025)),
        "happy": EmotionProfile(
            f0_shift_st=_p(3.5, 1.8), f0_range_st=_p(3.6, 1.1, 0.3), f0_slope_st=_p(0.5, 1.8),
            rate=_p(1.06, 0.08, 0.6),
            loudness_db=_p(2.5, 2.5), tilt=_p(0.68, 0.07, 0.3, 0.95), jitter=_p(0.010, 0.004, 0.0),
            shimmer=_p(0.06, 0.025, 0.0), breathiness=_p(0.06, 0.03, 0.0), articulation=_p(0.90, 0.2, 0.3),
            formant_shift=_p(0.045, 0.025)),
        "neutral": EmotionProfile(
            f0_shift_st=_p(0.0, 1.5), f0_range_st=_p(1.8, 0.6, 0.3), f0_slope_st=_p(-2.5, 1.2),
            rate=_p(1.0, 0.07, 0.6),
            loudness_db=_p(0.0, 2.5), tilt=_p(0.75, 0.06, 0.3, 0.95), jitter=_p(0.008, 0.003, 0.0),
            shimmer=_p(0.05, 0.02, 0.0), breathiness=_p(0.06, 0.03, 0.0), articulation=_p(1.0, 0.2, 0.3),
            formant_shift=_p(0.0, 0.025)),
        "sad": EmotionProfile(
            f0_shift_st=_p(-1.2, 1.5), f0_range_st=_p(1.1, 0.5, 0.3), f0_slope_st=_p(-3.0, 1.2),
            rate=_p(0.84, 0.07, 0.5),
            loudness_db=_p(-3.5, 2.5), tilt=_p(0.83, 0.05, 0.3, 0.95), jitter=_p(0.012, 0.004, 0.0),
            shimmer=_p(0.07, 0.025, 0.0), breathiness=_p(0.14, 0.05, 0.0), articulation=_p(1.35, 0.25, 0.3),
            formant_shift=_p(-0.02, 0.025)),
    }


@dataclass(frozen=True)
class SyntheticCorpusConfig:
    """What to generate. Speakers alternate female (even index) and male (odd index)."""

    num_speakers: int = 8
    utterances_per_class: int = 12  # per speaker and class
    sample_rate: int = 16000
    classes: tuple[str, ...] = ("angry", "happy", "neutral", "sad")
    profiles: Mapping[str, EmotionProfile] = field(default_factory=default_profiles)
    seed: int = 0
    num_sentences: int = 10  # distinct "texts"; utterance i speaks sentence i % num_sentences
    min_duration: float = 1.0
    max_duration: float = 3.0
    gain_db: float = 6.0  # per-utterance recording gain, uniform in +-gain_db, so loudness alone is weak
    snr_db: tuple[float, float] = (30.0, 45.0)  # background noise range
    valid_speakers: tuple[int, ...] | None = None  # default: the second-to-last speaker
    test_speakers: tuple[int, ...] | None = None  # default: the last speaker

    def __post_init__(self) -> None:
        object.__setattr__(self, "classes", tuple(self.classes))
        if self.num_speakers < 1 or self.utterances_per_class < 1 or self.num_sentences < 1:
            raise InputError("synthetic corpus: num_speakers, utterances_per_class and num_sentences must be >= 1")
        if self.sample_rate < 8000:
            raise InputError(f"synthetic corpus: sample_rate {self.sample_rate} Hz is below 8000 Hz")
        if not self.classes or len(set(self.classes)) != len(self.classes):
            raise InputError(f"synthetic corpus: classes must be unique and non-empty, got {list(self.classes)}")
        missing = [c for c in self.classes if c not in self.profiles]
        if missing:
            raise InputError(f"synthetic corpus: no EmotionProfile for class(es) {missing}")
        if not 0.1 <= self.min_duration <= self.max_duration:
            raise InputError("synthetic corpus: need 0.1 <= min_duration <= max_duration")
        valid, test = self.split_speakers()
        if set(valid) & set(test) or not set(valid) | set(test) <= set(range(self.num_speakers)):
            raise InputError("synthetic corpus: valid/test speakers must be distinct indices < num_speakers")

    def split_speakers(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(valid speakers, test speakers); the rest train (6/1/1 for the default 8)."""
        n = self.num_speakers
        test = self.test_speakers if self.test_speakers is not None else ((n - 1,) if n >= 2 else ())
        valid = self.valid_speakers if self.valid_speakers is not None else ((n - 2,) if n >= 3 else ())
        return tuple(valid), tuple(test)

    def split_of(self, speaker: int) -> str:
        valid, test = self.split_speakers()
        return "test" if speaker in test else "valid" if speaker in valid else "train"


@dataclass(frozen=True)
class SpeakerVoice:
    """A speaker's habitual voice; emotions are applied relative to it."""

    speaker: int
    sex: str
    f0_hz: float
    formant_scale: float  # vocal-tract length: female ~ 1.17 x male formants
    syllable_rate: float  # syllables per second when neutral
    level_db: float
    tilt_offset: float
    breathiness: float
    jitter: float


@dataclass(frozen=True)
class SyntheticRecord:
    """One generated utterance with its labels (``fold``: leave-one-speaker-out fold, 1-based)."""

    utt_id: str
    speaker: str
    label: str
    index: int
    split: str
    fold: int
    sample_rate: int
    waveform: np.ndarray


def speaker_id(speaker: int) -> str:
    return f"spk{speaker:02d}"


def _rng(config: SyntheticCorpusConfig, *words: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([config.seed & 0xFFFFFFFF, *words]))


def _label_code(label: str) -> int:
    """Seeds depend on the label's name, not its position, so reordering classes changes no audio."""
    return zlib.crc32(label.encode("utf-8"))


def speaker_voice(config: SyntheticCorpusConfig, speaker: int) -> SpeakerVoice:
    rng = _rng(config, _SPEAKER, speaker)
    female = speaker % 2 == 0
    base = 210.0 if female else 115.0
    return SpeakerVoice(
        speaker=speaker,
        sex="female" if female else "male",
        f0_hz=base * 2 ** (rng.normal(0.0, 1.5) / 12),
        formant_scale=(1.17 if female else 1.0) * rng.normal(1.0, 0.03),
        syllable_rate=float(np.clip(rng.normal(4.6, 0.35), 3.5, 5.8)),
        level_db=rng.normal(0.0, 2.0),
        tilt_offset=rng.normal(0.0, 0.03),
        breathiness=abs(rng.normal(0.0, 0.02)),
        jitter=abs(rng.normal(0.0, 0.002)),
    )


@dataclass(frozen=True)
class _Sentence:
    vowels: np.ndarray  # vowel index per syllable
    onsets: np.ndarray  # 0: vowel onset, 1: fricative, 2: stop
    stressed: np.ndarray  # bool per syllable
    lengths: np.ndarray  # intrinsic relative syllable length


def _sentence(config: SyntheticCorpusConfig, sentence: int) -> _Sentence:
    rng = _rng(config, _SENTENCE, sentence)
    n = int(rng.integers(6, 12))
    stressed = np.zeros(n, dtype=bool)
    stressed[rng.choice(n, size=max(1, n // 3), replace=False)] = True
    return _Sentence(
        vowels=rng.integers(0, len(VOWEL_FORMANTS), size=n),
        onsets=rng.choice(3, size=n, p=[0.25, 0.45, 0.30]),
        stressed=stressed,
        lengths=np.exp(rng.normal(0.0, 0.2, size=n)) * np.where(stressed, 1.25, 1.0),
    )


@lru_cache(maxsize=8)
def _fricative_filter(sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    b, a = scipy_signal().butter(2, 2500.0 / (sample_rate / 2), btype="highpass")
    return b.astype(np.float32), a.astype(np.float32)


def _vocal_tract(formants: np.ndarray, bandwidths: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Cascade of Klatt (1980) two-pole resonators, unit gain at DC, as one filter (one lfilter call per
    syllable instead of four; float64 keeps the 8th-order direct form accurate)."""
    t = 1.0 / sample_rate
    b, a = np.ones(1), np.ones(1)
    for freq, bw in zip(formants, bandwidths):
        if freq >= 0.45 * sample_rate:  # resonances near Nyquist would alias; real ones are weak there
            continue
        c = -math.exp(-2 * math.pi * bw * t)
        k = 2 * math.exp(-math.pi * bw * t) * math.cos(2 * math.pi * freq * t)
        b = b * (1.0 - k - c)
        a = np.convolve(a, [1.0, -k, -c])
    return b, a


def generate_utterance(config: SyntheticCorpusConfig, speaker: int, label: str, index: int) -> np.ndarray:
    """Synthesise utterance ``index`` of ``speaker`` in emotion ``label`` (float32, mono, peak < 1)."""
    if label not in config.classes:
        raise InputError(f"synthetic corpus: unknown class {label!r} (classes: {list(config.classes)})")
    if not 0 <= speaker < config.num_speakers:
        raise InputError(f"synthetic corpus: speaker {speaker} outside 0..{config.num_speakers - 1}")
    fs = config.sample_rate
    voice = speaker_voice(config, speaker)
    text = _sentence(config, index % config.num_sentences)
    rng = _rng(config, _UTTERANCE, speaker, _label_code(label), index)
    prof = config.profiles[label]
    f0_shift, f0_range = prof.f0_shift_st.sample(rng), prof.f0_range_st.sample(rng)
    f0_slope = prof.f0_slope_st.sample(rng)
    rate = voice.syllable_rate * prof.rate.sample(rng)
    loudness = prof.loudness_db.sample(rng)
    tilt = float(np.clip(prof.tilt.sample(rng) + voice.tilt_offset, 0.3, 0.95))
    jitter = prof.jitter.sample(rng) + voice.jitter
    shimmer = prof.shimmer.sample(rng)
    breath = prof.breathiness.sample(rng) + voice.breathiness
    articulation = prof.articulation.sample(rng)
    formant_scale = voice.formant_scale * (1.0 + prof.formant_shift.sample(rng))

    # --- timing: syllables at the sampled rate; drop trailing syllables rather than speed up ---
    durations = text.lengths / rate * np.exp(rng.normal(0.0, 0.1, size=text.lengths.size))
    lead, tail = rng.uniform(0.08, 0.2, size=2)
    keep = int(np.searchsorted(np.cumsum(durations), config.max_duration - lead - tail, side="right"))
    keep = max(keep, 1)
    durations = durations[:keep]
    total = max(lead + durations.sum() + tail, config.min_duration)
    n = int(round(min(total, config.max_duration) * fs))
    bounds = np.round((lead + np.concatenate([[0.0], np.cumsum(durations)])) * fs).astype(int)
    bounds = np.minimum(bounds, n)

    # --- F0 contour: accents at syllable centres plus declination, on a 2 ms grid (it is smooth) ---
    hop = max(1, fs // 500)
    grid = np.arange(0, n, hop) / fs
    centres = (bounds[:-1] + bounds[1:]) / 2 / fs
    accents = f0_range * (0.8 * text.stressed[:keep] + 0.6 * rng.normal(size=keep))
    contour = np.interp(grid, centres, accents) + f0_slope * (grid / grid[-1] - 0.5)
    f0 = np.repeat(np.clip(voice.f0_hz * np.exp2((f0_shift + contour) / 12), 50.0, 600.0), hop)[:n]
    # jitter: one perturbation per glottal period
    periods = np.floor(np.cumsum(f0) / fs).astype(np.int64)
    f0 = f0 * (1.0 + jitter * rng.normal(size=periods[-1] + 1)[periods])
    phase = np.cumsum(f0) / fs
    pulse = np.flatnonzero(np.diff(np.floor(phase), prepend=0.0) > 0)
    excitation = np.zeros(n, dtype=np.float32)
    excitation[pulse] = np.clip(1.0 + shimmer * rng.normal(size=pulse.size), 0.1, None)
    # glottal flow (two-pole low-pass; the pole is the tilt) and lip radiation (first difference)
    # (one filter: (1-p)^2 (1 - z^-1) / (1 - p z^-1)^2)
    glottal_b = (1.0 - tilt) ** 2 * np.float32([1.0, -1.0])
    source = scipy_signal().lfilter(glottal_b, np.float32([1.0, -2 * tilt, tilt * tilt]), excitation)
    source /= np.sqrt(np.mean(source**2)) + 1e-12
    # aspiration noise, modulated at the glottal rate as in breathy phonation
    glottal_phase = (2 * np.pi * (phase % 1.0)).astype(np.float32)
    aspiration = rng.standard_normal(n, dtype=np.float32) * (0.6 + 0.4 * np.cos(glottal_phase))
    source += np.float32(breath * 3.0) * aspiration

    # --- per syllable: onset consonant (noise), then a vowel through the formant cascade ---
    voiced = np.zeros(n, dtype=np.float32)
    envelope = np.zeros(n, dtype=np.float32)
    consonant_env = np.zeros(n, dtype=np.float32)
    formants = VOWEL_FORMANTS * formant_scale
    for i in range(keep):
        start, stop = int(bounds[i]), int(bounds[i + 1])
        if stop - start < 8:
            continue
        onset = text.onsets[i]
        split = start + int((stop - start) * (0.0 if onset == 0 else 0.25 if onset == 1 else 0.15))
        if onset:
            length = split - start
            if onset == 1:  # fricative: steady hiss with soft edges
                arc = np.abs(np.sin(np.linspace(0, np.pi, length, dtype=np.float32)))
                consonant_env[start:split] = 0.25 * np.sqrt(arc)
            else:  # stop: closure silence, then a short burst
                burst = min(length, int(0.012 * fs))
                consonant_env[split - burst:split] = 0.5 * np.linspace(1.0, 0.2, burst, dtype=np.float32)
        b, a = _vocal_tract(formants[text.vowels[i]], FORMANT_BANDWIDTHS * (1.0 + breath), fs)
        voiced[split:stop] = scipy_signal().lfilter(b, a, source[split:stop])
        arc = np.abs(np.sin(np.linspace(0.0, np.pi, stop - split, dtype=np.float32)))
        stress = (1.4 if text.stressed[i] else 1.0) * math.exp(rng.normal(0.0, 0.15))
        envelope[split:stop] = stress * arc ** np.float32(articulation)
    hiss = np.zeros(n, dtype=np.float32)
    noisy = consonant_env > 0
    hiss[noisy] = rng.standard_normal(int(noisy.sum()), dtype=np.float32)
    b, a = _fricative_filter(fs)
    hiss = scipy_signal().lfilter(b, a, hiss)
    speech = voiced / (np.sqrt(np.mean(voiced[envelope > 0] ** 2)) + 1e-12) * envelope + hiss * consonant_env

    # --- level: effort + speaker + random recording gain; background noise; peak guard ---
    level_db = _REFERENCE_LEVEL_DB + loudness + voice.level_db + rng.uniform(-config.gain_db, config.gain_db)
    speech *= 10 ** (level_db / 20) / (np.sqrt(np.mean(speech**2)) + 1e-12)
    noise_db = level_db - rng.uniform(*config.snr_db)
    speech += rng.standard_normal(n, dtype=np.float32) * np.float32(10 ** (noise_db / 20))
    peak = np.max(np.abs(speech))
    if peak > 0.98:  # rare: loud effort + high gain; scale rather than clip
        speech *= 0.98 / peak
    return speech.astype(np.float32)


def iter_corpus(config: SyntheticCorpusConfig | None = None) -> Iterator[SyntheticRecord]:
    """Yield every utterance, speaker by speaker, class by class, index by index."""
    config = config or SyntheticCorpusConfig()
    for speaker in range(config.num_speakers):
        spk = speaker_id(speaker)
        for label in config.classes:
            for index in range(config.utterances_per_class):
                yield SyntheticRecord(
                    utt_id=f"{spk}_{label}_{index:03d}", speaker=spk, label=label, index=index,
                    split=config.split_of(speaker), fold=speaker + 1, sample_rate=config.sample_rate,
                    waveform=generate_utterance(config, speaker, label, index),
                )


def write_corpus(config: SyntheticCorpusConfig | None, out_dir: str | Path) -> Path:
    """Write ``wav/<speaker>/<utt_id>.wav`` (16-bit PCM), ``manifest.csv`` and ``corpus.json`` under
    ``out_dir``; return the manifest's path. The manifest is written last, so its presence means done."""
    config = config or SyntheticCorpusConfig()
    out = Path(out_dir)
    utterances = []
    for rec in iter_corpus(config):
        path = save_audio(out / "wav" / rec.speaker / f"{rec.utt_id}.wav", rec.waveform, rec.sample_rate)
        utterances.append(Utterance(path, rec.label, rec.speaker, rec.utt_id, rec.fold, rec.split))
    info = {"generator": "ptsnn.data.synthetic", "classes": list(config.classes),
            "config": _jsonable(asdict(config)),
            "speakers": {speaker_id(s): speaker_voice(config, s).sex for s in range(config.num_speakers)}}
    atomic_write_text(out / INFO_NAME, json.dumps(info, indent=2) + "\n")
    return write_manifest(out / MANIFEST_NAME, utterances)


def _jsonable(value: object) -> object:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value
