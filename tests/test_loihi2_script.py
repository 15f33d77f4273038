"""The bundle's run_loihi2.py: self-contained (no ptsnn), usage and one-line errors, and - run with --sim on
the payloads `ptsnn run --save-payloads` writes - the same readout as ptsnn's own Lava backend."""

import ast
import json
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from ptsnn.testing import synthetic_bundle

# Runs the script with every `import ptsnn` failing: proves it needs nothing from ptsnn.
NO_PTSNN = "import runpy, sys; sys.modules['ptsnn'] = None; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"


def run_script(script, *args, timeout=300):
    return subprocess.run([sys.executable, "-c", NO_PTSNN, str(script), *map(str, args)], capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    from ptsnn.data.audio import save_audio
    from ptsnn.data.synthetic import SyntheticCorpusConfig, generate_utterance

    root = tmp_path_factory.mktemp("loihi2")
    bundle = synthetic_bundle(root, ["model.hidden=16", "model.key_dim=8", "model.value_dim=4", "model.prompts=2",
                                     "model.input_dim=16", "frontend.n_mels=16"], speakers=(0,), max_samples=6400)
    wav = root / "a.wav"
    save_audio(wav, generate_utterance(SyntheticCorpusConfig(), 3, "happy", 0)[:4800], 16000)
    return bundle, wav


def invoke_run(bundle, wav, out):
    from ptsnn.cli._app import new_app
    from ptsnn.cli.deploy_cmd import run

    app = new_app("t", "test")
    app.command("run")(run)
    app.command("noop")(lambda: None)
    return CliRunner().invoke(app, ["run", str(bundle), str(wav), str(wav), "--backend", "fast",
                                    "--save-payloads", str(out)])


def saved_payloads(bundle, wav, out):
    r = invoke_run(bundle, wav, out)
    assert r.exit_code == 0, (r.output, r.exception)
    return sorted(out.glob("*.npy"))


def test_script_imports_only_lava_numpy_h5py_and_the_standard_library(made):
    bundle, _ = made
    tree = ast.parse((bundle / "run_loihi2.py").read_text())
    roots = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    roots |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert roots - set(sys.stdlib_module_names) == {"lava", "numpy", "h5py"}


def test_usage_and_one_line_errors(made, tmp_path):
    bundle, wav = made
    script = bundle / "run_loihi2.py"
    r = run_script(script)
    assert r.returncode == 2 and "usage: run_loihi2.py" in r.stderr and "--sim" in r.stderr
    assert "--save-payloads" in r.stderr
    payloads = saved_payloads(bundle, wav, tmp_path / "p")
    assert [p.name for p in payloads] == ["a-2.npy", "a.npy"]  # one per utterance, repeated stems numbered
    p = np.load(payloads[1])
    assert p.dtype == np.int64 and p.ndim == 2 and p.shape[1] == 16 and np.abs(p).max() > 0
    from ptsnn.errors import InputError

    r = invoke_run(bundle, wav, wav / "sub")  # a folder inside a file
    assert isinstance(r.exception, InputError) and "--save-payloads" in str(r.exception)
    r = run_script(script, payloads[1])  # hardware run without lava-loihi
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "lava-loihi" in r.stderr and not r.stdout
    np.save(tmp_path / "bad.npy", np.zeros((5, 3)))
    r = run_script(script, tmp_path / "bad.npy", "--sim")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "bad.npy: payload shape (5, 3)" in r.stderr


@pytest.mark.lava
def test_script_sim_readout_equals_ptsnn_lava_backend(made, tmp_path):
    from ptsnn.deploy.bundle_io import load_bundle
    from ptsnn.deploy.run import chip_run, classify

    bundle, wav = made
    payload_file = saved_payloads(bundle, wav, tmp_path / "p")[1]
    r = run_script(bundle / "run_loihi2.py", payload_file, "--sim", "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    b = load_bundle(bundle)
    payload = np.load(payload_file)
    lava = chip_run(b, [payload], "lava", timeout_s=300)[0]
    assert got["readout"] == lava["readout"].tolist() and got["steps"] == lava["steps"]
    assert np.abs(lava["readout"]).max() > 0  # a silent readout would prove nothing
    expect = classify(b, [payload], ["a"], "fast")[0]  # fast == Lava, bit for bit
    assert got["label"] == expect.label and np.allclose(got["logits"], expect.logits, rtol=0, atol=1e-12)


# ------------------------------------------------------------------------------------------- TTFS bundles
@pytest.fixture(scope="module")
def ttfs_made(tmp_path_factory):
    """A tiny TTFS conv bundle on grey frames (conv + max pool + dense: fire-once LIFs, Lava Conv, the
    timing input, the voltage readout) and one sequence folder."""
    from PIL import Image

    root = tmp_path_factory.mktemp("loihi2-ttfs")
    env = {**__import__("os").environ, "OMP_NUM_THREADS": "1"}
    ptsnn = [sys.executable, "-m", "ptsnn.cli.main"]
    r = subprocess.run([*ptsnn, "train", "--model", "ttfs", "--data", "synthetic-eye", "--out", str(root / "run"),
                        "--epochs", "1", "-q", "--set", "data.subjects=6", "--set", "data.takes=1",
                        "--set", "data.frames=4", "--set", "data.size=8", "--set", "data.channels=frame",
                        "--set", "ttfs.conv=[{\"out_channels\": 2, \"kernel\": 3, \"pool\": \"max\"}]",
                        "--set", "ttfs.dense=[4]", "--set", "ttfs.steps_per_window=3"],
                       capture_output=True, text=True, timeout=240, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    bundle = root / "bundle"
    r = subprocess.run([*ptsnn, "convert", str(root / "run" / "ttfs.pt"), "--target", "loihi2", "--out", str(bundle)],
                       capture_output=True, text=True, timeout=240, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    seq = root / "seq"
    seq.mkdir()
    rng = np.random.default_rng(1)
    for i in range(5):
        Image.fromarray(rng.integers(0, 255, (12, 12), dtype=np.uint8)).save(seq / f"{i:05d}.png")
    return bundle, seq


def test_ttfs_payloads_and_one_line_errors(ttfs_made, tmp_path):
    bundle, seq = ttfs_made
    payload_file = saved_payloads(bundle, seq, tmp_path / "p")[0]
    from ptsnn.deploy.bundle_io import load_bundle

    graph = load_bundle(bundle).graph
    p = np.load(payload_file)
    assert p.shape == (graph.meta["steps"], graph.inputs[0].size) and set(np.unique(p)) <= {0, 1}
    assert (p.sum(0) == 1).all()  # every input neuron spikes once per inference
    np.save(tmp_path / "long.npy", np.zeros((p.shape[0] + 1, p.shape[1]), np.int64))
    r = run_script(bundle / "run_loihi2.py", tmp_path / "long.npy", "--sim")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "TTFS payload" in r.stderr


@pytest.mark.lava
def test_ttfs_script_sim_equals_the_fast_simulator(ttfs_made, tmp_path):
    """run_loihi2.py --sim on a TTFS bundle: the readout voltages (hence the label) of ptsnn's fast simulator,
    which equals the quantized TTFS PyTorch network spike step for spike step (tests/test_ttfs_chip.py)."""
    from ptsnn.deploy.bundle_io import load_bundle
    from ptsnn.deploy.run_ttfs import classify_sequences
    from ptsnn.train import ttfs_chip
    from ptsnn.chip.simulator import simulate

    bundle, seq = ttfs_made
    payload_file = saved_payloads(bundle, seq, tmp_path / "p")[0]
    r = run_script(bundle / "run_loihi2.py", payload_file, "--sim", "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    b = load_bundle(bundle)
    x = np.load(payload_file)[None]
    run = simulate(b.graph, {"input": x, "timing": ttfs_chip.timing_payload(b.graph, 1)}, record_voltage=True)
    expect = ttfs_chip.readout_potential(b.graph, run.voltages)[0]
    assert got["readout"] == expect.tolist() and got["steps"] == b.graph.meta["steps"]
    assert np.abs(expect).max() > 0
    fast = classify_sequences(b, [seq], "fast")[0]
    assert got["label"] == fast.label and np.allclose(got["logits"], fast.logits, rtol=0, atol=1e-12)
