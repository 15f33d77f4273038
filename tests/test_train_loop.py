"""Datasets, collate/crop, the training loop (float + QAT, early stopping, rate warnings, folds) and the CLI.

Most tests train a tiny PTS-SNN on in-memory features with a class-dependent pattern (learnable in a few
epochs); one runs the real data path: synthetic audio -> fbank -> feature cache -> training via the CLI."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from rich.console import Console

from ptsnn.data.corpus import Corpus, Utterance
from ptsnn.errors import InputError
from ptsnn.train.checkpoint import load_model
from ptsnn.train.config import load_config
from ptsnn.train.dataset import Collate, FeatureDataset, crop_start, init_batch
from ptsnn.train.trainer import evaluate, rate_problems, train, train_folds

CLASSES = ("angry", "happy", "sad")
TINY = ["model.hidden=16", "model.blocks=1", "model.key_dim=8", "model.value_dim=8", "model.prompts=2",
        "model.input_dim=12", "train.batch_size=8", "train.max_frames=40", "train.lr=0.01", "train.epochs=4",
        "train.qat_epochs=1", "train.patience=10", "train.qat_lr=0.002"]


def make_corpus(per_class: int = 4, speakers: int = 4, dim: int = 12, seed: int = 0, signal: float = 1.0):
    """Speakers 0..n-3 train, n-2 valid, n-1 test (also leave-one-speaker-out folds 1..n); each class adds a
    fixed pattern to every frame of unit noise."""
    rng = np.random.default_rng(seed)
    patterns = rng.normal(size=(len(CLASSES), dim))
    utts, feats = [], {}
    for s in range(speakers):
        split = "test" if s == speakers - 1 else "valid" if s == speakers - 2 else "train"
        for c, label in enumerate(CLASSES):
            for i in range(per_class):
                uid = f"s{s}_{label}_{i}"
                utts.append(Utterance(Path(f"/nonexistent/{uid}.wav"), label, f"spk{s}", uid, s + 1, split))
                frames = int(rng.integers(20, 70))
                feats[uid] = (signal * patterns[c] + rng.normal(size=(frames, dim))).astype(np.float32)
    return Corpus("toy", Path("/nonexistent"), tuple(utts), CLASSES), feats


def quiet() -> Console:
    return Console(file=io.StringIO(), width=200)


# ------------------------------------------------------------------------------------------ dataset
def test_dataset_labels_follow_the_corpus_label_map():
    corpus, feats = make_corpus()
    train_utts, _, _ = corpus.split()
    ds = FeatureDataset.from_split(corpus, train_utts, feats)
    assert len(ds) == len(train_utts)
    for i, u in enumerate(train_utts):
        x, y, idx = ds[i]
        assert y == CLASSES.index(u.label) and idx == i
        assert torch.equal(x, torch.from_numpy(feats[u.utt_id]))
    with pytest.raises(InputError, match="no features"):
        FeatureDataset.from_split(corpus, train_utts, {})
    bad = dict(feats)
    bad[train_utts[3].utt_id] = np.zeros((10, 5), np.float32)
    with pytest.raises(InputError, match="feature dim 5 differs"):
        FeatureDataset.from_split(corpus, train_utts, bad)


def test_collate_pads_and_reports_lengths():
    xs = [torch.ones(5, 3), 2 * torch.ones(9, 3), 3 * torch.ones(2, 3)]
    b = Collate(train=False)([(x, k, k) for k, x in enumerate(xs)])
    assert b.features.shape == (3, 9, 3)
    assert b.lengths.tolist() == [5, 9, 2]
    assert b.labels.tolist() == [0, 1, 2]
    assert torch.all(b.features[0, 5:] == 0) and torch.all(b.features[0, :5] == 1)
    assert torch.all(b.features[2, :2] == 3) and torch.all(b.features[2, 2:] == 0)


def test_training_crop_is_seeded_and_eval_keeps_everything():
    x = torch.arange(100, dtype=torch.float32)[:, None].repeat(1, 2)
    short = torch.ones(7, 2)
    train_c = Collate(max_frames=30, train=True, seed=5)
    b1 = train_c([(x, 0, 3), (short, 1, 4)])
    assert b1.features.shape == (2, 30, 2) and b1.lengths.tolist() == [30, 7]
    start = int(b1.features[0, 0, 0])
    assert start == crop_start(100, 30, 5, 0, 3)
    assert torch.equal(b1.features[0, :, 0], torch.arange(start, start + 30, dtype=torch.float32))  # contiguous
    assert torch.equal(train_c([(x, 0, 3), (short, 1, 4)]).features, b1.features)  # same epoch: same window
    starts = {crop_start(100, 30, 5, e, 3) for e in range(20)}
    assert len(starts) > 5 and all(0 <= s <= 70 for s in starts)  # new windows across epochs, in range
    assert crop_start(100, 30, 6, 0, 3) != start or crop_start(100, 30, 6, 1, 3) != crop_start(100, 30, 5, 1, 3)
    full = Collate(max_frames=30, train=False)([(x, 0, 3)])
    assert full.lengths.tolist() == [100]  # evaluation: full length


def test_init_batch_is_deterministic():
    corpus, feats = make_corpus()
    ds = FeatureDataset.from_split(corpus, corpus.split()[0], feats)
    a, b = init_batch(ds, 8, 40, seed=3), init_batch(ds, 8, 40, seed=3)
    assert torch.equal(a.features, b.features) and a.features.shape[0] == 8 and a.features.shape[1] <= 40


# ------------------------------------------------------------------------------------------ training
@pytest.fixture(scope="module")
def qat_run(tmp_path_factory):
    corpus, feats = make_corpus()
    out = tmp_path_factory.mktemp("run")
    cfg = load_config("small", TINY)
    return train(cfg, corpus, out, qat=True, features=feats, progress=False, console=quiet()), corpus, feats


def test_float_then_qat_learns_and_writes_checkpoints(qat_run):
    result, corpus, feats = qat_run
    floats = [h for h in result.history if h.phase == "float"]
    qats = [h for h in result.history if h.phase == "qat"]
    assert [h.epoch for h in floats] == [1, 2, 3, 4]
    assert [h.epoch for h in qats] == [0, 1]  # 0: post-training quantization, then fine-tuning
    assert floats[-1].train_loss < floats[0].train_loss
    assert result.chance["test"] == {"wa": pytest.approx(1 / 3), "ua": pytest.approx(1 / 3)}
    # the patterns are easy: far above chance on held-out speakers, also after quantization
    assert result.float_valid.ua >= 0.8 and result.float_test.ua >= 0.7
    assert result.qat_test.ua >= 0.6
    best = max(floats, key=lambda h: h.valid["ua"])
    assert result.float_valid.ua == pytest.approx(best.valid["ua"])
    assert set(floats[0].rates) >= {"in_proj", "enc.0", "key", "score", "value", "context", "cal.0"}
    assert all(0 <= r <= 1 for r in floats[0].rates.values())

    fmodel, fck = load_model(result.checkpoints["float"])
    qmodel, qck = load_model(result.checkpoints["qat"])
    assert not fmodel.quantized and qmodel.quantized and qck.quantized
    assert fck.label_map == corpus.label_map and fck.metrics["epoch"] == result.best_epoch
    assert fck.config.model.input_dim == 12 and fck.config.model.num_classes == 3
    # the saved checkpoints reproduce the reported test metrics
    test_ds = FeatureDataset.from_split(corpus, corpus.split()[2], feats)
    m, _ = evaluate(qmodel, test_ds, CLASSES, 8)
    assert m.to_dict() == result.qat_test.to_dict() == qck.metrics["test"]
    m, _ = evaluate(fmodel, test_ds, CLASSES, 8)
    assert m.to_dict() == result.float_test.to_dict()

    saved = json.loads((result.out_dir / "metrics.json").read_text())
    assert len(saved["history"]) == 6 and saved["float"]["test"]["ua"] == pytest.approx(result.float_test.ua)


def test_score_temperature_fitted_on_validation_and_stored(qat_run):
    """Each kept model's temperature is the NLL minimiser on its own validation logits, it is stored in the
    checkpoint and reported (with ECE before/after) in metrics.json."""
    from ptsnn.train.calibration import nll
    from ptsnn.train.trainer import collect_logits

    result, corpus, feats = qat_run
    valid_ds = FeatureDataset.from_split(corpus, corpus.split()[1], feats)
    saved = json.loads((result.out_dir / "metrics.json").read_text())
    for phase in ("float", "qat"):
        model, ck = load_model(result.checkpoints[phase])
        cal = ck.calibration
        assert ck.temperature == cal["temperature"] == pytest.approx(saved["calibration"][phase]["temperature"])
        logits, labels = collect_logits(model, valid_ds, 8)
        assert len(labels) == cal["count"] == len(valid_ds)
        assert cal["nll_after"] == pytest.approx(nll(logits, labels, ck.temperature))
        assert cal["nll_after"] <= cal["nll_before"] == pytest.approx(nll(logits, labels, 1.0))
        from ptsnn.train.calibration import T_MAX, T_MIN

        for t in (0.8 * ck.temperature, 1.25 * ck.temperature):  # a minimum within the bounds, not just better
            if T_MIN <= t <= T_MAX:
                assert nll(logits, labels, t) >= cal["nll_after"] - 1e-9
        assert 0 <= cal["ece_after"] <= 1 and 0 <= cal["ece_before"] <= 1 and cal["bins"] == 15


def test_same_seed_same_run(tmp_path):
    corpus, feats = make_corpus()
    cfg = load_config("small", TINY + ["train.epochs=2"])
    a = train(cfg, corpus, tmp_path / "a", features=feats, progress=False, console=quiet())
    b = train(cfg, corpus, tmp_path / "b", features=feats, progress=False, console=quiet())
    assert [h.train_loss for h in a.history] == [h.train_loss for h in b.history]
    c = train(load_config("small", TINY + ["train.epochs=1", "train.seed=7"]), corpus, tmp_path / "c",
              features=feats, progress=False, console=quiet())
    assert c.history[0].train_loss != a.history[0].train_loss


def test_early_stopping_on_validation_ua(tmp_path):
    corpus, feats = make_corpus()
    # lr 0: nothing changes, UA never improves after epoch 1 -> stop after 1 + patience epochs
    cfg = load_config("small", TINY + ["train.lr=0.0", "train.epochs=6", "train.patience=2"])
    r = train(cfg, corpus, tmp_path, features=feats, progress=False, console=quiet())
    assert [h.epoch for h in r.history] == [1, 2, 3]
    assert r.best_epoch == 1 and [h.best for h in r.history] == [True, False, False]
    assert not (tmp_path / "qat.pt").exists() and (tmp_path / "float.pt").exists()


def test_silent_layers_are_warned_about(tmp_path):
    corpus, feats = make_corpus()
    cfg = load_config("small", TINY + ["train.epochs=1", "model.threshold=1e9"])
    buf = io.StringIO()
    r = train(cfg, corpus, tmp_path, features=feats, progress=False, console=Console(file=buf, width=200))
    assert any("in_proj nearly silent" in w for w in r.warnings)
    assert "warning:" in buf.getvalue() and "nearly silent" in buf.getvalue()


def test_rate_problems_thresholds():
    probs = rate_problems({"a": 0.0005, "b": 0.05, "c": 0.95})
    assert len(probs) == 2 and probs[0].startswith("a nearly silent") and probs[1].startswith("c saturated")


def test_num_classes_follow_the_corpus(tmp_path):
    corpus, feats = make_corpus()
    cfg = load_config("small", TINY + ["train.epochs=1", "model.num_classes=7"])
    r = train(cfg, corpus, tmp_path, features=feats, progress=False, console=quiet())
    assert r.config["model"]["num_classes"] == 3


def test_empty_validation_split_is_an_input_error(tmp_path):
    corpus, feats = make_corpus()
    no_valid = Corpus("toy", corpus.root, tuple(u for u in corpus.utterances if u.split != "valid"), CLASSES)
    with pytest.raises(InputError, match="no validation utterances"):
        train(load_config("small", TINY), no_valid, tmp_path, features=feats, progress=False, console=quiet())


def test_folds_train_and_average(tmp_path):
    corpus, feats = make_corpus(per_class=5)  # 4 speakers < 6: validation is a 10 % utterance slice
    cfg = load_config("small", TINY + ["train.epochs=1"])
    from ptsnn.train import trainer

    class FixedFeatures:  # a front end stand-in: train_folds extracts through prepare_features
        spec = {"kind": "toy"}

    orig = trainer.prepare_features
    trainer.prepare_features = lambda *a, **k: feats
    try:
        cv = train_folds(cfg, corpus, tmp_path, folds=[1, 4], frontend=FixedFeatures(), progress=False,
                         console=quiet())
    finally:
        trainer.prepare_features = orig
    assert [r.fold for r in cv.folds] == [1, 4]
    assert (tmp_path / "fold1" / "float.pt").exists() and (tmp_path / "fold4" / "metrics.json").exists()
    test_uas = [r.float_test.ua for r in cv.folds]
    assert cv.mean["float_test"]["ua"] == pytest.approx(np.mean(test_uas))
    assert cv.std["float_test"]["ua"] == pytest.approx(np.std(test_uas))
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["mean"]["float_test"]["ua"] == pytest.approx(cv.mean["float_test"]["ua"])
    # fold k tests speaker k
    assert {u.speaker for u in corpus.split(4)[2]} == {"spk3"}


# ------------------------------------------------------------------------------------------ real data + CLI
def test_cli_trains_on_synthetic_audio(tmp_path):
    from typer.testing import CliRunner

    from ptsnn.cli.main import app
    from ptsnn.data.synthetic import SyntheticCorpusConfig, write_corpus

    syn = tmp_path / "syn"
    write_corpus(SyntheticCorpusConfig(num_speakers=3, utterances_per_class=2, min_duration=0.5, max_duration=0.8,
                                       classes=("angry", "sad")), syn)
    out = tmp_path / "out"
    args = ["train", "--out", str(out), "--data", str(syn), "--corpus", "synthetic", "--cache-dir",
            str(tmp_path / "cache"), "--epochs", "1", "--seed", "3", "-q", "--set", "frontend.n_mels=12"]
    for item in TINY[:-3]:
        args += ["--set", item]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "summary" in res.output and "chance" in res.output
    model, ck = load_model(out / "float.pt")
    assert ck.frontend["kind"] == "fbank" and ck.frontend["n_mels"] == 12
    assert ck.config.train.seed == 3 and ck.config.model.num_classes == 2
    assert list((tmp_path / "cache").rglob("*.npy"))  # features went through the cache
    # a second run reuses the cache (no new entries)
    before = sorted(p.name for p in (tmp_path / "cache").rglob("*.npy"))
    res = CliRunner().invoke(app, args + ["--out", str(tmp_path / "out2")])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (tmp_path / "cache").rglob("*.npy")) == before


def test_cli_errors_are_one_line(tmp_path):
    from typer.testing import CliRunner

    from ptsnn.cli.main import app

    res = CliRunner().invoke(app, ["train", "--out", str(tmp_path), "--set", "train.nope=1"])
    assert res.exit_code != 0 and isinstance(res.exception, InputError)
    assert "unknown field" in str(res.exception) and "\n" not in str(res.exception)
    res = CliRunner().invoke(app, ["train", "--out", str(tmp_path), "--fold", "1", "--all-folds"])
    assert isinstance(res.exception, InputError)


def test_model_summary_paper_states_target():
    from typer.testing import CliRunner

    from ptsnn.cli.main import app

    res = CliRunner().invoke(app, ["model", "summary", "--config", "paper"])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "1,191,676" in text and "1.19 M" in text and "+0.14 %" in text
    for module in ("in_proj", "enc.0", "cal.0", "readout", "total"):
        assert module in text
    res = CliRunner().invoke(app, ["model", "summary", "--config", "small", "--set", "model.hidden=64"])
    assert res.exit_code == 0 and "paper target" not in res.output


# ------------------------------------------------------------------------------------- --valid-split
def test_valid_split_choices_let_a_small_corpus_train(tmp_path):
    from ptsnn.train.config import parse_valid_split

    corpus, feats = make_corpus(per_class=2)  # 2 files per (speaker, label): the protocol's slice is empty
    assert corpus.split(1)[1] == []
    with pytest.raises(InputError, match="no validation utterances.*--valid-split fraction:0.1"):
        train(load_config("small", TINY), corpus, tmp_path / "auto", fold=1, features=feats, progress=False,
              console=quiet())

    # fraction: a stratified share, never empty, every class still trains; seeded and deterministic
    train_utts, valid_utts, test_utts = corpus.split(1, valid_by="fraction", valid_fraction=0.1, seed=0)
    assert len(valid_utts) == 2 and {u.label for u in train_utts} == set(CLASSES)
    assert corpus.split(1, valid_by="fraction", valid_fraction=0.1, seed=0)[1] == valid_utts
    assert {u.speaker for u in test_utts} == {"spk0"} and not {u.utt_id for u in valid_utts} & {u.utt_id for u in train_utts}
    other_seeds = {tuple(u.utt_id for u in corpus.split(1, valid_by="fraction", valid_fraction=0.1, seed=s)[1])
                   for s in range(1, 6)}
    assert len(other_seeds | {tuple(u.utt_id for u in valid_utts)}) > 1  # the seed picks the utterances
    r = train(load_config("small", TINY + ["train.epochs=1", "train.valid_split=fraction:0.1"]), corpus,
              tmp_path / "frac", fold=1, features=feats, progress=False, console=quiet())
    assert r.float_valid is not None and r.float_valid.count == 2

    # none: no validation, early stopping on the training loss, test still measured, QAT keeps its last epoch
    cfg = load_config("small", TINY + ["train.epochs=3", "train.valid_split=none"])
    r = train(cfg, corpus, tmp_path / "none", fold=1, qat=True, features=feats, progress=False, console=quiet())
    losses = [h.train_loss for h in r.history if h.phase == "float"]
    assert r.best_epoch == 1 + int(np.argmin(losses)) and all(h.valid is None for h in r.history)
    assert r.float_valid is None and r.float_test is not None and r.best_qat_epoch == 1
    saved = json.loads((tmp_path / "none" / "metrics.json").read_text())
    assert saved["float"]["valid"] is None and saved["float"]["test"]["ua"] is not None
    assert saved["config"]["train"]["valid_split"] == "none"
    model, _ = load_model(tmp_path / "none" / "qat.pt")
    assert model.quantized

    assert parse_valid_split("fraction:0.25") == ("fraction", 0.25) and parse_valid_split("Speaker")[0] == "speaker"
    for bad in ("fraction:1.5", "fraction:x", "half"):
        with pytest.raises(InputError, match="valid split"):
            load_config("small", [f"train.valid_split={bad}"])


def test_valid_split_on_a_fixed_split_without_valid_utterances(tmp_path):
    corpus, feats = make_corpus()
    no_valid = Corpus("toy", corpus.root, tuple(u for u in corpus.utterances if u.split != "valid"), CLASSES)
    train_utts, valid_utts, _ = no_valid.split(valid_by="speaker")
    assert {u.speaker for u in valid_utts} and len({u.speaker for u in valid_utts}) == 1
    assert not {u.speaker for u in valid_utts} & {u.speaker for u in train_utts}
    train_utts, valid_utts, _ = no_valid.split(valid_by="none")
    assert valid_utts == [] and len(train_utts) == len([u for u in no_valid.utterances if u.split == "train"])


def test_same_seed_gives_byte_identical_checkpoints(tmp_path):
    """Two seeded runs (float + QAT) write the same checkpoint bytes; metrics.json differs only in timings and
    in the paths of the two output folders."""
    corpus, feats = make_corpus()
    for name in ("a", "b"):
        train(load_config("small", TINY + ["train.epochs=2"]), corpus, tmp_path / name, qat=True, features=feats,
              progress=False, console=quiet())
    for ckpt in ("float.pt", "qat.pt"):
        assert (tmp_path / "a" / ckpt).read_bytes() == (tmp_path / "b" / ckpt).read_bytes(), ckpt

    def untimed(v, run: str):
        if isinstance(v, dict):
            return {k: untimed(x, run) for k, x in v.items() if k != "seconds"}
        if isinstance(v, str):
            return v.replace(str(tmp_path / run), "<out>")
        return [untimed(x, run) for x in v] if isinstance(v, list) else v

    a, b = (untimed(json.loads((tmp_path / n / "metrics.json").read_text()), n) for n in "ab")
    assert a == b
