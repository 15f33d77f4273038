"""Bundles converted from NIR run, report and verify like any other: the chip input is given directly
(.npy spikes or seeded synthetic spike trains), graphs ending in a spiking population read its spike counts."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import nir
import numpy as np
import pytest

from ptsnn.deploy.bundle_io import HostRunner, load_bundle, load_input
from ptsnn.deploy.run import classify
from ptsnn.errors import InputError


def cli(*args, timeout=600):
    env = {**os.environ, "PYTHONPATH": os.getcwd(), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "ptsnn.cli.main", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def snn_classifier_nir(path):
    """Input -> Affine -> LIF -> Output: how snnTorch / norse classifiers export (no readout accumulator)."""
    rng = np.random.default_rng(0)
    g = nir.NIRGraph(nodes={
        "input": nir.Input(np.array([6])),
        "fc": nir.Affine(weight=rng.normal(size=(5, 6)) * 2, bias=np.zeros(5)),
        "lif": nir.LIF(tau=np.full(5, 0.01), r=np.full(5, 10.0), v_leak=np.zeros(5), v_threshold=np.ones(5)),
        "output": nir.Output(np.array([5]))},
        edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")])
    nir.write(path, g)
    return path


@pytest.fixture(scope="module")
def nir_bundle(tmp_path_factory):
    root = tmp_path_factory.mktemp("nirbundle")
    src = snn_classifier_nir(root / "small.nir")
    res = cli("convert", str(src), "--out", str(root / "bundle"), "--emit", "netx,nir,onnx")
    assert res.returncode == 0, res.stdout + res.stderr
    spikes = (np.random.default_rng(1).random((3, 25, 6)) < 0.3).astype(np.int8)
    (root / "inputs").mkdir()
    for i, s in enumerate(spikes):
        np.save(root / "inputs" / f"u{i}.npy", s)
    return root


def test_run_takes_chip_input_spikes(nir_bundle):
    bundle = nir_bundle / "bundle"
    res = cli("run", str(bundle), str(nir_bundle / "inputs" / "u0.npy"), "--backend", "fast", "--json")
    assert res.returncode == 0, res.stdout + res.stderr
    row = json.loads(res.stdout.splitlines()[0])  # the terminal table may shorten long paths: read the JSON row
    assert "Traceback" not in res.stderr and row["file"].endswith("u0.npy") and row["error"] is None
    b = load_bundle(bundle)
    assert b.classes == ["0", "1", "2", "3", "4"]  # the output population's neurons
    payload = load_input(nir_bundle / "inputs" / "u0.npy", b, HostRunner(b))
    (r,) = classify(b, [payload], ["u0"], backend="fast")
    counts = np.asarray(r.logits) * r.steps  # logits are the output spike rates
    assert np.allclose(counts, np.rint(counts)) and int(counts.sum()) == r.spike_counts["lif"]
    assert r.label == str(int(np.argmax(counts)))


def test_wrong_inputs_for_a_nir_bundle_are_one_line(nir_bundle, tmp_path):
    b = load_bundle(nir_bundle / "bundle")
    host = HostRunner(b)
    with pytest.raises(InputError, match=r"\[steps, 6\]"):
        host(np.zeros((4, 7)))
    with pytest.raises(InputError, match="0 or 1"):
        host(np.full((4, 6), 2))
    with pytest.raises(InputError, match="integers"):
        host(np.full((4, 6), 0.5))
    wav = tmp_path / "x.wav"
    wav.write_bytes(b"RIFF")
    with pytest.raises(InputError, match="NIR graph"):
        load_input(wav, b, host)


def test_report_on_synthetic_spikes(nir_bundle, tmp_path):
    res = cli("report", str(nir_bundle / "bundle"), "-o", str(tmp_path / "rep"), "--format", "json", "--limit", "3")
    assert res.returncode == 0, res.stdout + res.stderr
    data = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert data["data"]["utterances"] == 3
    assert data["host"]["stages"] == [] or not data["host"].get("stages")
    assert "no host part" in json.dumps(data["host"])


def test_verify_with_the_nir_file(nir_bundle):
    res = cli("verify", str(nir_bundle / "bundle"), "-c", str(nir_bundle / "small.nir"), "--data",
              str(nir_bundle / "inputs"), "--lava", "0")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "OK" in res.stdout


@pytest.mark.lava
def test_verify_nir_bundle_through_lava(nir_bundle):
    res = cli("verify", str(nir_bundle / "bundle"), "-c", str(nir_bundle / "small.nir"), "--data",
              str(nir_bundle / "inputs"), "--lava", "1")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "fast simulator == Lava" in res.stdout


def test_hostile_chip_input_files_are_one_line_errors(nir_bundle, tmp_path):
    """``ptsnn run BUNDLE x.npy``: the .npy is read header first and bounded (objects, strings, truncation, a
    declared size beyond the limit, an .npz in disguise, a 3-D array) and each problem names the file."""
    b = load_bundle(nir_bundle / "bundle")
    host = HostRunner(b)
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    np.save(tmp_path / "strings.npy", np.array(["abc"]))
    np.save(tmp_path / "cube.npy", np.zeros((2, 25, 6), np.int8))
    np.savez(tmp_path / "zipped.npy", x=np.zeros((25, 6)))
    (tmp_path / "zipped.npy.npz").rename(tmp_path / "zipped.npy")
    good = (tmp_path / "good.npy")
    np.save(good, np.zeros((25, 6), np.int8))
    (tmp_path / "truncated.npy").write_bytes(good.read_bytes()[:-40])
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (100000000000,), }".ljust(117) + "\n"
    (tmp_path / "huge.npy").write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode())
    expected = {"objects.npy": "objects", "strings.npy": "dtype", "cube.npy": "3-D", "zipped.npy": ".npz",
                "truncated.npy": "truncated", "huge.npy": "above the limit"}
    for name, message in expected.items():
        with pytest.raises(InputError, match=message) as err:
            load_input(tmp_path / name, b, host)
        assert name in str(err.value) and "\n" not in str(err.value)
    res = cli("run", str(nir_bundle / "bundle"), str(tmp_path / "objects.npy"), "--backend", "fast")
    assert res.returncode != 0 and "Traceback" not in res.stderr and "objects.npy" in res.stdout + res.stderr
