"""Report: per-layer event counts, NeuroBench metrics and energy per profile, checked against hand computation
on a two-population graph; spike counts equal the simulator's; self-contained HTML; the CLI on a tiny bundle."""

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from ptsnn.chip import kernels
from ptsnn.chip.ir import ChipGraph, CubaPopulation, HostInput, Synapses
from ptsnn.chip.simulator import simulate_chip
from ptsnn.errors import InputError
from ptsnn.hw_profiles import load_profile
from ptsnn.report import build_report, collect_from_chip, report_bundle

# ------------------------------------------------------------------------------------- hand-built graph
# input (2 channels, graded) --W1--> A (2 neurons) --W2 (delays 0, 1)--> B (1 neuron).
# i_decay = 4096, v_decay = 4095 (the largest Loihi register value): no memory left after >> 12, so v[t] = a_in[t] << 6 and a neuron spikes iff a_in[t] > vth.
W1 = np.array([[3, 0], [2, -1]])
W2 = np.array([[1, 1]])
D2 = np.array([[0, 1]])
PAYLOAD_1 = np.array([[2, 0], [3, -3], [0, 1], [3, 0], [0, 0]])  # 5 steps
PAYLOAD_2 = np.zeros((3, 2), np.int64)  # 3 silent steps


def hand_graph() -> ChipGraph:
    inp = HostInput("in", 2, message_bits=4, levels=7)
    a = CubaPopulation("A", 2, i_decay=4096, v_decay=4095, vth=5, bias=np.zeros(2))
    b = CubaPopulation("B", 1, i_decay=4096, v_decay=4095, vth=0, bias=np.zeros(1))
    return ChipGraph([inp], [a, b], [], [Synapses("in->A", "in", "A", W1, np.zeros_like(W1)),
                                         Synapses("A->B", "A", "B", W2, D2)])


# By hand, utterance 1 (T = 5):
#   a_A[t] = W1 @ x[t-1]: t1 (6, 4) -> A0; t2 (9, 9) -> A0, A1; t3 (0, -1); t4 (9, 6) -> A0, A1  => 5 spikes
#   a_B[t] = sA0[t-1] + sA1[t-2]: t2 1, t3 1, t4 1 -> 3 spikes
#   input events: non-zero payload entries = 5
#   Effective_MACs into A: x0 != 0 at t0, t1, t3 (fan-out 2) + x1 != 0 at t1, t2 (fan-out 1) = 8
#   Effective_ACs into B delivered before T: A0 spikes t1, t2 (t4 arrives at t5: outside) + A1 spike t2
#     (delay 1, arrives t4; the one at t4 would arrive at t6) = 3
#   active neuron-steps: A0 at t1, t2, t4; A1 at t1, t2, t3, t4 => 7; B at t2, t3, t4 => 3
#   paper: MACs = 4 weights x 5 steps = 20; ACs = spikes x fan-out = 3 (A0) x 1 + 2 (A1) x 1 = 5
# utterance 2 (T = 3, silent): no events, only membrane updates (all idle) and dense ops.
HAND = dict(steps=8, utterances=2,
            A=dict(input_events=5, effective_macs=8, effective_acs=0, dense_ops=4 * 8, membrane_updates=2 * 8,
                   active_updates=7, output_spikes=5, paper_macs=4 * 8, paper_acs=0),
            B=dict(input_events=5, effective_macs=0, effective_acs=3, dense_ops=2 * 8, membrane_updates=1 * 8,
                   active_updates=3, output_spikes=3, paper_macs=0, paper_acs=5))


@pytest.fixture(scope="module")
def hand_report():
    return report_bundle(hand_graph(), [PAYLOAD_1, PAYLOAD_2], ["u1", "u2"],
                         ["loihi2", "cmos45nm", "xylo_audio2"], estimate="paper", data_source="hand")


def test_hand_graph_spikes_are_what_the_hand_computation_says():
    run = simulate_chip(hand_graph(), PAYLOAD_1[None])
    np.testing.assert_array_equal(run.spikes["A"][0], [[0, 0], [1, 0], [1, 1], [0, 0], [1, 1]])
    np.testing.assert_array_equal(run.spikes["B"][0, :, 0], [0, 0, 1, 1, 1])


