"""SSL bundles from audio: a PTS-SNN trained on a tiny random HuggingFace SSL front end converts with the
frozen model inside host.onnx (checked against PyTorch in onnxruntime), runs `ptsnn run x.wav` end to end,
and `ptsnn verify` is exact. The models are built here (random weights, tiny sizes), never downloaded."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
transformers = pytest.importorskip("transformers")

from ptsnn.convert.host_check import SCALED_TOLERANCE, boundary_ties, check_host_onnx, check_waves  # noqa: E402
from ptsnn.convert.onnx_host import build_host_module, export_host_onnx  # noqa: E402
from ptsnn.errors import InputError  # noqa: E402
from ptsnn.frontend import build_frontend, load_hf  # noqa: E402
from ptsnn.train.config import load_config  # noqa: E402
from ptsnn.train.model import PTSSNN  # noqa: E402

TINY_SSL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, conv_dim=(16,) * 7,
                num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)
SSL_MODELS = {
    "wav2vec2": ("Wav2Vec2Config", "Wav2Vec2Model", {}),
    "hubert": ("HubertConfig", "HubertModel", {}),
    "wavlm": ("WavLMConfig", "WavLMModel", {"num_buckets": 20}),
    "data2vec-audio": ("Data2VecAudioConfig", "Data2VecAudioModel",
                       {"num_conv_pos_embeddings": 3, "conv_pos_kernel_size": 5}),
}
TINY_SNN = ["model.hidden=16", "model.blocks=1", "model.key_dim=8", "model.value_dim=8", "model.prompts=2",
            "model.input_dim=32", "train.batch_size=4", "train.max_frames=30", "train.epochs=1"]


def save_tiny(model_type: str, folder, normalize: bool = True):
    cfg_name, model_name, extra = SSL_MODELS[model_type]
    torch.manual_seed(0)
    cfg = getattr(transformers, cfg_name)(**{**TINY_SSL, **extra})
    getattr(transformers, model_name)(cfg).eval().save_pretrained(folder)
    transformers.Wav2Vec2FeatureExtractor(do_normalize=normalize, sampling_rate=16000).save_pretrained(folder)
    return folder


def cli(*args, timeout=900):
    env = {**os.environ, "PYTHONPATH": os.getcwd(), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "ptsnn.cli.main", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


# ------------------------------------------------------------------------------------ export + check
@pytest.mark.parametrize("model_type", list(SSL_MODELS))
@pytest.mark.parametrize("layer", ["last", 1])
def test_ssl_host_onnx_matches_pytorch(tmp_path, model_type, layer):
    fe = load_hf(save_tiny(model_type, tmp_path / "ssl"), layer=layer)
    cfg = load_config("small", TINY_SNN)
    torch.manual_seed(0)
    model = PTSSNN(cfg.model).eval()
    path = export_host_onnx(model, tmp_path / "host.onnx", frontend=fe, float_output=True)
    proto = onnx.load(str(path))
    meta = {p.key: p.value for p in proto.metadata_props}
    assert [i.name for i in proto.graph.input] == ["wave"] and meta["ptsnn.frontend"] == "hf"
    assert meta["ptsnn.min_samples"] == "400" and meta["ptsnn.sample_rate"] == "16000"
    graph = build_host_module(model, fe, float_output=True)
    waves = check_waves(16000, graph.min_samples)
    result = check_host_onnx(graph, path, waves)
    assert result["max_abs_scaled_diff"] <= SCALED_TOLERANCE and result["inputs"] == 3
    # the embedded module is the front end's own computation
    with torch.no_grad():
        feats = fe(waves[1])
        want = model.host(feats[None], True)[0]
        got = graph(torch.from_numpy(waves[1])[None])[0][0]
    torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_boundary_ties_rule():
    ref = np.array([0.5004, 1.2, -2.5, 3.0])
    a = np.array([0, 1, -2, 3])
    b = np.array([1, 1, -3, 4])  # ties at 0.5004 and -2.5; 3.0 -> 4 is a real difference
    assert boundary_ties(a, b, ref) == (1, 2)
    assert boundary_ties(a, a, ref) == (0, 0)
    assert boundary_ties(a, np.array([2, 1, -2, 3]), ref) == (1, 0)  # off by 2 is never a tie


def test_check_refuses_a_host_onnx_of_another_model(tmp_path):
    fe = load_hf(save_tiny("wav2vec2", tmp_path / "ssl"))
    cfg = load_config("small", TINY_SNN)
    torch.manual_seed(0)
    model = PTSSNN(cfg.model)
    torch.manual_seed(1)
    other = PTSSNN(cfg.model)
    with torch.no_grad():
        other.host.norm.weight.mul_(3)
    path = export_host_onnx(other, tmp_path / "host.onnx", frontend=fe, float_output=True)
    graph = build_host_module(model, fe, float_output=True)
    with pytest.raises(InputError, match="tolerance"):
        check_host_onnx(graph, path, check_waves(16000, 400))


def test_all_layers_cannot_be_embedded(tmp_path):
    fe = load_hf(save_tiny("hubert", tmp_path / "ssl"), layer="all")
    model = PTSSNN(load_config("small", TINY_SNN).model)
    with pytest.raises(InputError, match="layer"):
        build_host_module(model, fe)


def test_emotion2vec_without_funasr_is_one_clear_line(tmp_path):
    try:
        import funasr  # noqa: F401
        pytest.skip("FunASR is installed")
    except ImportError:
        pass
    (tmp_path / "model.pt").write_bytes(b"x")
    (tmp_path / "config.yaml").write_text("model: Emotion2vec\n")
    with pytest.raises(InputError, match=r"FunASR.*ptsnn\[emotion2vec\]"):
        build_frontend("emotion2vec", path=str(tmp_path))
    with pytest.raises(InputError, match="not found"):
        build_frontend("emotion2vec", path=str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="model.pt and config.yaml"):
        build_frontend(f"emotion2vec:{tmp_path / 'empty'}")


# ------------------------------------------------------------------------ train -> convert -> run -> verify
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from ptsnn.data.synthetic import SyntheticCorpusConfig, write_corpus

    root = tmp_path_factory.mktemp("sslbundle")
    ssl = save_tiny("wav2vec2", root / "w2v")
    syn = root / "syn"
    write_corpus(SyntheticCorpusConfig(num_speakers=3, utterances_per_class=2, min_duration=0.5, max_duration=0.8,
                                       classes=("angry", "sad")), syn)
    args = ["train", "--out", str(root / "out"), "--data", str(syn), "--corpus", "synthetic", "--cache-dir",
            str(root / "cache"), "--seed", "1", "-q", "--set", "frontend.kind=hf", "--set", f"frontend.path={ssl}"]
    for item in TINY_SNN:
        args += ["--set", item]
    res = cli(*args)
    assert res.returncode == 0, res.stdout + res.stderr
    ckpt = root / "out" / "float.pt"
    res = cli("convert", str(ckpt), "--target", "loihi2", "--out", str(root / "bundle"))
    assert res.returncode == 0, res.stdout + res.stderr
    return root, ckpt, root / "bundle", sorted(syn.rglob("*.wav"))


def test_ssl_bundle_embeds_the_model_and_records_the_check(trained):
    _, _, bundle, _ = trained
    report = json.loads((bundle / "conversion_report.json").read_text())
    host = report["host_onnx"]
    assert host["input"] == "wave" and host["embedded"] and host["frontend"] == "hf"
    assert host["check"]["max_abs_scaled_diff"] <= host["check"]["tolerance"] == SCALED_TOLERANCE
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["frontend"]["kind"] == "hf" and len(manifest["frontend"]["sha256"]) == 64


def test_ptsnn_run_wav_fast_equals_pytorch(trained):
    from ptsnn.data.audio import load_audio
    from ptsnn.deploy.bundle_io import load_bundle
    from ptsnn.deploy.run import classify
    from ptsnn.train.checkpoint import load_model

    _, ckpt, bundle, wavs = trained
    res = cli("run", str(bundle), str(wavs[0]), "--backend", "fast")
    assert res.returncode == 0, res.stdout + res.stderr
    b = load_bundle(bundle)
    classes = b.classes
    assert any(c in res.stdout for c in classes)
    # the chip result from audio equals the quantized PyTorch model on PyTorch's own SSL features
    model, ck = load_model(ckpt)
    model.quantize()
    model.eval()
    fe = build_frontend(ck.frontend)
    from ptsnn.deploy.bundle_io import HostRunner, load_input

    host = HostRunner(b)
    wave = load_audio(wavs[0], target_sr=16000)
    payload = load_input(wavs[0], b, host)
    with torch.no_grad():
        out = model(fe(wave)[None], record=True)
        scaled = (model.host(fe(wave)[None], False) * model.host.levels)[0].numpy()
    want = out.spikes["input"][0, : len(payload)].numpy().astype(np.int64)
    unexplained, _ = boundary_ties(want, payload, scaled)
    assert unexplained == 0
    (result,) = classify(b, [payload], [wavs[0].name], backend="fast")
    assert result.label == classes[int(out.logits[0].argmax())]


def test_ptsnn_verify_is_exact_from_audio(trained):
    root, ckpt, bundle, wavs = trained
    data = root / "verify_wavs"
    data.mkdir(exist_ok=True)
    for w in wavs[:3]:
        (data / w.name).write_bytes(w.read_bytes())
    res = cli("verify", str(bundle), "-c", str(ckpt), "--data", str(data), "--lava", "0")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "host.onnx vs PyTorch host payloads: 0 mismatching values" in res.stdout
    assert "OK" in res.stdout


def test_run_needs_nothing_outside_the_bundle(trained):
    root, _, bundle, wavs = trained
    (root / "w2v").rename(root / "w2v.away")  # the SSL model folder is gone: host.onnx carries the model
    try:
        res = cli("run", str(bundle), str(wavs[1]), "--backend", "fast")
    finally:
        (root / "w2v.away").rename(root / "w2v")
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.lava
def test_ptsnn_run_wav_through_lava(trained):
    _, _, bundle, wavs = trained
    res = cli("run", str(bundle), str(wavs[0]), "--backend", "lava", timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    fast = cli("run", str(bundle), str(wavs[0]), "--backend", "fast")
    label = lambda out: [line for line in out.splitlines() if wavs[0].name in line]  # noqa: E731
    assert label(res.stdout) and label(res.stdout)[0].split()[:2] == label(fast.stdout)[0].split()[:2]
