"""`ptsnn run` for scripts: folders, manifests, JSON Lines / CSV with error rows, exit codes, batches, the
backend registry, and calibrated scores (temperature fitted at training time, carried into the bundle)."""

from __future__ import annotations

import csv
import io
import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pytest

from ptsnn.data.audio import save_audio
from ptsnn.data.synthetic import SyntheticCorpusConfig, generate_utterance
from ptsnn.deploy import backends
from ptsnn.deploy.batch import run_items
from ptsnn.deploy.bundle_io import HostRunner, load_bundle, load_input
from ptsnn.deploy.inputs import expand_paths
from ptsnn.deploy.run import classify, score_temperature
from ptsnn.errors import InputError
from ptsnn.testing import synthetic_bundle
from ptsnn.train.calibration import expected_calibration_error, fit_temperature, nll, softmax

TINY = ["model.hidden=32", "model.key_dim=12", "model.value_dim=6", "model.prompts=2"]
TEMPERATURE = 0.37


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """An untrained bundle without a temperature (as from an older checkpoint), the same checkpoint saved with a
    fitted temperature and converted again, and a folder tree: good files nested, one corrupt wav, one text
    file and a hidden file (both ignored)."""
    from ptsnn.convert.bundle import convert_checkpoint
    from ptsnn.hw_profiles import load_profile
    from ptsnn.train.checkpoint import load_model, save_checkpoint

    root = tmp_path_factory.mktemp("scripted")
    synthetic_bundle(root, TINY, max_samples=12000)
    model, ck = load_model(root / "m.pt")
    save_checkpoint(root / "cal.pt", model, ck.config, ck.label_map, ck.frontend,
                    calibration=dict(temperature=TEMPERATURE, fitted_on="valid", count=10))
    convert_checkpoint(root / "cal.pt", load_profile("loihi2"), root / "cal_bundle", emit=("onnx",))
    sc = SyntheticCorpusConfig()
    audio = root / "audio"
    (audio / "deeper" / "deepest").mkdir(parents=True)
    save_audio(audio / "a.wav", generate_utterance(sc, 7, "sad", 1)[:9600], 16000)
    save_audio(audio / "deeper" / "b.flac", generate_utterance(sc, 6, "angry", 1)[:11200], 16000)
    save_audio(audio / "deeper" / "deepest" / "c.wav", generate_utterance(sc, 5, "happy", 2)[:8000], 16000)
    (audio / "deeper" / "broken.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt garbage")
    (audio / "notes.txt").write_text("not audio")
    save_audio(audio / ".hidden.wav", generate_utterance(sc, 5, "sad", 0)[:8000], 16000)
    return root, audio