def test_counts_match_hand_computation(hand_report):
    d = hand_report.data
    layers = {r["name"]: r for r in d["layers"]}
    assert d["data"]["total_steps"] == HAND["steps"] and d["data"]["utterances"] == 2
    assert layers["in"]["counts"]["output_events"]["total"] == 5
    for name in ("A", "B"):
        counts = layers[name]["counts"]
        for key, value in HAND[name].items():
            assert counts[key]["total"] == value, (name, key)
            assert counts[key]["per_utterance"] == value / 2
            assert counts[key]["per_step"] == value / 8
        assert counts["synaptic_ops"]["total"] == HAND[name]["effective_macs"] + HAND[name]["effective_acs"]
        assert counts["idle_updates"]["total"] == HAND[name]["membrane_updates"] - HAND[name]["active_updates"]
    assert layers["A"]["input"] == "graded" and layers["B"]["input"] == "binary"
    assert layers["A"]["synapses"] == 3 and layers["B"]["synapses"] == 2
    assert layers["A"]["firing_rate"] == 5 / (2 * 8) and layers["B"]["firing_rate"] == 3 / 8
    assert layers["A"]["activation_sparsity"] == 1 - 5 / 16
    assert d["spike_counts"] == {"A": 5, "B": 3}
    t = d["totals"]["counts"]
    assert t["effective_macs"]["total"] == 8 and t["effective_acs"]["total"] == 3
    assert t["membrane_updates"]["total"] == 24 and t["output_spikes"]["total"] == 8
    m = {k: v["value"] for k, v in d["metrics"].items()}
    assert m["SynapticOperations"] == {"Effective_MACs": 4.0, "Effective_ACs": 1.5, "Dense": 24.0}
    assert m["MembraneUpdates"] == 12.0
    assert m["ActivationSparsity"] == pytest.approx(1 - 8 / 24)
    assert m["ParameterCount"] == 6 + 3
    assert m["ConnectionSparsity"] == pytest.approx(1 / 6)
    # 6 weight bytes + 2 delay bytes (A->B has delays) + 3 biases x 2 + 2 populations x 3 params x 4
    assert m["Footprint"] == 6 + 2 + 6 + 24


