"""ptsnn-convert end to end on a small checkpoint: bundle contents, hashes, determinism, netx readable by netx
and bit-exact against the chip IR, clean failures."""

import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from ptsnn.convert.bundle import convert_checkpoint
from ptsnn.chip.ir import ChipGraph
from ptsnn.deploy import fastsim
from ptsnn.chip.simulator import simulate_chip
from ptsnn.errors import DesignRuleError
from ptsnn.formats.netx import read_netx
from ptsnn.hw_profiles import load_profile
from ptsnn.train.checkpoint import save_checkpoint
from ptsnn.train.config import load_config
from ptsnn.train.model import PTSSNN

LABELS = {"angry": 0, "happy": 1, "neutral": 2, "sad": 3}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    cfg = load_config("small", ["model.input_dim=20", "model.hidden=24", "model.key_dim=8", "model.value_dim=6",
                                "model.prompts=2", "model.shift_div=4"])
    cfg.frontend = {"kind": "features", "dim": 20, "dir": "unused"}
    torch.manual_seed(1)
    model = PTSSNN(cfg.model)
    model.data_init(torch.randn(4, 50, 20) * 2)
    path = tmp_path_factory.mktemp("ckpt") / "model.pt"
    save_checkpoint(path, model, cfg, LABELS, cfg.frontend)
    calib = path.parent / "calib.npz"
    np.savez(calib, features=np.random.default_rng(0).normal(0, 2, (3, 40, 20)).astype(np.float32))
    return path, calib


def test_bundle_contents_hashes_and_determinism(checkpoint, tmp_path):
    ckpt, calib = checkpoint
    res = convert_checkpoint(ckpt, load_profile("loihi2"), tmp_path / "b1", emit=("netx",), calib=calib)
    manifest = json.loads((tmp_path / "b1" / "manifest.json").read_text())
    assert manifest["format"] == "ptsnn-bundle"
    assert manifest["source"]["sha256"] == hashlib.sha256(ckpt.read_bytes()).hexdigest()
    assert set(manifest["files"]) >= {"chip_graph.json", "chip_graph.h5", "netx/chip_prefix.net", "conversion_report.json"}
    for rel, digest in manifest["files"].items():
        assert hashlib.sha256((tmp_path / "b1" / rel).read_bytes()).hexdigest() == digest
    assert manifest["netx"]["layers"] == ["in_proj", "enc.0", "enc.1"]
    layers = {row["layer"]: row for row in res.report["layers"]}
    assert layers["enc.0"]["max_delay"] == 2 and layers["in_proj"]["where"] == "netx" and "smape" in layers["key"]
    convert_checkpoint(ckpt, load_profile("loihi2"), tmp_path / "b2", emit=("netx",), calib=calib)
    for rel in manifest["files"]:
        assert (tmp_path / "b1" / rel).read_bytes() == (tmp_path / "b2" / rel).read_bytes(), rel
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_netx_prefix_equals_chip_ir_and_loads_in_netx(checkpoint, tmp_path):
    ckpt, _ = checkpoint
    convert_checkpoint(ckpt, load_profile("loihi2"), tmp_path / "b", emit=("netx",))
    graph = ChipGraph.from_dir(tmp_path / "b")
    net_path = tmp_path / "b" / "netx" / "chip_prefix.net"
    payload = np.random.default_rng(3).integers(-31, 32, size=(2, 30, 20))
    chip = simulate_chip(graph, payload)
    fast = fastsim.simulate(read_netx(net_path), payload.transpose(0, 2, 1), input_message_bits=6)
    for i, name in enumerate(["in_proj", "enc.0", "enc.1"]):
        assert np.array_equal(fast.layer_spikes[i], chip.spikes[name]), name
    assert chip.spikes["enc.1"].any()
    code = ("from ptsnn import compat; compat.apply(); from lava.lib.dl.netx import hdf5; "
            f"n = hdf5.Network(net_config={str(net_path)!r}, input_message_bits=6); print(len(n.layers))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "3"


@pytest.mark.lava
def test_netx_prefix_runs_bit_exact_in_lava(checkpoint, tmp_path):
    from ptsnn.deploy import lava_runner

    ckpt, _ = checkpoint
    convert_checkpoint(ckpt, load_profile("loihi2"), tmp_path / "b", emit=("netx",))
    graph = ChipGraph.from_dir(tmp_path / "b")
    payload = np.random.default_rng(4).integers(-31, 32, size=(1, 25, 20))
    chip = simulate_chip(graph, payload)
    lava = lava_runner.run_netx(tmp_path / "b" / "netx" / "chip_prefix.net", payload.transpose(0, 2, 1),
                                input_message_bits=6, timeout_s=240)
    for i, name in enumerate(["in_proj", "enc.0", "enc.1"]):
        assert np.array_equal(lava.layer_outputs[i].transpose(0, 2, 1).astype(bool), chip.spikes[name]), name


def test_design_rule_failure_writes_nothing(checkpoint, tmp_path):
    ckpt, _ = checkpoint
    with pytest.raises(DesignRuleError, match="graded input"):
        convert_checkpoint(ckpt, load_profile("loihi1"), tmp_path / "b", emit=("netx",))
    assert list(tmp_path.iterdir()) == []


def test_cli_bad_checkpoint_exit_2_nothing_written(entry_point, tmp_path):
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"PK\x03\x04 truncated")
    r = subprocess.run([entry_point("ptsnn-convert"), str(bad), "--target", "loihi2", "-o", str(tmp_path / "out")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "model.pt" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]


def test_cli_converts_a_norse_nir_graph(entry_point, tmp_path):
    import nir
    import norse.torch as norse

    torch.manual_seed(0)
    net = norse.SequentialState(torch.nn.Linear(6, 10), norse.LIFBoxCell(), torch.nn.Linear(10, 3), norse.LIFBoxCell())
    graph = norse.to_nir(net, torch.zeros(6))
    # norse 1.1 exports 0-d parameters that nir.write rejects: expand them per neuron, as a user must
    sizes = {b: graph.nodes[a].weight.shape[0] for a, b in graph.edges if isinstance(graph.nodes[a], nir.Affine)}
    for name, node in graph.nodes.items():
        for attr, val in list(vars(node).items()):
            if attr not in ("input_type", "output_type", "metadata"):
                val = val.detach().numpy() if isinstance(val, torch.Tensor) else val
                setattr(node, attr, np.full(sizes[name], float(val)) if name in sizes and np.ndim(val) == 0 else val)
    nir.write(tmp_path / "net.nir", graph)
    r = subprocess.run([entry_point("ptsnn-convert"), str(tmp_path / "net.nir"), "--target", "loihi2", "--emit",
                        "netx,nir", "--dt", "1e-3", "--nir-convention", "norse", "-o", str(tmp_path / "b")], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert "model.nir" in manifest["files"] and "chip_graph.h5" in manifest["files"]
    g = ChipGraph.from_dir(tmp_path / "b")
    assert [p.size for p in g.populations] == [10, 3]


def test_all_writers_are_byte_stable(checkpoint, tmp_path):
    ckpt, calib = checkpoint
    for name in ("b1", "b2"):
        convert_checkpoint(ckpt, load_profile("loihi2"), tmp_path / name, emit=("netx", "nir", "onnx"), calib=calib)
    files = json.loads((tmp_path / "b1" / "manifest.json").read_text())["files"]
    assert {"host.onnx", "model.nir", "netx/chip_prefix.net", "run_loihi2.py"} <= set(files)
    for rel in [*files, "manifest.json"]:
        assert (tmp_path / "b1" / rel).read_bytes() == (tmp_path / "b2" / rel).read_bytes(), rel
