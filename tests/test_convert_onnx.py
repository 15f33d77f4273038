"""ONNX export of the host part (ptsnn.convert.onnx_host): onnxruntime against PyTorch, determinism, files."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from ptsnn.convert.onnx_host import build_host_module, export_host_onnx
from ptsnn.errors import InputError
from ptsnn.frontend import FbankFrontend
from ptsnn.train.config import load_config
from ptsnn.train.model import PTSSNN

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

SMALL = ["model.input_dim=16", "model.hidden=16", "model.key_dim=8", "model.value_dim=8", "model.prompts=2"]
BOUNDARY = 1e-4  # |frac(scaled) - 0.5| below this: float32 differences may round either way


def small_model(*overrides: str, seed: int = 0) -> PTSSNN:
    torch.manual_seed(seed)
    model = PTSSNN(load_config("small", [*SMALL, *overrides]).model)
    with torch.no_grad():  # a trained-looking LayerNorm, not the identity it starts as
        model.host.norm.weight.copy_(1.0 + 0.5 * torch.randn(16))
        model.host.norm.bias.copy_(0.3 * torch.randn(16))
    return model


def run_ort(path, x: torch.Tensor) -> list[np.ndarray]:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x.numpy()})


def reference(model: PTSSNN, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(payload, scaled) as the model computes them, repeated the way PTSSNN.forward does."""
    spf = model.cfg.steps_per_frame
    with torch.no_grad():
        payload = model.host(feats, True).repeat_interleave(spf, dim=1)
        scaled = (model.host(feats, False) * model.host.levels).repeat_interleave(spf, dim=1)
    return payload, scaled


