"""The synthetic acted-emotion corpus: determinism, real class differences, overlap, speaker-independent splits."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view
from scipy.signal import resample_poly

from ptsnn.data import load_audio, load_corpus
from ptsnn.data import synthetic
from ptsnn.data.audio import check_waveform
from ptsnn.data.synthetic import (
    SyntheticCorpusConfig,
    default_profiles,
    generate_utterance,
    iter_corpus,
    speaker_voice,
    write_corpus,
)
from ptsnn.errors import InputError

SR = 16000
CLASSES = ("angry", "happy", "neutral", "sad")


# ------------------------------------------------------------------------------------- measured features
def measure(x: np.ndarray, sr: int = SR) -> dict[str, float]:
    """Median F0 (semitones re 100 Hz) by frame autocorrelation, its spread, level, spectral centroid, length."""
    low, fs = resample_poly(x, 1, 4), sr // 4  # F0 < 600 Hz: 4 kHz is plenty
    n = int(0.04 * fs)
    frames = sliding_window_view(low, n)[:: n // 2] * np.hanning(n)
    ac = np.fft.irfft(np.abs(np.fft.rfft(frames, n=2 * n)) ** 2)[:, :n]
    lag = fs // 500 + np.argmax(ac[:, fs // 500: fs // 70], axis=1)
    voiced = (ac[np.arange(len(ac)), lag] > 0.5 * ac[:, 0]) & (ac[:, 0] > 0.1 * ac[:, 0].max())
    semitones = 12 * np.log2(fs / lag[voiced] / 100.0)
    power = np.abs(np.fft.rfft(x, n=1 << 16)) ** 2
    freqs = np.fft.rfftfreq(1 << 16, 1 / sr)
    return {
        "f0_st": float(np.median(semitones)),
        "f0_spread": float(np.std(semitones)),
        "centroid": float(np.log(np.sum(freqs * power) / np.sum(power))),
        "duration": x.size / sr,
        "rms_db": float(10 * np.log10(np.mean(x.astype(np.float64) ** 2))),
    }


@pytest.fixture(scope="module")
def small_corpus():
    config = SyntheticCorpusConfig(num_speakers=6, utterances_per_class=4)
    records = list(iter_corpus(config))
    feats = [measure(r.waveform) for r in records]
    names = list(feats[0])
    table = np.array([[f[k] for k in names] for f in feats])
    labels = np.array([CLASSES.index(r.label) for r in records])
    speakers = np.array([r.speaker for r in records])
    return config, records, names, table, labels, speakers


# ------------------------------------------------------------------------------------------ determinism
def test_same_seed_is_bit_identical_and_seed_matters():
    config = SyntheticCorpusConfig()
    a = generate_utterance(config, 3, "happy", 5)
    assert np.array_equal(a, generate_utterance(config, 3, "happy", 5))
    assert not np.array_equal(a, generate_utterance(replace(config, seed=1), 3, "happy", 5))
    assert not np.array_equal(a, generate_utterance(config, 3, "happy", 6))
    assert not np.array_equal(a, generate_utterance(config, 2, "happy", 5))


def test_subsets_and_class_order_do_not_change_the_audio():
    full = SyntheticCorpusConfig()
    subset = SyntheticCorpusConfig(num_speakers=2, utterances_per_class=2, classes=("sad", "angry"))
    for rec in iter_corpus(subset):
        assert np.array_equal(rec.waveform, generate_utterance(full, int(rec.speaker[3:]), rec.label, rec.index))
    assert [r.utt_id for r in iter_corpus(subset)][:3] == ["spk00_sad_000", "spk00_sad_001", "spk00_angry_000"]


def test_utterances_are_valid_speech_like_audio(small_corpus):
    config, records, *_ = small_corpus
    for rec in records:
        x = rec.waveform
        assert x.dtype == np.float32 and x.ndim == 1 and rec.sample_rate == SR
        assert config.min_duration <= x.size / SR <= config.max_duration
        assert 0.01 < np.abs(x).max() < 1.0
        np.testing.assert_array_equal(check_waveform(x, SR, rec.utt_id), x)  # passes the audio policy
    durations = {round(r.waveform.size / SR, 2) for r in records}
    assert len(durations) > len(records) // 2  # lengths vary


def test_speakers_differ_in_sex_and_pitch():
    config = SyntheticCorpusConfig()
    voices = [speaker_voice(config, s) for s in range(config.num_speakers)]
    assert [v.sex for v in voices[:4]] == ["female", "male", "female", "male"]
    assert min(v.f0_hz for v in voices if v.sex == "female") > max(v.f0_hz for v in voices if v.sex == "male")
    assert len({round(v.syllable_rate, 3) for v in voices}) == len(voices)


# ----------------------------------------------------------------------------------- class differences
def class_means(table, labels, mask, column):
    return [table[mask & (labels == k), column].mean() for k in range(len(CLASSES))]


def test_emotions_differ_as_acted_emotions_do(small_corpus):
    _config, _records, names, table, labels, speakers = small_corpus
    col = {n: i for i, n in enumerate(names)}
    relative = table.copy()  # relative to each speaker's own mean: speakers differ more than emotions
    for speaker in np.unique(speakers):
        mine = speakers == speaker
        relative[mine] -= table[mine].mean(0)
        angry, _, _, sad = class_means(table, labels, mine, col["f0_st"])
        assert angry > sad + 2.0  # in every speaker, anger is higher pitched than sadness (semitones)
        angry_c, _, _, sad_c = class_means(table, labels, mine, col["centroid"])
        assert angry_c > sad_c  # and has a flatter spectral tilt
    everyone = np.ones_like(labels, dtype=bool)
    angry, happy, neutral, sad = class_means(relative, labels, everyone, col["f0_st"])
    assert min(angry, happy) > neutral + 2.0 and neutral > sad  # aroused emotions raise pitch
    angry_db, _, neutral_db, sad_db = class_means(table, labels, everyone, col["rms_db"])
    assert angry_db > neutral_db > sad_db and angry_db - sad_db > 4.0  # vocal effort
    angry_s, _, neutral_s, sad_s = class_means(table, labels, everyone, col["duration"])
    assert sad_s > neutral_s > angry_s  # the same sentences, spoken more slowly when sad


def nearest_centroid_accuracy(train_x, train_y, test_x, test_y) -> float:
    mu, sd = train_x.mean(0), train_x.std(0) + 1e-9
    centroids = np.array([((train_x[train_y == k] - mu) / sd).mean(0) for k in range(len(CLASSES))])
    dist = ((((test_x - mu) / sd)[:, None, :] - centroids[None]) ** 2).sum(-1)
    return float((dist.argmin(1) == test_y).mean())


def test_learnable_across_speakers_but_not_from_loudness_alone(small_corpus):
    _config, _records, names, table, labels, speakers = small_corpus
    normalised = table.copy()
    for speaker in np.unique(speakers):  # per-speaker mean removal, as SER systems do
        normalised[speakers == speaker] -= table[speakers == speaker].mean(0)
    train = np.isin(speakers, ["spk00", "spk01", "spk02", "spk03"])
    prosody = [names.index(n) for n in ("f0_st", "f0_spread", "centroid", "duration")]
    loudness = [names.index("rms_db")]
    acc_prosody = nearest_centroid_accuracy(normalised[train][:, prosody], labels[train],
                                            normalised[~train][:, prosody], labels[~train])
    acc_loudness = nearest_centroid_accuracy(table[train][:, loudness], labels[train],
                                             table[~train][:, loudness], labels[~train])
    assert acc_prosody >= 0.5  # chance is 0.25: the emotion is in the signal, for unseen speakers
    assert acc_loudness <= 0.45  # random recording gain: level alone does not solve it
    acc_raw_f0 = nearest_centroid_accuracy(table[train][:, [0]], labels[train], table[~train][:, [0]], labels[~train])
    assert acc_raw_f0 <= 0.45  # nor does raw pitch, without knowing the speaker


# --------------------------------------------------------------------------------------------- protocol
def test_default_split_is_six_one_one_by_speaker():
    config = SyntheticCorpusConfig()
    assert config.split_speakers() == ((6,), (7,))
    assert [config.split_of(s) for s in range(8)] == ["train"] * 6 + ["valid", "test"]


def test_write_corpus_round_trips_through_the_manifest_loader(tmp_path):
    config = SyntheticCorpusConfig(num_speakers=4, utterances_per_class=2, classes=("sad", "angry", "neutral"))
    manifest = write_corpus(config, tmp_path / "syn")
    assert manifest == tmp_path / "syn" / "manifest.csv"
    assert json.loads((tmp_path / "syn" / "corpus.json").read_text())["classes"] == ["sad", "angry", "neutral"]
    corpus = load_corpus("synthetic", tmp_path / "syn")
    assert corpus.classes == ("sad", "angry", "neutral")  # configured order survives the round trip
    assert len(corpus) == 4 * 3 * 2 and corpus.speakers == ("spk00", "spk01", "spk02", "spk03")
    train, valid, test = corpus.split()
    assert {u.speaker for u in train} == {"spk00", "spk01"}
    assert {u.speaker for u in valid} == {"spk02"} and {u.speaker for u in test} == {"spk03"}
    assert corpus.folds() == [1, 2, 3, 4]
    for fold in corpus.folds():
        tr, va, te = corpus.split(fold)
        assert {u.speaker for u in te} == {f"spk{fold - 1:02d}"}
        train_speakers = {u.speaker for u in tr}
        assert not (train_speakers & {u.speaker for u in va} or train_speakers & {u.speaker for u in te})
    by_id = {u.utt_id: u for u in corpus.utterances}
    u = by_id["spk01_angry_001"]
    assert u.label == "angry" and u.path == tmp_path / "syn" / "wav" / "spk01" / "spk01_angry_001.wav"
    np.testing.assert_allclose(load_audio(u.path), generate_utterance(config, 1, "angry", 1), atol=1.0 / 32767)
    assert not list((tmp_path / "syn").rglob("*.tmp"))


def test_load_synthetic_generates_into_an_empty_folder_only(tmp_path, monkeypatch):
    small = SyntheticCorpusConfig(num_speakers=3, utterances_per_class=1)
    monkeypatch.setattr(synthetic, "SyntheticCorpusConfig", lambda: small)
    corpus = load_corpus("synthetic", tmp_path / "new")
    assert len(corpus) == 12 and corpus.classes == CLASSES
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not a synthetic corpus"):
        load_corpus("synthetic", tmp_path / "other")


@pytest.mark.parametrize("kwargs, match", [
    ({"classes": ("angry", "bored")}, "no EmotionProfile for class"),
    ({"classes": ("sad", "sad")}, "unique"),
    ({"num_speakers": 3, "test_speakers": (5,)}, "valid/test speakers"),
    ({"valid_speakers": (7,), "test_speakers": (7,)}, "valid/test speakers"),
    ({"sample_rate": 4000}, "below 8000"),
    ({"min_duration": 3.0, "max_duration": 2.0}, "min_duration"),
])
def test_config_errors(kwargs, match):
    with pytest.raises(InputError, match=match):
        SyntheticCorpusConfig(**kwargs)


def test_custom_classes_and_profiles():
    profiles = default_profiles()
    profiles["calm"] = profiles["sad"]
    config = SyntheticCorpusConfig(classes=("calm", "angry"), profiles=profiles)
    assert np.array_equal(generate_utterance(config, 0, "angry", 0),
                          generate_utterance(SyntheticCorpusConfig(), 0, "angry", 0))
    assert not np.array_equal(generate_utterance(config, 0, "calm", 0), generate_utterance(config, 0, "angry", 0))
    with pytest.raises(InputError, match="unknown class 'sad'"):
        generate_utterance(config, 0, "sad", 0)
