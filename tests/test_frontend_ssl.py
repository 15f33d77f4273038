"""SSL front ends: tiny random transformers models saved locally, loaded offline, outputs equal the originals;
torchaudio bundle checkpoints read through the inverse of torchaudio's key mapping."""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
transformers = pytest.importorskip("transformers")

from ptsnn.errors import InputError  # noqa: E402
from ptsnn.frontend import LayerWeightedSum, build_frontend, load_hf, load_torchaudio  # noqa: E402
from ptsnn.frontend.torchaudio_bundle import (  # noqa: E402
    KEY_PREFIXES,
    hf_key_to_torchaudio,
    hf_to_torchaudio_state,
    torchaudio_key_to_hf,
    torchaudio_to_hf_state,
)

TINY = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=64,
    conv_dim=(16,) * 7,  # the standard 7-layer stack (kernels 10,3,3,3,3,2,2; strides 5,2,...): 50 Hz
    num_conv_pos_embeddings=16,
    num_conv_pos_embedding_groups=4,
)
MODELS = {
    "wav2vec2": ("Wav2Vec2Config", "Wav2Vec2Model", {}),
    "hubert": ("HubertConfig", "HubertModel", {}),
    "wavlm": ("WavLMConfig", "WavLMModel", {"num_buckets": 20}),
    "data2vec-audio": (
        "Data2VecAudioConfig",
        "Data2VecAudioModel",
        {"num_conv_pos_embeddings": 3, "conv_pos_kernel_size": 5},
    ),
}


def _tiny(model_type: str, **extra) -> torch.nn.Module:
    cfg_name, model_name, defaults = MODELS[model_type]
    torch.manual_seed(0)
    cfg = getattr(transformers, cfg_name)(**{**TINY, **defaults, **extra})
    return getattr(transformers, model_name)(cfg).eval()


def _wave(n: int = 16000, seed: int = 1) -> torch.Tensor:
    return torch.from_numpy((np.random.default_rng(seed).standard_normal(n) * 0.1).astype(np.float32))


def _reference(model: torch.nn.Module, x: torch.Tensor):
    with torch.no_grad():
        return model(x[None], output_hidden_states=True)


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> dict[str, tuple[torch.nn.Module, Path]]:
    out = {}
    for model_type in MODELS:
        model = _tiny(model_type)
        folder = tmp_path_factory.mktemp(model_type.replace("-", "_"))
        model.save_pretrained(folder)
        out[model_type] = (model, folder)
    return out


@pytest.mark.parametrize("model_type", list(MODELS))
def test_hf_outputs_equal_original(saved, model_type):
    model, folder = saved[model_type]
    x = _wave()
    ref = _reference(model, x)
    last = build_frontend("hf", path=str(folder), normalize=False)
    assert last.dim == 32 and last.sample_rate == 16000 and last.frame_rate == pytest.approx(50.0)
    y = last(x)
    assert y.shape == (49, 32) == (last.num_frames(16000), 32)  # 1 s -> 49 frames at 50 Hz
    torch.testing.assert_close(y, ref.last_hidden_state[0], rtol=0, atol=1e-6)
    one = load_hf(folder, layer=1, normalize=False)
    torch.testing.assert_close(one(x), ref.hidden_states[1][0], rtol=0, atol=1e-6)
    stacked = load_hf(folder, layer="all", normalize=False)(x)
    assert stacked.shape == (3, 49, 32)  # embeddings + 2 layers
    torch.testing.assert_close(stacked, torch.stack(ref.hidden_states, 1)[0], rtol=0, atol=1e-6)
    assert not any(p.requires_grad for p in last.model.parameters()) and not last.model.training


def test_hf_spec_round_trip_and_weight_hash(saved, tmp_path):
    _, folder = saved["wav2vec2"]
    fe = load_hf(folder, layer=-1, normalize=False)
    spec = json.loads(json.dumps(fe.spec))
    assert spec["kind"] == "hf" and spec["model_type"] == "wav2vec2" and len(spec["sha256"]) == 64
    assert spec["layer"] == -1 and spec["dim"] == 32
    x = _wave(8000)
    torch.testing.assert_close(build_frontend(spec)(x), fe(x))
    moved = tmp_path / "moved"
    shutil.copytree(folder, moved)
    relocated = build_frontend(spec, path=str(moved))
    assert relocated.spec["path"] == str(moved.resolve()) and relocated.spec_hash() == fe.spec_hash()
    # the same spec must refuse different weights
    other = tmp_path / "other"
    _tiny("wav2vec2", intermediate_size=48).save_pretrained(other)
    with pytest.raises(InputError, match="differ"):
        build_frontend(spec, path=str(other))
    assert build_frontend(f"hf:{folder}").spec["layer"] == "last"