def test_energy_matches_hand_computation_from_profile_numbers(hand_report):
    d = hand_report.data
    n = 2
    v = lambda prof, path: load_profile(prof).value(path)  # noqa: E731
    comp = lambda prof: {c["component"]: c for c in d["profiles"][prof]["energy"]["components"]}  # noqa: E731

    # loihi2: synaptic ops (MACs + ACs) x synaptic_op_pj; active/idle neuron updates; 1 message per event and
    # target core (A and B take one core each), 1 hop per message
    syn = (8 + 3) * v("loihi2", "energy.synaptic_op_pj") / n
    upd = ((7 + 3) * v("loihi2", "energy.neuron_update_pj") + ((16 - 7) + (8 - 3)) * v("loihi2", "energy.neuron_idle_pj")) / n
    traffic = (5 + 5) * (v("loihi2", "energy.spike_tile_pj") + v("loihi2", "energy.spike_hop_pj")) / n
    c = comp("loihi2")
    assert c["synaptic_ops"]["per_utterance_pj"] == pytest.approx(syn, rel=1e-12)
    assert c["neuron_updates"]["per_utterance_pj"] == pytest.approx(upd, rel=1e-12)
    assert c["spike_traffic"]["per_utterance_pj"] == pytest.approx(traffic, rel=1e-12)
    assert d["profiles"]["loihi2"]["energy"]["per_utterance_pj"] == pytest.approx(syn + upd + traffic, rel=1e-12)
    assert d["profiles"]["loihi2"]["energy"]["uses_proxy"] is True
    assert {f["path"] for f in c["synaptic_ops"]["fields"]} == {"energy.synaptic_op_pj"}
    assert all(f["proxy"] and f["source"] for f in c["neuron_updates"]["fields"])
    assert d["profiles"]["loihi2"]["cores"] == {"A": 1, "B": 1}
    lat = d["profiles"]["loihi2"]["latency"]
    assert lat["per_utterance_us"] == pytest.approx(4 * v("loihi2", "timing.time_step_us"))
    layers = {r["name"]: r for r in d["layers"]}
    assert layers["A"]["energy_pj"]["loihi2"]["synaptic_ops"] == pytest.approx(8 * v("loihi2", "energy.synaptic_op_pj") / n)
    assert layers["in"]["energy_pj"]["loihi2"]["spike_traffic"] == pytest.approx(traffic / 2)

    # cmos45nm native: MACs x mac_pj + ACs x ac_pj; no neuron or traffic figures -> not modelled
    c = comp("cmos45nm")
    assert c["synaptic_ops"]["per_utterance_pj"] == pytest.approx(
        (8 * v("cmos45nm", "energy.mac_pj") + 3 * v("cmos45nm", "energy.ac_pj")) / n, rel=1e-12)
    assert c["neuron_updates"]["per_utterance_pj"] is None and not c["spike_traffic"]["modelled"]
    assert d["profiles"]["cmos45nm"]["energy"]["uses_proxy"] is False
    assert d["profiles"]["cmos45nm"]["cores_total"] is None

    # xylo: the hand graph has graded input and a delay, which Xylo has not: listed, not costed
    assert "xylo_audio2" not in d["profiles"] and "xylo_audio2" not in d["system"]
    unfit = d["not_fitting"]["xylo_audio2"]
    assert unfit["rule"] == "graded_input" and {"graded_input", "max_delay"} <= set(unfit["rules"])
    # native_energy itself: no idle figure -> every update at neuron_update_pj; no spike figures -> n/m
    from ptsnn.report import native_energy

    x = native_energy(hand_graph(), hand_report.activity, load_profile("xylo_audio2"))
    c = {c["component"]: c for c in x["energy"]["components"]}
    assert c["neuron_updates"]["per_utterance_pj"] == pytest.approx(24 * v("xylo_audio2", "energy.neuron_update_pj") / n)
    assert x["energy"]["not_modelled"] == ["spike_traffic"]
    assert x["measured_inference"]["path"] == "energy.inference_uj"


def big_graph(hidden: int = 1200) -> ChipGraph:
    """Binary input -> ``hidden`` neurons -> 4: no delays, small weights; only Xylo's 1,000-neuron core is too small."""
    w1 = np.zeros((hidden, 8), np.int64)
    for j in range(8 * 64):  # fan-out 64 per input channel (Xylo's limit); the other hidden neurons stay idle
        w1[j, j % 8] = 2
    w2 = np.zeros((4, hidden), np.int64)
    for j in range(4):  # fan-out 1 per hidden neuron
        w2[j, j::4] = 1
    inp = HostInput("in", 8, message_bits=0, levels=1)
    a = CubaPopulation("A", hidden, i_decay=16, v_decay=15, vth=1, bias=np.zeros(hidden))
    b = CubaPopulation("B", 4, i_decay=16, v_decay=15, vth=1, bias=np.zeros(4))
    return ChipGraph([inp], [a, b], [], [Synapses("in->A", "in", "A", w1, np.zeros_like(w1)),
                                         Synapses("A->B", "A", "B", w2, np.zeros_like(w2))])


