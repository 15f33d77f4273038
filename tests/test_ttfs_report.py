"""The report on TTFS graphs: conv synaptic events counted through the real taps (by hand), fire-once checked
and a violation flagged, first-spike histograms equal to the integer recurrence's spike steps, latency and
energy per inference beside TNAS-ER's published figures; the CLI on a tiny trained eye bundle."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from ptsnn.chip.ir import ChipGraph, ConvSynapses, CubaPopulation, FireOncePopulation, HostInput, Synapses
from ptsnn.report import build_report, report_bundle
from ptsnn.report.collect import ActivityCollector, dense_synapses
from ptsnn.report.energy import TNAS_ER_REFERENCE

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg", "COLUMNS": "200"}


# -------------------------------------------------------------------------------- conv counting by hand
def _conv_graph(weight_exp: int = 0) -> ChipGraph:
    """in (1 x 3 x 3 spikes) --conv 2x2, padding 1 (4 x 4 outputs)--> C; in --dense (exp 2)--> D."""
    w = np.array([[[[1, 0], [2, 3]]]])  # three non-zero taps of four
    conv = ConvSynapses("in->C", "in", "C", w, (1, 3, 3), (1, 4, 4), padding=(1, 1))
    dense = Synapses("in->D", "in", "D", np.ones((2, 9), np.int64), np.zeros((2, 9), np.int64), weight_exp)
    pops = [CubaPopulation("C", 16, 0, 0, 100, np.zeros(16)), CubaPopulation("D", 2, 0, 0, 100, np.zeros(2))]
    return ChipGraph([HostInput("in", 9, 0)], pops, [], [conv, dense])


def test_conv_synaptic_events_go_through_the_real_taps():
    g = _conv_graph(weight_exp=2)
    # 2x2 kernel, padding 1, stride 1 on 3x3: every output position (4 x 4) sees the taps inside the input:
    # corners 1, edges 2, inner 4 -> 4*1 + 8*2 + 4*4 = 36 (position, tap) pairs; the kernel has 4 entries
    assert dense_synapses(g.synapses[0]) == 36
    payload = np.zeros((3, 9), np.int64)
    payload[0, 0] = 1  # the top-left input spikes at step 0
    payload[1, 4] = 1  # the centre input spikes at step 1
    c = ActivityCollector(g)
    c.add("u", payload, {"C": np.zeros((3, 16), bool), "D": np.zeros((3, 2), bool)})
    counts = c.utterances[0].layers
    # top-left input (0, 0) lies under output (i, j) at tap (0 - i + 1, 0 - j + 1): outputs (0,0) tap (1,1)=3,
    # (0,1) tap (1,0)=2, (1,0) tap (0,1)=0 (no synapse), (1,1) tap (0,0)=1 -> 3 synaptic events;
    # the centre input (1, 1) reaches every tap of outputs (1..2, 1..2): the 3 non-zero taps -> 3 events
    assert counts["C"]["effective_acs"] == 3 + 3
    assert int(g.synapses[0].fan_out()[0]) == 3 and int(g.synapses[0].fan_out()[4]) == 3
    assert counts["C"]["dense_ops"] == 36 * 3  # (position, tap) pairs x steps, not kernel entries x steps
    assert counts["C"]["paper_acs"] == 6
    # a dense group with weight_exp 2 delivers one operation per spike and synapse, not 2**2
    assert counts["D"]["effective_acs"] == 2 * 2 and counts["D"]["dense_ops"] == 18 * 3
    rep = build_report(g, c, ["loihi2"])
    row = {r["name"]: r for r in rep.data["layers"]}["C"]
    assert row["dense_synapses"] == 36 and row["synapses"] == int(g.synapses[0].count()) == 27
    assert row["connection_sparsity"] == pytest.approx(1 - 27 / 36)
    assert rep.data["metrics"]["ConnectionSparsity"]["value"] == pytest.approx(1 / (4 + 18))  # one zero entry


# ---------------------------------------------------------------------------------- TTFS graph reports
@pytest.fixture(scope="module")
def ttfs_case():
    from ptsnn.deploy.ttfs_inputs import sample_payloads
    from ptsnn.testing import random_ttfs
    from ptsnn.train.ttfs_integer import quantize_ttfs

    net, x, windows = random_ttfs(seed=0, batch=5, steps_per_window=6)
    grid = quantize_ttfs(net, windows)
    graph = grid.chip_graph()
    bundle = SimpleNamespace(graph=graph, flush_steps=0, manifest={}, path="tiny-ttfs")
    payloads = sample_payloads(graph, grid.quantize_input(x).numpy().astype(np.int64))
    rep = report_bundle(bundle, payloads, [f"clip{i}" for i in range(len(x))], ["loihi2", "cmos45nm"],
                        estimate="paper", backend="fast")
    return grid, x, graph, rep


def test_ttfs_report_first_spikes_equal_the_integer_recurrence(ttfs_case):
    grid, x, graph, rep = ttfs_case
    t = rep.data["ttfs"]
    k = grid.k
    assert t["fire_once_ok"] and t["steps_per_window"] == k and t["steps_per_inference"] == graph.meta["steps"]
    quant = grid.spike_times(x)  # first-spike steps per layer from the torch recurrence
    fire_once = [layer for layer in grid.layers if layer.kind != "readout"]
    assert [r["name"] for r in t["layers"]] == [layer.name for layer in fire_once]
    for r, layer in zip(t["layers"], fire_once):
        steps = quant[layer.name].flatten().numpy().astype(np.int64) - layer.window_start
        assert r["first_spike"]["counts"] == np.bincount(steps, minlength=k + 1).tolist()
        assert r["first_spike"]["early"] == r["first_spike"]["late"] == 0
        assert r["max_spikes_per_neuron"] == 1 and r["multi_spike_neurons"] == 0 and r["never_spiked_neurons"] == 0
        assert r["spikes"] == r["neurons"] * len(x) and r["window"] == [layer.window_start, layer.window_start + k]
    assert rep.data["data"]["sample_unit"] == "inference"


def test_ttfs_report_latency_energy_and_the_published_reference(ttfs_case, tmp_path):
    _, _, graph, rep = ttfs_case
    t = rep.data["ttfs"]
    assert t["reference"]["latency_ms"] == 48.0 and t["reference"]["energy_mj"] == 50.0
    assert "2512.02459" in t["reference"]["source"]
    loihi2 = next(c for c in t["comparison"] if c["profile"] == "loihi2")
    # latency = chip steps of one inference x loihi2's timing.time_step_us (10 us, a proxy)
    assert loihi2["latency_ms"] == pytest.approx(graph.meta["steps"] * 10.0 / 1e3) and loihi2["latency_proxy"]
    assert "timing.time_step_us" in loihi2["latency_from"]
    assert loihi2["energy_mj"] == pytest.approx(rep.data["profiles"]["loihi2"]["energy"]["per_utterance_pj"] / 1e9)
    assert rep.data["estimate"]["paper"]["reference"]["energy_mj"] == TNAS_ER_REFERENCE["energy_mj"]
    # host part: clip encoding and quantization once per inference, not LayerNorm per frame
    stages = [s["stage"] for s in rep.data["host"]["stages"]]
    assert rep.data["host"]["frames_per_utterance"] == 1 and not any("LayerNorm" in s for s in stages)
    written = rep.write(tmp_path, ("json", "md", "html"))
    md = (tmp_path / "report.md").read_text()
    assert "TNAS-ER" in md and "plots/first_spike_times.png" in md and "per inference" in md
    assert (tmp_path / "plots" / "first_spike_times.png").stat().st_size > 1000
    assert json.loads((tmp_path / "report.json").read_text())["ttfs"]["fire_once_ok"] is True
    assert len(written) == 3 + 5


def test_a_neuron_firing_twice_is_reported_as_a_violation(ttfs_case):
    grid, x, graph, rep = ttfs_case
    from ptsnn.deploy.ttfs_inputs import sample_payloads

    payloads = sample_payloads(graph, grid.quantize_input(x[:1]).numpy().astype(np.int64))
    steps = graph.meta["steps"]
    spikes = {p.name: np.zeros((steps, p.size), bool) for p in graph.populations}
    first = graph.populations[0]
    assert isinstance(first, FireOncePopulation)
    spikes[first.name][graph.meta["layers"][0]["window_start"], :] = True
    spikes[first.name][steps - 1, 3] = True  # neuron 3 fires again
    bad = build_report(graph, [spikes], ["loihi2"], payloads=payloads, names=["clip0"])
    t = bad.data["ttfs"]
    assert not t["fire_once_ok"] and t["violations"] == [first.name]
    row = t["layers"][0]
    assert row["max_spikes_per_neuron"] == 2 and row["multi_spike_neurons"] == 1 and row["first_spike"]["late"] == 0
    from ptsnn.report.markdown import render_markdown

    assert "VIOLATION" in render_markdown(bad.data, [])


# ------------------------------------------------------------------------------------------------ CLI
def _ptsnn(*args, timeout=240):
    return subprocess.run([sys.executable, "-m", "ptsnn.cli.main", *args], capture_output=True, text=True,
                          timeout=timeout, env=ENV)


@pytest.fixture(scope="module")
def eye_bundle(tmp_path_factory):
    """A tiny trained TTFS conv bundle on grey frames, and a sequence folder of numbered frames."""
    from PIL import Image

    root = tmp_path_factory.mktemp("ttfs-report")
    out = root / "run"
    r = _ptsnn("train", "--model", "ttfs", "--data", "synthetic-eye", "--out", str(out), "--epochs", "1", "-q",
               "--set", "data.subjects=6", "--set", "data.takes=1", "--set", "data.frames=4", "--set", "data.size=8",
               "--set", "data.channels=frame",
               "--set", "ttfs.conv=[{\"out_channels\": 3, \"kernel\": 3, \"pool\": \"max\"}]",
               "--set", "ttfs.dense=[6]", "--set", "ttfs.steps_per_window=4")
    assert r.returncode == 0, r.stderr[-2000:]
    bundle = root / "bundle"
    assert _ptsnn("convert", str(out / "ttfs.pt"), "--target", "loihi2", "--out", str(bundle)).returncode == 0
    seq = root / "sequences" / "seq_a"
    seq.mkdir(parents=True)
    rng = np.random.default_rng(2)
    for i in range(6):
        Image.fromarray(rng.integers(0, 255, (10, 10), dtype=np.uint8)).save(seq / f"{i:05d}.png")
    return bundle, seq


def _report_cli(*args):
    """``ptsnn report`` in process (typer's runner): what the CLI does, without a Python start-up per call."""
    from typer.testing import CliRunner

    from ptsnn.cli._app import new_app
    from ptsnn.cli.report_cmd import report

    app = new_app("t", "test app")
    app.command("report")(report)
    app.command("noop")(lambda: None)
    return CliRunner().invoke(app, ["report", *map(str, args)])


def test_cli_report_on_a_trained_eye_bundle(eye_bundle, tmp_path):
    from ptsnn.errors import InputError

    bundle, seq = eye_bundle
    rep = tmp_path / "rep"
    r = _report_cli(bundle, "--out", rep, "--data", "synthetic-eye", "--limit", "4", "--profile", "loihi2")
    assert r.exit_code == 0, (r.output, r.exception)
    assert "TNAS-ER, published" in r.output and "ok" in r.output
    data = json.loads((rep / "report.json").read_text())
    assert data["data"]["utterances"] == 4 and data["bundle"]["frontend"] == "ttfs_clip"
    assert data["ttfs"]["fire_once_ok"] and (rep / "plots" / "first_spike_times.png").is_file()
    # a sequence folder, and a folder of sequence folders, go through the same reader as `ptsnn run`
    for target in (seq, seq.parent):
        r = _report_cli(bundle, "--out", tmp_path / "seq", "--data", target, "--format", "json")
        assert r.exit_code == 0, (r.output, r.exception)
        assert json.loads((tmp_path / "seq" / "report.json").read_text())["data"]["names"] == ["seq_a"]
    r = _report_cli(bundle, "--out", rep, "--data", tmp_path / "nowhere")
    assert isinstance(r.exception, InputError) and "nowhere" in str(r.exception)
    (seq.parent / "seq_b").mkdir()
    (seq.parent / "seq_b" / "00000.png").write_bytes(b"not an image")
    r = _report_cli(bundle, "--out", rep, "--data", seq.parent)
    assert isinstance(r.exception, InputError) and "00000.png" in str(r.exception)
    r = _report_cli(bundle, "--out", rep, "--backend", "loihi9")
    assert isinstance(r.exception, InputError) and "--backend" in str(r.exception)
    # the real command line: one-line error, exit code 2
    r = _ptsnn("report", str(bundle), "--out", str(rep), "--data", str(tmp_path / "nowhere"))
    assert r.returncode == 2 and "nowhere" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow  # the demo test runs Lava on a TTFS bundle in the default suite already
@pytest.mark.lava
def test_report_on_lava_counts_what_the_fast_simulator_counts(eye_bundle):
    from ptsnn.deploy.bundle_io import load_bundle
    from ptsnn.report.inputs import ttfs_payloads

    bundle, _ = eye_bundle
    b = load_bundle(bundle)
    payloads, names, _ = ttfs_payloads(b, "synthetic-eye", 2)
    fast = report_bundle(b, payloads, names, ["loihi2"], backend="fast").data
    lava = report_bundle(b, payloads, names, ["loihi2"], backend="lava", timeout_s=300).data
    assert lava["data"]["backend"] == "lava" and lava["spike_counts"] == fast["spike_counts"]
    assert lava["ttfs"]["layers"] == fast["ttfs"]["layers"]
    assert [r["counts"] for r in lava["layers"]] == [r["counts"] for r in fast["layers"]]


def test_eye_data_options_follow_the_source_kind():
    from ptsnn.deploy.ttfs_inputs import data_options_for
    from ptsnn.errors import InputError
    from ptsnn.train.ttfs_config import TTFSConfig

    cfg = TTFSConfig(frame_channels=3, frame_size=(8, 8))
    trained = dict(spec="synthetic-eye", subjects=6, takes=1, frames=4, size=8)
    assert data_options_for(cfg, trained, "synthetic-eye") == dict(subjects=6, takes=1, frames=4, size=8)
    # synthetic-only options mean nothing to a SEE folder: the frame size and channels the network needs
    assert data_options_for(cfg, trained, "see:/data/SEE") == dict(size=8, channels="frame+event")
    with pytest.raises(InputError, match="square frames"):
        data_options_for(TTFSConfig(frame_channels=1, frame_size=(8, 6)))