def _ptsnn(entry_point, *args, timeout=300):
    return subprocess.run([entry_point("ptsnn"), "run", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


GOOD = ("a.wav", "deeper/b.flac", "deeper/deepest/c.wav")


def test_folder_json_lines_one_object_per_file_errors_as_rows(made, entry_point):
    root, audio = made
    r = _ptsnn(entry_point, root / "bundle", audio, "--backend", "fast", "--json")
    assert r.returncode == 2, r.stderr  # one input failed: exit 2, after every other file was classified
    rows = [json.loads(line) for line in r.stdout.splitlines()]  # stdout is only the data
    files = [Path(row["file"]).relative_to(audio).as_posix() for row in rows]
    assert files == ["a.wav", "deeper/b.flac", "deeper/broken.wav", "deeper/deepest/c.wav"]
    bundle = load_bundle(root / "bundle")
    host = HostRunner(bundle)
    for row in rows:
        assert set(row) >= {"file", "label", "scores", "logits", "steps", "spike_counts", "error", "temperature"}
        if row["file"].endswith("broken.wav"):
            assert row["label"] is None and row["scores"] is None and "broken.wav" in row["error"]
            continue
        assert row["error"] is None
        (ref,) = classify(bundle, [load_input(row["file"], bundle, host)], ["x"], "fast")
        assert row["label"] == ref.label and row["steps"] == ref.steps
        assert row["spike_counts"] == ref.spike_counts and sum(ref.spike_counts.values()) > 0
        np.testing.assert_allclose(row["logits"], ref.logits)
        assert sum(row["scores"].values()) == pytest.approx(1.0)
        assert row["temperature"] == 1.0 and row["calibrated"] is False
    assert "T = 1" in r.stderr and "1 failed" in r.stderr


def test_csv_to_file_parses_and_good_inputs_exit_zero(made, entry_point, tmp_path):
    root, audio = made
    out = tmp_path / "results.csv"
    good = [audio / g for g in GOOD]
    r = _ptsnn(entry_point, root / "bundle", *good, "-b", "fast", "--csv", "-o", out, "--batch-size", "2")
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [row["file"] for row in rows] == [str(p) for p in good]
    bundle = load_bundle(root / "bundle")
    for row in rows:
        scores = [float(row[f"score:{c}"]) for c in bundle.classes]
        assert row["error"] == "" and math.isclose(sum(scores), 1.0, rel_tol=1e-9)
        assert row["label"] == bundle.classes[int(np.argmax(scores))]
        assert int(row["steps"]) > 0 and all(int(row[f"spikes:{p.name}"]) >= 0 for p in bundle.graph.populations)
    assert [p.name for p in tmp_path.iterdir()] == ["results.csv"]  # atomic: no temporary file left
    assert "3 of 3" in r.stdout and "deepest/c.wav" in r.stdout  # the terminal summary table


def test_manifest_input_carries_labels_and_missing_files_become_rows(made, entry_point, tmp_path):
    root, audio = made
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"path,label\n{audio / 'a.wav'},sad\n{audio / 'deeper/b.flac'},angry\ngone.wav,happy\n")
    r = _ptsnn(entry_point, root / "bundle", manifest, "-b", "fast", "--json")
    assert r.returncode == 2, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [row["true_label"] for row in rows] == ["sad", "angry", "happy"]
    assert rows[0]["error"] is None and rows[1]["error"] is None
    assert "gone.wav" in rows[2]["error"] and "not found" in rows[2]["error"]
    assert "match the manifest's label" in r.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    r = _ptsnn(entry_point, root / "bundle", bad, audio / "a.wav", "-b", "fast", "--json")
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert r.returncode == 2 and "not valid JSON" in rows[0]["error"] and "bad.jsonl" in rows[0]["error"] and rows[1]["error"] is None


def test_output_option_errors_are_one_line(made, entry_point, tmp_path):
    root, audio = made
    r = _ptsnn(entry_point, root / "bundle", audio / "a.wav", "-b", "fast", "--json", "--csv")
    assert r.returncode == 2 and "choose one" in r.stderr and "Traceback" not in r.stderr
    r = _ptsnn(entry_point, root / "bundle", audio / "a.wav", "-b", "fast", "-o", tmp_path / "x.txt")
    assert r.returncode == 2 and "--json or --csv" in r.stderr
    r = _ptsnn(entry_point, root / "bundle", audio / "a.wav", "-b", "fast", "--csv", "-o", tmp_path / "no" / "x.csv")
    assert r.returncode == 2 and "does not exist" in r.stderr and "Traceback" not in r.stderr
    r = _ptsnn(entry_point, root / "bundle", audio / "a.wav", "-b", "nosuch")
    assert r.returncode == 2 and "fast" in r.stderr and "loihi2" in r.stderr


def test_folders_follow_the_bundles_input_kind(made, tmp_path):
    root, audio = made
    items = expand_paths([audio], takes_audio=True)
    assert [i.path.relative_to(audio).as_posix() for i in items] == [
        "a.wav", "deeper/b.flac", "deeper/broken.wav", "deeper/deepest/c.wav"]
    (tmp_path / "f").mkdir()
    np.save(tmp_path / "f" / "u.npy", np.zeros((5, 3), np.float32))
    (feat,) = expand_paths([tmp_path / "f"], takes_audio=False)
    assert feat.path.name == "u.npy" and feat.error is None
    (empty,) = expand_paths([audio], takes_audio=False)  # no .npy features in an audio tree: one error row
    assert empty.error and ".npy" in empty.error


def test_batches_do_not_change_results(made):
    root, audio = made
    bundle = load_bundle(root / "bundle")
    host = HostRunner(bundle)
    items = expand_paths([audio], takes_audio=True)
    engine = backends.get_backend("fast")
    one = list(run_items(bundle, items, engine, host, 1.0, batch_size=1))
    many = list(run_items(bundle, items, engine, host, 1.0, batch_size=16))
    assert [r.label for r in one] == [r.label for r in many] and [r.ok for r in one] == [True, True, False, True]
    for a, b in zip(one, many):
        assert a.logits == b.logits and a.spike_counts == b.spike_counts and a.steps == b.steps
        assert a.spikes is None and a.payload is None  # nothing kept unless asked for


def test_backend_registry_one_interface(made):
    from ptsnn.chip.simulator import ChipRun

    root, audio = made
    assert {"fast", "lava", "loihi2"} <= set(backends.names())
    with pytest.raises(InputError, match="choose"):
        backends.get_backend("tpu")
    bundle = load_bundle(root / "bundle")
    payloads = [load_input(audio / g, bundle, HostRunner(bundle)) for g in GOOD]
    run = backends.get_backend("fast", timeout_s=5).run(bundle, payloads)
    assert isinstance(run, ChipRun)
    steps = backends.chip_steps(bundle, payloads)
    assert run.spikes["in_proj"].shape[:2] == (3, int(steps.max()))


def test_bundle_carries_the_checkpoints_temperature(made, entry_point):
    root, audio = made
    plain, cal = load_bundle(root / "bundle"), load_bundle(root / "cal_bundle")
    assert not score_temperature(plain).fitted and score_temperature(plain).value == 1.0
    t = score_temperature(cal)
    assert t.fitted and t.value == TEMPERATURE and cal.manifest["scores"]["fitted_on"] == "valid"
    r = _ptsnn(entry_point, root / "cal_bundle", audio / "a.wav", "-b", "fast", "--json")
    assert r.returncode == 0, r.stderr
    (row,) = [json.loads(line) for line in r.stdout.splitlines()]
    probs = softmax(np.asarray(row["logits"]), TEMPERATURE)
    assert [row["scores"][c] for c in cal.classes] == pytest.approx(probs.tolist(), rel=1e-9)
    assert row["temperature"] == TEMPERATURE and row["calibrated"] is True and "fitted" in r.stderr


def test_bad_temperatures_are_refused(made, tmp_path):
    import torch

    from ptsnn.train.checkpoint import read_checkpoint

    root, _ = made
    obj = torch.load(root / "cal.pt", weights_only=True)
    obj["calibration"]["temperature"] = -1.0
    torch.save(obj, tmp_path / "neg.pt")
    with pytest.raises(InputError, match="calibration.*temperature"):
        read_checkpoint(tmp_path / "neg.pt")
    bundle = load_bundle(root / "cal_bundle")
    bundle.manifest["scores"] = {"temperature": "hot"}
    with pytest.raises(InputError, match="scores.temperature"):
        score_temperature(bundle)


# ------------------------------------------------------------------------------------- calibration maths
def _sampled(temperature_true: float, n: int = 4000, classes: int = 4, seed: int = 0):
    """Logits whose labels are drawn from softmax(logits / t_true): the NLL-optimal temperature is ~t_true."""
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=3.0, size=(n, classes))
    p = softmax(z, temperature_true)
    labels = np.array([rng.choice(classes, p=row) for row in p])
    return z, labels