def test_hf_fine_tuned_checkpoint_loads_its_encoder(tmp_path):
    torch.manual_seed(0)
    ctc = transformers.Wav2Vec2ForCTC(transformers.Wav2Vec2Config(**TINY, vocab_size=12)).eval()
    ctc.save_pretrained(tmp_path)
    x = _wave(8000)
    want = _reference(ctc.wav2vec2, x).last_hidden_state[0]
    torch.testing.assert_close(load_hf(tmp_path, normalize=False)(x), want, rtol=0, atol=1e-6)


def test_hf_normalisation_follows_preprocessor_config(tmp_path):
    model = _tiny("wav2vec2")
    model.save_pretrained(tmp_path)
    fe_cls = transformers.Wav2Vec2FeatureExtractor
    fe_cls(do_normalize=True, sampling_rate=16000).save_pretrained(tmp_path)
    fe = load_hf(tmp_path)
    assert fe.normalize is True
    x = _wave() * 3 + 0.2
    extractor = fe_cls.from_pretrained(tmp_path, local_files_only=True)
    inputs = extractor(x.numpy(), sampling_rate=16000, return_tensors="pt")
    with torch.no_grad():
        ref = model(inputs.input_values).last_hidden_state[0]
    torch.testing.assert_close(fe(x), ref, rtol=0, atol=1e-5)
    fe_cls(do_normalize=False).save_pretrained(tmp_path)
    assert load_hf(tmp_path).normalize is False


def test_extract_and_short_input(saved):
    model, folder = saved["wavlm"]
    fe = load_hf(folder, normalize=False)
    waves = [_wave(16000, 1), _wave(5000, 2), _wave(200, 3)]
    outs = fe.extract(waves)
    assert [o.shape[0] for o in outs] == [49, 15, 1]
    torch.testing.assert_close(outs[1], _reference(model, waves[1]).last_hidden_state[0], rtol=0, atol=1e-6)


def test_layer_choice_errors(saved):
    _, folder = saved["hubert"]
    for bad in (3, -4, "first", 1.5):
        with pytest.raises(InputError, match="layer"):
            load_hf(folder, layer=bad)
    assert load_hf(folder, layer="2").layer == 2


def _edit_safetensors(folder: Path, edit) -> None:
    from safetensors.torch import load_file, save_file

    state = load_file(folder / "model.safetensors")
    edit(state)
    save_file(state, folder / "model.safetensors", metadata={"format": "pt"})


