"""End to end on eye data through the CLI: ptsnn train --model ttfs --data synthetic-eye -> ptsnn-convert
--target loihi2 -> ptsnn verify (fast backend), with WAR/UAR per lighting in metrics.json."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import torch

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg", "COLUMNS": "200"}


def _ptsnn(*args, timeout=240):
    return subprocess.run([sys.executable, "-m", "ptsnn.cli.main", *args], capture_output=True, text=True,
                          timeout=timeout, env=ENV)


def test_train_convert_verify_on_synthetic_eye(tmp_path):
    out = tmp_path / "run"
    r = _ptsnn("train", "--model", "ttfs", "--data", "synthetic-eye", "--out", str(out), "--epochs", "2", "-q",
               "--set", "data.subjects=6", "--set", "data.takes=1", "--set", "data.frames=4", "--set", "data.size=8",
               "--set", "ttfs.conv=[{\"out_channels\": 3, \"kernel\": 3, \"pool\": \"max\"}]",
               "--set", "ttfs.dense=[6]", "--set", "ttfs.steps_per_window=4")
    assert r.returncode == 0, r.stderr[-2000:]
    metrics = json.loads((out / "metrics.json").read_text())
    for name in ("relu_twin", "grid"):
        m = metrics[name]
        assert 0 <= m["war"] <= 1 and 0 <= m["uar"] <= 1 and m["per_lighting"]
        assert sum(v["count"] for v in m["per_lighting"].values()) == m["count"]
    assert torch.load(out / "ttfs.pt", weights_only=True)["model_kind"] == "ttfs"
    bundle = tmp_path / "bundle"
    r = _ptsnn("convert", str(out / "ttfs.pt"), "--target", "loihi2", "--out", str(bundle))
    assert r.returncode == 0, r.stderr[-2000:]
    r = _ptsnn("verify", str(bundle), "-c", str(out / "ttfs.pt"), "--data", "synthetic-eye", "--lava", "0",
               "--limit", "6")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "OK" in r.stdout and (tmp_path / "bundle.verify" / "accuracy_vs_k.png").is_file()
    report = json.loads((tmp_path / "bundle.verify" / "verify_ttfs.json").read_text())
    assert report["fire_once"] == {"quantized": 1, "fast": 1}
    assert report["accuracy_vs_k"]["k"] == [1, 2, 4, 8, 16, 32]


def test_bad_model_kind_and_bad_overrides_are_one_line_errors(tmp_path):
    r = _ptsnn("train", "--model", "snn", "--data", "synthetic-eye", "--out", str(tmp_path))
    assert r.returncode == 2 and "--model" in r.stderr and "Traceback" not in r.stderr
    r = _ptsnn("train", "--model", "ttfs", "--data", "synthetic-eye", "--out", str(tmp_path), "--set", "nonsense")
    assert r.returncode == 2 and "--set" in r.stderr and "Traceback" not in r.stderr


def test_run_classifies_a_frame_folder_and_refuses_the_wrong_layout(tmp_path):
    """ptsnn run BUNDLE SEQUENCE_DIR on a grey-frame network (fast backend); a recording (event channels)
    into that network, and a folder with a missing frame, are one-line errors."""
    import numpy as np
    from PIL import Image

    out = tmp_path / "run"
    r = _ptsnn("train", "--model", "ttfs", "--data", "synthetic-eye", "--out", str(out), "--epochs", "1", "-q",
               "--set", "data.subjects=6", "--set", "data.takes=1", "--set", "data.frames=4", "--set", "data.size=8",
               "--set", "data.channels=frame", "--set", "ttfs.conv=[]", "--set", "ttfs.dense=[5]",
               "--set", "ttfs.steps_per_window=4")
    assert r.returncode == 0, r.stderr[-2000:]
    bundle = tmp_path / "bundle"
    assert _ptsnn("convert", str(out / "ttfs.pt"), "--out", str(bundle)).returncode == 0
    seq = tmp_path / "seq"
    seq.mkdir()
    rng = np.random.default_rng(0)
    for i in range(5):
        Image.fromarray(rng.integers(0, 255, (12, 12), dtype=np.uint8)).save(seq / f"{i:05d}.png")
    r = _ptsnn("run", str(bundle), str(seq), "--backend", "fast")
    assert r.returncode == 0, r.stdout[-1500:] + r.stderr[-1500:]
    assert "seq" in r.stdout and "at most 1 spike per neuron" in r.stdout
    (seq / "00002.png").unlink()
    r = _ptsnn("run", str(bundle), str(seq), "--backend", "fast")
    assert r.returncode == 2 and "missing frame" in r.stderr and "Traceback" not in r.stderr
    fake = tmp_path / "rec.aedat4"
    fake.write_bytes(b"not a recording")
    r = _ptsnn("run", str(bundle), str(fake), "--backend", "fast")
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_hostile_ttfs_input_archives_are_one_line_errors(tmp_path):
    """``ptsnn verify BUNDLE -c ttfs.pt --data X.npz``: what the archive holds is checked at the boundary (bounded
    header-first read, no objects, finite, x of the network's input shape, integer labels in range)."""
    import numpy as np
    import pytest

    from ptsnn.cli.deploy_cmd import _ttfs_inputs
    from ptsnn.errors import InputError
    from ptsnn.train.ttfs_config import TTFSConfig

    cfg = TTFSConfig()
    shape, n_cls = tuple(cfg.input_shape), cfg.num_classes
    good = np.zeros((3, *shape), np.float32)
    cases = {
        "no_x.npz": (dict(y=np.zeros(3, np.int64)), "no array 'x'"),
        "shape.npz": (dict(x=np.zeros((3, 2, 2))), "array 'x' has shape"),
        "nan.npz": (dict(x=np.full((3, *shape), np.nan)), "NaN"),
        "labels.npz": (dict(x=good, y=np.array([0, 1, n_cls])), "integer labels"),
        "float_labels.npz": (dict(x=good, y=np.array([0.5, 1, 2])), "integer labels"),
        "objects.npz": (dict(x=np.array([{"a": 1}], dtype=object)), "objects"),
    }
    for name, (arrays, message) in cases.items():
        np.savez(tmp_path / name, **arrays)
        with pytest.raises(InputError, match=message) as err:
            _ttfs_inputs(str(tmp_path / name), cfg, 10)
        assert name in str(err.value)
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(InputError, match="not an .npz archive"):
        _ttfs_inputs(str(tmp_path / "junk.npz"), cfg, 10)
    np.savez(tmp_path / "ok.npz", x=good, y=np.array([0, 1, 2]))
    x, y = _ttfs_inputs(str(tmp_path / "ok.npz"), cfg, 2)
    assert tuple(x.shape) == (2, *shape) and y.tolist() == [0, 1]