def test_profile_the_model_does_not_fit_is_listed_not_costed(tmp_path):
    from ptsnn.convert import design_rules
    from ptsnn.errors import DesignRuleError

    g = big_graph()
    xylo = load_profile("xylo_audio2")
    with pytest.raises(DesignRuleError, match="1,200 neurons"):  # what ptsnn-convert --target xylo_audio2 refuses
        design_rules.enforce(design_rules.check(g, xylo), xylo.name)
    payload = (np.random.default_rng(1).random((6, 8)) < 0.5).astype(np.int64)
    rep = report_bundle(g, [payload], ["u"], ["loihi2", "xylo_audio2"])
    d = rep.data
    assert list(d["profiles"]) == ["loihi2"] and d["profiles"]["loihi2"]["energy"]["per_utterance_pj"] > 0
    assert d["not_fitting"]["xylo_audio2"]["rule"] == "capacity"
    assert "1,200 neurons" in d["not_fitting"]["xylo_audio2"]["message"]
    assert set(d["system"]) == {"loihi2"} and all(set(r["energy_pj"]) == {"loihi2"} for r in d["layers"])
    rep.write(tmp_path, ("json", "md", "html"))
    assert json.loads((tmp_path / "report.json").read_text())["not_fitting"]["xylo_audio2"]["rule"] == "capacity"
    md = (tmp_path / "report.md").read_text()
    assert "| xylo_audio2 | neuromorphic | does not fit: capacity |" in md
    assert "xylo_audio2 cores" not in md and "loihi2 cores" in md
    html = (tmp_path / "report.html").read_text()
    assert "<td>does not fit: capacity</td>" in html and '<table class="not_fitting">' in html


def test_paper_estimate_formula_by_hand(hand_report):
    p = hand_report.data["estimate"]["paper"]
    mac, ac = load_profile("cmos45nm").value("energy.mac_pj"), load_profile("cmos45nm").value("energy.ac_pj")
    assert (mac, ac) == (4.6, 0.9)  # Horowitz, ISSCC 2014 (reference.md s5)
    # E = E_MAC x dense MACs of the real-valued layer (A: 4 weights x 8 steps) + E_AC x spikes x fan-out (B: 5)
    assert p["macs_per_utterance"] == 32 / 2 and p["acs_per_utterance"] == 5 / 2
    assert p["per_utterance_pj"] == pytest.approx((4.6 * 32 + 0.9 * 5) / 2, rel=1e-12)
    assert p["per_utterance_mj"] == pytest.approx(p["per_utterance_pj"] * 1e-9)
    assert p["real_valued_layers"] == ["A"] and p["reference"]["energy_mj"] == 0.35
    native = build_report(hand_graph(), hand_report.activity, ["cmos45nm"]).data
    assert native["estimate"] == {"view": "native", "paper": None}


def test_build_report_from_spike_runs_equals_simulator_counts():
    rng = np.random.default_rng(0)
    g = hand_graph()
    payloads = [rng.integers(-7, 8, size=(t, 2)) for t in (9, 4, 13)]
    via_sim = report_bundle(g, payloads, None, ["loihi2"], batch_size=2)
    runs = []
    for p in payloads:
        run = simulate_chip(g, p[None])
        runs.append(dict(steps=len(p), spikes={k: v[0] for k, v in run.spikes.items()}))
        assert via_sim.activity.utterances[len(runs) - 1].layers["A"]["output_spikes"] == int(run.spikes["A"].sum())
    via_runs = build_report(g, runs, ["loihi2"], payloads=payloads)
    assert via_runs.data["layers"] == via_sim.data["layers"]
    assert via_runs.data["voltage_histograms"] is None  # no voltages in plain spike runs
    with pytest.raises(InputError, match="payloads"):
        build_report(g, runs, ["loihi2"])


def test_simulate_chip_records_voltages():
    g = hand_graph()
    plain = simulate_chip(g, PAYLOAD_1[None])
    rec = simulate_chip(g, PAYLOAD_1[None], record_voltage=True)
    assert plain.voltages is None
    for k in plain.spikes:
        np.testing.assert_array_equal(plain.spikes[k], rec.spikes[k])
    a_in = np.zeros((5, 2), np.int64)
    a_in[1:] = PAYLOAD_1[:-1] @ W1.T
    # the reference kernel (Lava's int32 arithmetic) records the same voltages as the run that made the spikes
    _, volts = kernels.run_cuba(a_in, g.populations[0].params(), record_voltage=True, path="reference")
    np.testing.assert_array_equal(rec.voltages["A"][0], volts)
    hist = collect_from_chip(g, [PAYLOAD_1]).histograms["A"]
    assert hist.spiked == 5 and hist.total == 10 and hist.threshold == 5 << 6


