"""Deploy: a converted PTS-SNN bundle runs audio to label on the fast simulator and in Lava (netx chain +
hand-built processes), spike for spike equal to the quantized PyTorch model; tampered bundles are refused."""

import subprocess

import numpy as np
import pytest
import torch

from ptsnn.convert.bundle import convert_checkpoint
from ptsnn.data.audio import save_audio
from ptsnn.data.synthetic import SyntheticCorpusConfig, generate_utterance
from ptsnn.deploy.bundle_io import HostRunner, load_bundle, load_input
from ptsnn.deploy.run import classify
from ptsnn.deploy.verify import verify
from ptsnn.errors import InputError
from ptsnn.frontend import build_frontend
from ptsnn.hw_profiles import load_profile
from ptsnn.testing import synthetic_bundle
from ptsnn.train.checkpoint import load_model, save_checkpoint
from ptsnn.train.config import load_config
from ptsnn.train.model import PTSSNN


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    root = tmp_path_factory.mktemp("deploy")
    synthetic_bundle(root, ["model.hidden=32", "model.key_dim=12", "model.value_dim=6", "model.prompts=2"],
                     max_samples=12000)
    sc = SyntheticCorpusConfig()
    wav = root / "a.wav"
    save_audio(wav, generate_utterance(sc, 7, "sad", 1)[:9600], 16000)
    return root, wav


def test_fast_backend_matches_quantized_model(made):
    root, wav = made
    bundle = load_bundle(root / "bundle")
    model, ckpt = load_model(root / "m.pt")
    model.quantize()
    fe = build_frontend(ckpt.frontend)
    from ptsnn.data.audio import load_audio

    wave = load_audio(wav)
    feats = fe(wave).numpy()
    report = verify(bundle, model, [feats], ["a"], lava_count=0, host=HostRunner(bundle), host_inputs=[wave])
    assert report.exact and report.host_payload_mismatches == 0
    assert all(row["quantized==fast"] == 100.0 for row in report.layers)
    assert sum(row["spikes_fast"] for row in report.layers) > 0
    (res,) = classify(bundle, [load_input(wav, bundle, HostRunner(bundle))], ["a"], "fast")
    with torch.no_grad():
        out = model(torch.as_tensor(feats)[None])
    assert res.label == bundle.classes[int(out.logits.argmax())]
    np.testing.assert_allclose(res.logits, out.logits[0].numpy(), rtol=1e-5)


@pytest.mark.lava
def test_lava_whole_graph_equals_fast_and_pytorch(made):
    root, wav = made
    bundle = load_bundle(root / "bundle")
    model, ckpt = load_model(root / "m.pt")
    model.quantize()
    feats = [build_frontend(ckpt.frontend)(generate_utterance(SyntheticCorpusConfig(), 7, "angry", 0)[:8000]).numpy()]
    report = verify(bundle, model, feats, ["u"], lava_count=1, timeout_s=300)
    assert report.lava_utterances == 1 and report.exact, report.divergences
    assert all(row["fast==lava"] == 100.0 for row in report.layers)
    assert report.predictions["lava"]["agree_with_quantized"] == 100.0