def test_hf_loading_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_hf(tmp_path / "nope")
    (tmp_path / "file.bin").write_bytes(b"x")
    with pytest.raises(InputError, match="not a directory"):
        load_hf(tmp_path / "file.bin")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no config.json"):
        load_hf(empty)
    (empty / "model.pt").write_bytes(b"x")
    with pytest.raises(InputError, match="features"):  # a FunASR/fairseq folder gets a pointer to the docs
        load_hf(empty)
    (empty / "config.json").write_text("{not json")
    with pytest.raises(InputError, match="JSON"):
        load_hf(empty)
    (empty / "config.json").write_text('{"a":' * 50_000 + "1" + "}" * 50_000)  # deeper than json can recurse
    with pytest.raises(InputError, match="nested"):
        load_hf(empty)
    (empty / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(InputError, match="not supported"):
        load_hf(empty)

    folder = tmp_path / "w2v"
    _tiny("wav2vec2").save_pretrained(folder)
    (folder / "model.safetensors").rename(tmp_path / "keep.safetensors")
    with pytest.raises(InputError, match="no weights"):
        load_hf(folder)
    (folder / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(InputError, match="cannot load"):
        load_hf(folder)
    (tmp_path / "keep.safetensors").rename(folder / "model.safetensors")
    _edit_safetensors(folder, lambda s: s.pop("encoder.layers.0.attention.k_proj.weight"))
    with pytest.raises(InputError, match="lack"):
        load_hf(folder)
    _edit_safetensors(folder, lambda s: s.__setitem__("encoder.layers.0.attention.k_proj.weight", torch.zeros(3, 3)))
    with pytest.raises(InputError, match="shapes"):
        load_hf(folder)


def test_layer_weighted_sum():
    lws = LayerWeightedSum(3)
    stacked = torch.randn(2, 3, 5, 4)
    torch.testing.assert_close(lws(stacked), stacked.mean(1))  # equal weights at start
    lws(stacked).sum().backward()
    assert lws.logits.grad is not None
    assert torch.allclose(lws.weights().sum(), torch.tensor(1.0))
    with pytest.raises(ValueError):
        lws(torch.randn(4, 5, 4))


# ---------------------------------------------------------------- torchaudio bundles

@pytest.mark.parametrize("model_type", ["wav2vec2", "wavlm"])
def test_key_map_is_a_bijection(model_type):
    model = _tiny(model_type)
    wavlm = model_type == "wavlm"
    state = model.state_dict()
    for key in state:
        ta = hf_key_to_torchaudio(key, wavlm=wavlm)
        if ta is None:
            assert key == "masked_spec_embed"
            continue
        assert ta.startswith(tuple(dst for _, dst in KEY_PREFIXES))
        assert torchaudio_key_to_hf(ta, wavlm=wavlm) == key
    ta_state = hf_to_torchaudio_state(state, wavlm=wavlm)
    assert "encoder.transformer.pos_conv_embed.conv.weight_g" in ta_state  # torchaudio's published naming
    if wavlm:
        assert "encoder.transformer.layers.1.attention.attention.in_proj_weight" in ta_state
        assert "encoder.transformer.layers.0.attention.attention.out_proj.bias" in ta_state
        assert not any(".q_proj." in k for k in ta_state)
    back, is_wavlm = torchaudio_to_hf_state(ta_state)
    assert is_wavlm == wavlm
    assert set(back) == set(state) - {"masked_spec_embed"}
    for key, value in back.items():
        assert torch.equal(value, state[key]), key


def _save_bundle(model: torch.nn.Module, path: Path, wavlm: bool, rename=None) -> Path:
    state = hf_to_torchaudio_state(model.state_dict(), wavlm=wavlm)
    if rename:
        state = rename(state)
    torch.save(state, path)
    return path


@pytest.mark.parametrize(
    "model_type, extra",
    [
        ("wav2vec2", {}),
        ("wavlm", {}),
        ("wav2vec2", {"feat_extract_norm": "layer", "do_stable_layer_norm": True, "conv_bias": True}),
        ("wavlm", {"feat_extract_norm": "layer", "do_stable_layer_norm": True}),
    ],
)
def test_torchaudio_bundle_outputs_equal_original(tmp_path, model_type, extra):
    model = _tiny(model_type, **extra)
    wavlm = model_type == "wavlm"
    path = _save_bundle(model, tmp_path / "bundle.pth", wavlm)
    if not wavlm:  # 32 is no bundle size: num_heads comes from the sidecar (WavLM stores it in shapes)
        (tmp_path / "bundle.json").write_text(json.dumps({"num_heads": 4}))
    x = _wave()
    ref = _reference(model, x)
    fe = build_frontend(f"torchaudio:{path}", layer="all", normalize=False)
    torch.testing.assert_close(fe(x), torch.stack(ref.hidden_states, 1)[0], rtol=0, atol=1e-6)
    assert fe.frame_rate == 50.0 and fe.dim == 32
    arch = fe.spec["arch"]
    assert arch["family"] == ("wavlm" if wavlm else "wav2vec2") and arch["num_heads"] == 4
    assert arch["layer_norm_first"] == bool(extra)
    # the spec alone rebuilds it (no sidecar needed), and normalisation defaults like torchaudio's bundles
    (tmp_path / "bundle.json").unlink(missing_ok=True)
    again = build_frontend(json.loads(json.dumps(fe.spec)))
    torch.testing.assert_close(again(x), fe(x))
    assert load_torchaudio(path, arch={"num_heads": 4}).normalize == bool(extra)


def test_torchaudio_weight_norm_namings_and_aux(tmp_path):
    model = _tiny("wav2vec2")
    x = _wave(8000)
    ref = _reference(model, x).last_hidden_state[0]
    pre = "encoder.transformer.pos_conv_embed.conv."

    def parametrized(s):  # torchaudio >= 2.1 saves torch.nn.utils.parametrizations names
        s[pre + "parametrizations.weight.original0"] = s.pop(pre + "weight_g")
        s[pre + "parametrizations.weight.original1"] = s.pop(pre + "weight_v")
        s["aux.weight"], s["aux.bias"] = torch.zeros(29, 32), torch.zeros(29)  # ASR head: ignored
        return s

    def plain(s):  # weight norm folded into the weight
        g, v = s.pop(pre + "weight_g"), s.pop(pre + "weight_v")
        s[pre + "weight"] = g * v / v.norm(dim=(0, 1), keepdim=True)
        return s

    for rename in (parametrized, plain):
        path = _save_bundle(model, tmp_path / f"{rename.__name__}.pth", False, rename)
        y = load_torchaudio(path, arch={"num_heads": 4}, normalize=False)(x)
        torch.testing.assert_close(y, ref, rtol=0, atol=1e-5)


def test_torchaudio_errors(tmp_path):
    model = _tiny("wav2vec2")
    good = _save_bundle(model, tmp_path / "good.pth", False)
    with pytest.raises(InputError, match="num_heads"):
        load_torchaudio(good)
    with pytest.raises(InputError, match="unknown key"):
        load_torchaudio(good, arch={"heads": 4})
    with pytest.raises(InputError, match="family"):
        load_torchaudio(good, arch={"num_heads": 4, "family": "wavlm"})
    with pytest.raises(InputError, match="not found"):
        load_torchaudio(tmp_path / "missing.pth")
    with pytest.raises(InputError, match="not a file"):
        load_torchaudio(tmp_path)

    (tmp_path / "text.pth").write_text("hello")
    with pytest.raises(InputError, match="not a PyTorch checkpoint"):
        load_torchaudio(tmp_path / "text.pth")
    torch.save({"cfg": argparse.Namespace(a=1), "model": {}}, tmp_path / "fairseq.pt")
    with pytest.raises(InputError, match="weights_only"):
        load_torchaudio(tmp_path / "fairseq.pt")
    torch.save({"epoch": 3, "lr": 0.1}, tmp_path / "meta.pth")
    with pytest.raises(InputError, match="not a state dict"):
        load_torchaudio(tmp_path / "meta.pth")

    state = torch.load(good, weights_only=True)
    wrapped = tmp_path / "wrapped.pth"
    torch.save({"state_dict": state}, wrapped)  # a common wrapper is unwrapped
    assert load_torchaudio(wrapped, arch={"num_heads": 4}).dim == 32

    missing = dict(state)
    missing.pop("encoder.transformer.layers.1.feed_forward.output_dense.bias")
    torch.save(missing, tmp_path / "missing_key.pth")
    with pytest.raises(InputError, match="lacks"):
        load_torchaudio(tmp_path / "missing_key.pth", arch={"num_heads": 4})
    extra = {**state, "encoder.transformer.extra.weight": torch.zeros(2)}
    torch.save(extra, tmp_path / "extra.pth")
    with pytest.raises(InputError, match="unexpected parameter"):
        load_torchaudio(tmp_path / "extra.pth", arch={"num_heads": 4})
    bad_shape = {**state, "encoder.transformer.layers.0.attention.k_proj.weight": torch.zeros(32, 31)}
    torch.save(bad_shape, tmp_path / "shape.pth")
    with pytest.raises(InputError, match="inconsistent"):
        load_torchaudio(tmp_path / "shape.pth", arch={"num_heads": 4})
    partial = {k: v for k, v in state.items() if not k.startswith("encoder.transformer.layers")}
    torch.save(partial, tmp_path / "partial.pth")
    with pytest.raises(InputError, match="not a torchaudio"):
        load_torchaudio(tmp_path / "partial.pth", arch={"num_heads": 4})

    odd = _tiny("wav2vec2", conv_dim=(16, 16), conv_kernel=(8, 4), conv_stride=(4, 2))
    odd_path = _save_bundle(odd, tmp_path / "odd.pth", False)
    with pytest.raises(InputError, match="conv_stride"):
        load_torchaudio(odd_path, arch={"num_heads": 4})
    fe = load_torchaudio(odd_path, arch={"num_heads": 4, "conv_stride": [4, 2]}, normalize=False)
    assert fe.frame_rate == 2000.0
    torch.testing.assert_close(fe(_wave(800)), _reference(odd, _wave(800)).last_hidden_state[0], rtol=0, atol=1e-6)