def compare(model: PTSSNN, payload: np.ndarray, scaled: np.ndarray, feats: torch.Tensor) -> int:
    """Float path ``tanh(xi * LayerNorm(x))`` to 1e-5 (``scaled / levels``; observed <= 7e-7); ``scaled``
    itself (payload units, -31..31) well inside the BOUNDARY window (observed <= 2e-5, fbank included);
    payloads exact except within BOUNDARY of a .5. Returns the boundary count."""
    ref_payload, ref_scaled = (t.numpy() for t in reference(model, feats))
    assert payload.shape == ref_payload.shape and payload.dtype == np.float32
    levels = model.host.levels
    np.testing.assert_allclose(scaled / levels, ref_scaled / levels, rtol=0, atol=1e-5)
    assert np.abs(scaled - ref_scaled).max() < BOUNDARY / 2
    frac = ref_scaled - np.floor(ref_scaled)
    near = np.abs(frac - 0.5) < BOUNDARY
    mismatch = payload != ref_payload
    assert not (mismatch & ~near).any(), f"{int((mismatch & ~near).sum())} payloads differ away from a .5"
    assert np.array_equal(payload, np.round(payload)) and np.abs(payload).max() <= model.host.levels
    assert int(near.sum()) <= max(1, payload.size // 1000), f"{int(near.sum())} values near a .5 boundary"
    return int(near.sum())


def test_features_export_matches_torch(tmp_path):
    model = small_model()
    path = export_host_onnx(model, tmp_path / "host.onnx", float_output=True)
    assert path == tmp_path / "host.onnx" and sorted(os.listdir(tmp_path)) == ["host.onnx"]  # no sidecar/temp
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    assert [i.name for i in proto.graph.input] == ["features"]
    assert [o.name for o in proto.graph.output] == ["payload", "scaled"]
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["ptsnn.input"] == "features" and meta["ptsnn.frontend"] == "none"
    assert meta["ptsnn.payload_levels"] == "31" and meta["ptsnn.steps_per_frame"] == "1"
    gen = torch.Generator().manual_seed(1)
    for batch, frames in ((3, 7), (1, 1), (2, 40)):  # dynamic batch and time, not the export example's
        feats = 3.0 * torch.randn(batch, frames, 16, generator=gen) + torch.randn(16, generator=gen)
        payload, scaled = run_ort(path, feats)
        compare(model, payload, scaled, feats)
    assert len(np.unique(payload)) > 20  # the comparison covered many payload levels


def test_default_export_is_the_payload_alone(tmp_path):
    model = small_model()
    path = export_host_onnx(model, tmp_path / "host.onnx")
    proto = onnx.load(str(path))
    assert [o.name for o in proto.graph.output] == ["payload"]
    dims = [[d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
            for v in (proto.graph.input[0], proto.graph.output[0])]
    assert dims == [["batch", "frames", 16], ["batch", "steps", 16]]
    feats = 2.0 * torch.randn(2, 9, 16, generator=torch.Generator().manual_seed(2))
    (payload,) = run_ort(path, feats)
    ref_payload, ref_scaled = reference(model, feats)
    near = np.abs(ref_scaled.numpy() - np.floor(ref_scaled.numpy()) - 0.5) < BOUNDARY
    assert not ((payload != ref_payload.numpy()) & ~near).any()


def test_payload_is_what_the_quantized_model_feeds_the_chip(tmp_path):
    model = small_model("model.steps_per_frame=2")
    model.quantize()
    feats = 2.0 * torch.randn(2, 6, 16, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        chip_input = model(feats, record=True).spikes["input"][:, : 6 * 2].numpy()  # before the flush
    (payload,) = run_ort(export_host_onnx(model, tmp_path / "host.onnx"), feats)
    assert payload.shape == chip_input.shape == (2, 12, 16)
    _, ref_scaled = reference(model, feats)
    near = np.abs(ref_scaled.numpy() - np.floor(ref_scaled.numpy()) - 0.5) < BOUNDARY
    assert not ((payload != chip_input) & ~near).any()


def test_steps_per_frame_repeats_frames(tmp_path):
    model = small_model("model.steps_per_frame=2")
    path = export_host_onnx(model, tmp_path / "host.onnx", float_output=True)
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert meta["ptsnn.steps_per_frame"] == "2"
    feats = 3.0 * torch.randn(2, 5, 16, generator=torch.Generator().manual_seed(4))
    payload, scaled = run_ort(path, feats)
    assert payload.shape == (2, 10, 16)
    assert np.array_equal(payload[:, 0::2], payload[:, 1::2])  # each frame held for two steps
    compare(model, payload, scaled, feats)


def test_fbank_prefix_takes_the_waveform(tmp_path):
    model = small_model()
    fe = FbankFrontend(n_mels=16)
    path = export_host_onnx(model, tmp_path / "host.onnx", frontend=fe, float_output=True)
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    assert [i.name for i in proto.graph.input] == ["wave"]
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["ptsnn.input"] == "wave" and meta["ptsnn.frontend"] == "fbank"
    assert meta["ptsnn.frontend_spec_hash"] == fe.spec_hash()
    gen = torch.Generator().manual_seed(5)
    for batch, samples in ((2, 400 + 320 * 12 + 17), (1, 400)):
        wave = 0.1 * torch.randn(batch, samples, generator=gen)
        payload, scaled = run_ort(path, wave)
        with torch.no_grad():
            feats = fe.module(wave)
        assert payload.shape == (batch, fe.num_frames(samples), 16)
        compare(model, payload, scaled, feats)
    # a spec dict (as a checkpoint stores it) gives the same file
    again = export_host_onnx(model, tmp_path / "again.onnx", frontend=fe.spec, float_output=True)
    assert again.read_bytes() == path.read_bytes()


def test_reexport_is_byte_identical(tmp_path):
    model = small_model("model.steps_per_frame=2")
    a = export_host_onnx(model, tmp_path / "a.onnx").read_bytes()
    b = export_host_onnx(model, tmp_path / "b.onnx").read_bytes()
    clone = small_model("model.steps_per_frame=2", seed=99)
    clone.load_state_dict(model.state_dict())
    c = export_host_onnx(clone, tmp_path / "c.onnx").read_bytes()
    assert a == b == c
    other = small_model("model.steps_per_frame=2", seed=1)
    assert export_host_onnx(other, tmp_path / "d.onnx").read_bytes() != a
    assert sorted(os.listdir(tmp_path)) == ["a.onnx", "b.onnx", "c.onnx", "d.onnx"]


def test_reexport_in_a_new_process_is_byte_identical(tmp_path):
    script = textwrap.dedent(f"""
        import sys, torch
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        from test_convert_onnx import small_model
        from ptsnn.convert.onnx_host import export_host_onnx
        from ptsnn.frontend import FbankFrontend
        export_host_onnx(small_model(), sys.argv[1], frontend=FbankFrontend(n_mels=16))
    """)
    # same environment as this process: the fbank kernel is computed with numpy's BLAS, whose float64
    # rounding depends on its thread count (1-ulp differences in float32); see docs/convert_onnx.md
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "child.onnx")], check=True, timeout=120)
    here = export_host_onnx(small_model(), tmp_path / "here.onnx", frontend=FbankFrontend(n_mels=16))
    assert (tmp_path / "child.onnx").read_bytes() == here.read_bytes()