class _SpikesOnlyBackend:
    """A backend that is not the simulator: replays the fast backend's spikes without voltages (as Lava's
    probes give them) and records the batches it was asked for."""

    name = "replay"

    def __init__(self):
        from ptsnn.deploy.backends import get_backend

        self.inner, self.batches = get_backend("fast"), []

    def run(self, bundle, payloads):
        self.batches.append(len(payloads))
        run = self.inner.run(bundle, payloads)
        run.voltages = None
        return run


def test_report_takes_chip_runs_from_a_backend():
    rng = np.random.default_rng(1)
    g = hand_graph()
    payloads = [rng.integers(-7, 8, size=(t, 2)) for t in (9, 4, 13, 6, 2)]
    backend = _SpikesOnlyBackend()
    via_backend = report_bundle(g, payloads, None, ["loihi2"], batch_size=2, backend=backend)
    assert backend.batches == [2, 2, 1]
    default = report_bundle(g, payloads, None, ["loihi2"], batch_size=3)
    assert via_backend.data["layers"] == default.data["layers"]  # counts do not depend on the batching
    assert via_backend.data["voltage_histograms"] is None and default.data["voltage_histograms"] is not None
    with pytest.raises(InputError, match="choose"):
        report_bundle(g, payloads, None, ["loihi2"], backend="no_such_backend")