@pytest.mark.lava
def test_ptsnn_run_prints_label_through_lava(made, entry_point):
    root, wav = made
    import json

    r = subprocess.run([entry_point("ptsnn"), "run", str(root / "bundle"), str(wav), "--json"], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    bundle = load_bundle(root / "bundle")
    (fast,) = classify(bundle, [load_input(wav, bundle, HostRunner(bundle))], ["a.wav"], "fast")
    (row,) = [json.loads(line) for line in r.stdout.splitlines()]
    assert row["backend"] == "lava" and row["file"] == str(wav) and row["label"] == fast.label
    assert row["spike_counts"] == fast.spike_counts and row["logits"] == pytest.approx(fast.logits.tolist())


def test_tampered_bundle_and_wrong_inputs_are_refused(made, tmp_path):
    import shutil

    root, wav = made
    copy = tmp_path / "b"
    shutil.copytree(root / "bundle", copy)
    with open(copy / "chip_graph.h5", "r+b") as f:
        f.seek(-10, 2)
        f.write(b"0123456789")
    with pytest.raises(InputError, match="sha256"):
        load_bundle(copy)
    bundle = load_bundle(root / "bundle")
    with pytest.raises(InputError, match="takes audio"):
        load_input(tmp_path / "x.npy", bundle, HostRunner(bundle))
    with pytest.raises(InputError, match="not a ptsnn bundle"):
        load_bundle(tmp_path)


def test_loihi2_backend_without_lava_loihi_is_one_clear_line(made, entry_point, tmp_path):
    import py_compile

    root, wav = made
    script = root / "bundle" / "run_loihi2.py"
    py_compile.compile(str(script), cfile=str(tmp_path / "run_loihi2.pyc"), doraise=True)  # not into the bundle
    assert "Loihi2HwCfg" in script.read_text()
    r = subprocess.run([entry_point("ptsnn"), "run", str(root / "bundle"), str(wav), "--backend", "loihi2"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "lava-loihi" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.lava
def test_report_counts_from_lava_equal_fast_simulator(made):
    from ptsnn.deploy.run import chip_run
    from ptsnn.report import build_report

    root, wav = made
    bundle = load_bundle(root / "bundle")
    payloads = [load_input(wav, bundle, HostRunner(bundle))]
    fast = build_report(bundle, chip_run(bundle, payloads, "fast"), ["loihi2"], payloads=payloads)
    lava = build_report(bundle, chip_run(bundle, payloads, "lava", timeout_s=300), ["loihi2"], payloads=payloads,
                        backend="lava")
    rows = lambda rep: {r["name"]: r for r in rep.data["layers"]}  # noqa: E731
    for name, row in rows(fast).items():
        assert rows(lava)[name] == row, name
    assert fast.data["totals"]["counts"]["output_spikes"]["total"] > 0


@pytest.mark.slow
@pytest.mark.lava
def test_paper_config_bundle_is_exact_in_lava(tmp_path):
    """The 1.19 M-parameter paper config: quantized PyTorch == fast simulator == Lava on a short utterance."""
    cfg = load_config("paper")
    cfg.frontend = {"kind": "features", "dim": 768, "dir": "features"}
    torch.manual_seed(0)
    model = PTSSNN(cfg.model)
    model.data_init(torch.randn(2, 60, 768) * 2)
    save_checkpoint(tmp_path / "paper.pt", model, cfg, {"angry": 0, "happy": 1, "neutral": 2, "sad": 3}, cfg.frontend)
    convert_checkpoint(tmp_path / "paper.pt", load_profile("loihi2"), tmp_path / "bundle", emit=("netx",))
    bundle = load_bundle(tmp_path / "bundle")
    model, _ = load_model(tmp_path / "paper.pt")
    model.quantize()
    feats = [np.random.default_rng(1).normal(0, 2, (24, 768)).astype(np.float32)]
    report = verify(bundle, model, feats, ["u"], lava_count=1, timeout_s=1200)
    assert report.exact, report.divergences
    assert all(row["fast==lava"] == 100.0 for row in report.layers)
    assert sum(row["spikes_lava"] for row in report.layers) > 0


def test_run_writes_a_report_on_request(made, entry_point, tmp_path):
    import json

    root, wav = made
    r = subprocess.run([entry_point("ptsnn"), "run", str(root / "bundle"), str(wav), "--backend", "fast",
                        "--report", str(tmp_path / "rep")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    data = json.loads((tmp_path / "rep" / "report.json").read_text())
    bundle = load_bundle(root / "bundle")
    (fast,) = classify(bundle, [load_input(wav, bundle, HostRunner(bundle))], ["a.wav"], "fast")
    spikes = {row["name"]: row["counts"]["output_spikes"]["total"] for row in data["layers"] if row["kind"] != "input"
              and "output_spikes" in row["counts"]}
    for layer, count in fast.spike_counts.items():
        assert spikes[layer] == count, layer
    assert (tmp_path / "rep" / "report.html").stat().st_size > 10_000