@pytest.mark.parametrize("t_true", [0.5, 2.5])
def test_temperature_fit_lowers_nll_and_recovers_the_true_temperature(t_true):
    z, y = _sampled(t_true)
    t = fit_temperature(z, y)
    assert t == pytest.approx(t_true, rel=0.1)
    assert nll(z, y, t) < nll(z, y, 1.0)
    assert all(nll(z, y, t) <= nll(z, y, s) for s in np.linspace(0.2, 5, 25))
    assert expected_calibration_error(softmax(z, t), y) < expected_calibration_error(softmax(z), y)


def test_temperature_fit_never_worse_than_one_and_predictions_unchanged():
    z, y = _sampled(1.0, n=300, seed=3)
    t = fit_temperature(z, y)
    assert nll(z, y, t) <= nll(z, y, 1.0)
    assert np.array_equal(softmax(z, t).argmax(1), z.argmax(1))
    assert fit_temperature(np.zeros((0, 3)), np.zeros(0, np.int64)) == 1.0


def test_ece_hand_case():
    # confidences 0.95, 0.95 (bin 15: one right, one wrong -> |0.5 - 0.95| = 0.45) and 0.55, 0.55
    # (bin 9: both right -> |1 - 0.55| = 0.45); 0.35 on a 3-class row lands in bin 6 (wrong: |0 - 0.35|)
    probs = np.array([[0.95, 0.05, 0.0], [0.95, 0.05, 0.0], [0.55, 0.45, 0.0], [0.45, 0.55, 0.0],
                      [0.35, 0.33, 0.32]])
    labels = np.array([0, 1, 0, 1, 2])
    expected = 2 / 5 * 0.45 + 2 / 5 * 0.45 + 1 / 5 * 0.35
    assert expected_calibration_error(probs, labels) == pytest.approx(expected)
    # perfectly calibrated in every bin: 0
    assert expected_calibration_error(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([0, 1])) == 0.0
    # a bin edge goes to the lower bin: 0.6 is in (0.5333, 0.6], with 0.59
    assert expected_calibration_error(np.array([[0.6, 0.4], [0.59, 0.41]]), np.array([0, 1])) == pytest.approx(
        abs(0.5 - 0.595))