def test_report_package_imports_no_simulator():
    """The report counts what a backend returns; it never runs the chip itself (issue 9)."""
    import ast

    banned = ("ptsnn.chip.simulator", "ptsnn.chip.kernels", "ptsnn.deploy.fastsim", "ptsnn.deploy.lava_runner")
    import ptsnn.report

    for path in sorted(Path(ptsnn.report.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                assert not [n for n in names if n.startswith(banned)], (path, names)


def test_written_files_html_self_contained(hand_report, tmp_path):
    files = hand_report.write(tmp_path / "out")
    names = sorted(p.relative_to(tmp_path / "out").as_posix() for p in files)
    assert names == ["plots/energy.png", "plots/firing_rate.png", "plots/raster.png", "plots/voltage_histograms.png",
                     "report.html", "report.json", "report.md"]
    assert not [p for p in (tmp_path / "out").rglob(".*")]  # atomic writes leave no temporary files
    data = json.loads((tmp_path / "out" / "report.json").read_text())
    assert data["schema_version"] == 2 and data["kind"] == "ptsnn-report"
    html = (tmp_path / "out" / "report.html").read_text()
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == 4 and all(base64.b64decode(b).startswith(b"\x89PNG\r\n\x1a\n") for b in images)
    for table in ("summary", "paper", "layers", "layer_energy", "fields", "metrics", "host"):
        assert f'<table class="{table}">' in html
    assert "<td>A</td>" in html and "energy.synaptic_op_pj" in html
    # totals are marked explicitly; an ordinary last row (metrics, fields) is not styled as one
    assert "last-child" not in html and "tr.total td" in html
    totals = re.findall(r'<tr class="total"><td>([^<]*)</td>', html)
    assert totals == ["total (chip)", "total (chip)", "total", "total per frame", totals[-1]]
    assert totals[-1].startswith("total per utterance")
    assert not re.search(r"(href|src)\s*=\s*[\"']?(https?:|//|file:)", html, re.I)
    assert not re.search(r"<(script|link|iframe|object|embed)\b", html, re.I) and "@import" not in html
    assert "url(" not in html
    md = (tmp_path / "out" / "report.md").read_text()
    assert "| layer | kind | neurons |" in md and "](plots/raster.png)" in md
    only_json = hand_report.write(tmp_path / "j", ("json",))
    assert [p.name for p in only_json] == ["report.json"]
    with pytest.raises(InputError, match="--format"):
        hand_report.write(tmp_path / "x", ("pdf",))


@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="no /usr/bin/chromium")
def test_html_renders_in_headless_chromium_without_console_errors(hand_report, tmp_path):
    (tmp_path / "out").mkdir()
    hand_report.write(tmp_path / "out", ("html",))
    r = subprocess.run(["/usr/bin/chromium", "--headless", "--disable-gpu", "--no-sandbox", "--enable-logging=stderr",
                        "--v=0", "--dump-dom", (tmp_path / "out" / "report.html").as_uri()],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "<table" in r.stdout
    assert "CONSOLE" not in r.stderr and "Uncaught" not in r.stderr


# --------------------------------------------------------------------------------------- tiny bundle
@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory):
    from ptsnn.testing import synthetic_bundle

    return synthetic_bundle(tmp_path_factory.mktemp("report"),
                            ["model.hidden=16", "model.key_dim=8", "model.value_dim=4", "model.prompts=2",
                             "model.input_dim=16", "frontend.n_mels=16"], speakers=(0,), max_samples=6400,
                            emit=("onnx",))


def test_cli_report_on_tiny_bundle(tiny_bundle, tmp_path):
    from typer.testing import CliRunner

    from ptsnn.cli._app import new_app
    from ptsnn.cli.report_cmd import report
    from ptsnn.deploy.bundle_io import load_bundle
    from ptsnn.deploy.run import chip_run
    from ptsnn.report.inputs import report_payloads

    app = new_app("t", "test app")
    app.command("report")(report)
    app.command("noop")(lambda: None)
    out = tmp_path / "rep"
    r = CliRunner().invoke(app, ["report", str(tiny_bundle), "-o", str(out), "--limit", "2", "--max-frames", "25",
                                 "--profile", "loihi2", "--profile", "cmos45nm", "--estimate", "paper"])
    assert r.exit_code == 0, (r.output, r.exception)
    assert "paper-style estimate" in r.output and "PTS-SNN published: 0.35 mJ" in r.output
    data = json.loads((out / "report.json").read_text())
    assert list(data["profiles"]) == ["loihi2", "cmos45nm"] and data["data"]["utterances"] == 2
    assert data["host"]["frontend_counted"] and data["host"]["per_utterance_pj"] > 0
    assert (out / "report.html").is_file() and (out / "plots" / "raster.png").stat().st_size > 1000

    # the report's spike counts are the simulator's on the same payloads
    bundle = load_bundle(tiny_bundle)
    payloads, names, _ = report_payloads(bundle, "synthetic", 2, 25)
    assert data["data"]["names"] == names
    runs = chip_run(bundle, payloads, "fast")
    expect = {p.name: sum(int(run["spikes"][p.name].sum()) for run in runs) for p in bundle.graph.populations}
    assert data["spike_counts"] == expect and sum(expect.values()) > 0
    layers = {row["name"]: row for row in data["layers"]}
    assert all(layers[k]["counts"]["output_spikes"]["total"] == v for k, v in expect.items())
    # what `ptsnn run` / `ptsnn verify` would call with their own runs gives the same layers
    again = build_report(bundle, runs, ["loihi2", "cmos45nm"], payloads=payloads, names=names)
    assert again.data["layers"] == data["layers"]

    bad = CliRunner().invoke(app, ["report", str(tiny_bundle), "-o", str(out), "--format", "pdf"])
    assert bad.exit_code != 0 and isinstance(bad.exception, InputError)
    bad = CliRunner().invoke(app, ["report", str(tiny_bundle), "-o", str(out), "--estimate", "guess"])
    assert isinstance(bad.exception, InputError)


def test_folder_of_features_and_bundle_without_host_onnx(tiny_bundle, tmp_path):
    from ptsnn.deploy.bundle_io import load_bundle
    from ptsnn.report.inputs import report_payloads

    bundle = load_bundle(tiny_bundle)
    (tmp_path / "feats").mkdir()
    np.save(tmp_path / "feats" / "a.npy", np.zeros((10, 16), np.float32))
    with pytest.raises(InputError, match="takes audio|fbank|features"):
        report_payloads(bundle, str(tmp_path / "feats"), 2, 25)
    copy = tmp_path / "b"
    shutil.copytree(tiny_bundle, copy)
    (copy / "host.onnx").unlink()
    with pytest.raises(InputError, match="host.onnx"):
        report_payloads(load_bundle(copy, verify_hashes=False), "synthetic", 1, 10)