@pytest.mark.filterwarnings("ignore:.*LeafSpec.*:FutureWarning")  # inside torch.export
def test_dynamo_exporter_matches_and_is_deterministic(tmp_path):
    model = small_model("model.steps_per_frame=2")
    a = export_host_onnx(model, tmp_path / "a.onnx", dynamo=True, float_output=True)
    b = export_host_onnx(model, tmp_path / "b.onnx", dynamo=True, float_output=True)
    assert a.read_bytes() == b.read_bytes()
    assert sorted(os.listdir(tmp_path)) == ["a.onnx", "b.onnx"]  # no .onnx.data sidecar
    proto = onnx.load(str(a))
    assert not any(n.metadata_props or n.doc_string for n in proto.graph.node)  # no stack traces / paths
    dims = [[d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
            for v in (proto.graph.input[0], proto.graph.output[0])]
    assert dims == [["batch", "frames", 16], ["batch", "steps", 16]]
    feats = 3.0 * torch.randn(3, 4, 16, generator=torch.Generator().manual_seed(6))
    payload, scaled = run_ort(a, feats)
    compare(model, payload, scaled, feats)


def test_module_shares_the_model_parameters_and_keeps_its_mode(tmp_path):
    model = small_model()
    module = build_host_module(model)
    assert module.host is model.host
    assert module.host.norm.weight.data_ptr() == model.host.norm.weight.data_ptr()
    model.train()
    export_host_onnx(model, tmp_path / "host.onnx")
    assert model.training and model.host.training and model.host.norm.training


def test_other_front_ends_keep_features_input(tmp_path):
    model = small_model()
    spec = {"kind": "hf", "path": str(tmp_path / "not-there"), "sha256": "0" * 64}  # never loaded
    path = export_host_onnx(model, tmp_path / "host.onnx", frontend=spec)
    proto = onnx.load(str(path))
    meta = {p.key: p.value for p in proto.metadata_props}
    assert [i.name for i in proto.graph.input] == ["features"] and meta["ptsnn.frontend"] == "hf"


def test_bad_front_ends_are_user_errors(tmp_path):
    model = small_model()
    with pytest.raises(InputError, match="16"):
        export_host_onnx(model, tmp_path / "x.onnx", frontend=FbankFrontend(n_mels=20))
    with pytest.raises(InputError, match="unknown"):
        export_host_onnx(model, tmp_path / "x.onnx", frontend="nope")
    with pytest.raises(InputError, match="unknown"):
        export_host_onnx(model, tmp_path / "x.onnx", frontend={"kind": "nope"})
    assert os.listdir(tmp_path) == []


def test_failed_write_leaves_the_old_file(tmp_path, monkeypatch):
    model = small_model()
    path = export_host_onnx(model, tmp_path / "host.onnx")
    before = path.read_bytes()

    def boom(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError, match="disk full"):
        export_host_onnx(small_model(seed=1), path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["host.onnx"]
