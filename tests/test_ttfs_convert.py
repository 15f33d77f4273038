"""TTFS checkpoint (weights_only, model_kind) -> ptsnn-convert --target loihi2 -> bundle whose chip graph runs
exactly as the grid form; the TTFS design rules each catch their violation with a one-line error."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from ptsnn.chip.ir import ChipGraph, FireOncePopulation, Synapses
from ptsnn.chip.serialize import read_chip_graph
from ptsnn.chip.simulator import simulate
from ptsnn.convert import design_rules, ttfs_rules
from ptsnn.errors import DesignRuleError, InputError
from ptsnn.hw_profiles.loader import load_profile
from ptsnn.testing import random_ttfs
from ptsnn.train import ttfs_chip
from ptsnn.train.ttfs_checkpoint import load_integer, read_ttfs_checkpoint, save_ttfs_checkpoint
from ptsnn.train.ttfs_integer import quantize_ttfs
from ptsnn.train.ttfs_reference import run_ttfs_reference


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    net, x, widths = random_ttfs(0, batch=4, steps_per_window=6)
    path = tmp_path_factory.mktemp("ttfs") / "ttfs.pt"
    save_ttfs_checkpoint(path, net, widths, {"a": 0, "b": 1, "c": 2}, {"accuracy": 0.5})
    return path, net, x, widths


def test_checkpoint_loads_weights_only_and_gives_the_same_grid(saved):
    path, net, x, widths = saved
    raw = torch.load(path, weights_only=True)
    assert raw["model_kind"] == "ttfs" and raw["windows"] == {k: float(v) for k, v in widths.items()}
    grid, net2, ckpt = load_integer(path)
    assert ckpt.classes == ["a", "b", "c"] and ckpt.metrics == {"accuracy": 0.5}
    assert torch.equal(grid.twin(x)["output"], quantize_ttfs(net, widths).twin(x)["output"])


def test_bad_checkpoints_are_one_line_errors(tmp_path, saved):
    path, net, _, widths = saved
    raw = torch.load(path, weights_only=True)
    for field, value, match in (("windows", {**widths, "conv0": -1.0}, "windows.conv0"),
                                ("label_map", {"a": 0}, "label_map"),
                                ("config", {**raw["config"], "steps_per_window": 0}, "steps_per_window")):
        bad = tmp_path / f"{field}.pt"
        torch.save({**raw, field: value}, bad)
        with pytest.raises(InputError, match=match) as exc:
            load_integer(bad)
        assert "\n" not in str(exc.value) and str(bad) in str(exc.value)
    missing = tmp_path / "missing.pt"
    torch.save({**raw, "windows": {k: v for k, v in widths.items() if k != "conv1"}}, missing)
    with pytest.raises(InputError, match="conv1"):
        load_integer(missing)


def test_convert_writes_a_loihi2_bundle_that_runs_like_the_grid(tmp_path, saved):
    from ptsnn.convert.bundle import convert_checkpoint

    path, net, x, widths = saved
    out = tmp_path / "bundle"
    result = convert_checkpoint(path, load_profile("loihi2"), out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model_kind"] == "ttfs" and manifest["classes"] == ["a", "b", "c"]
    assert set(manifest["notes"]) == {"nir", "onnx", "netx"}
    assert (out / "run_loihi2.py").exists() and not (out / "model.nir").exists() and not (out / "host.onnx").exists()
    assert result.violations == []
    graph = read_chip_graph(out)
    grid = quantize_ttfs(net, widths)
    q0 = grid.quantize_input(x).numpy().astype(np.int64)
    run = simulate(graph, ttfs_chip.payloads(graph, q0), record_voltage=True)
    ref = run_ttfs_reference(grid.export(), q0)
    assert np.array_equal(ttfs_chip.readout_potential(graph, run.voltages), ref["output"])
    assert np.array_equal(ttfs_chip.first_spike_steps(run.spikes["conv1"]), ref["conv1"].reshape(4, -1))


# ------------------------------------------------------------------------------------------ design rules
@pytest.fixture(scope="module")
def graph():
    net, x, widths = random_ttfs(1, batch=2, steps_per_window=4)
    return quantize_ttfs(net, widths).chip_graph()


def _rebuilt(graph: ChipGraph, populations=None, synapses=None) -> ChipGraph:
    return ChipGraph(graph.inputs, populations or graph.populations, [], synapses or graph.synapses,
                     graph.flush_steps, dict(graph.meta))


def _rules(g):
    return {v.rule for v in design_rules.check(g, load_profile("loihi2"))}


def test_a_valid_ttfs_graph_passes_every_rule(graph):
    assert ttfs_rules.is_ttfs(graph) and _rules(graph) == set()


def test_windows_that_do_not_fit_the_delays_are_a_one_line_error(graph):
    dense = next(s for s in graph.synapses if isinstance(s, Synapses) and s.source != "timing")
    delayed = dataclasses.replace(dense, delay=np.full_like(dense.delay, 2))
    g = _rebuilt(graph, synapses=[delayed if s is dense else s for s in graph.synapses])
    violations = [v for v in design_rules.check(g, load_profile("loihi2")) if v.rule == "ttfs_window_delay"]
    assert [v.layer for v in violations] == [dense.target]
    with pytest.raises(DesignRuleError, match="window") as exc:
        design_rules.enforce(violations, "loihi2")
    assert "\n" not in str(exc.value)


def test_weak_self_inhibition_breaks_fire_once(graph):
    pop = next(p for p in graph.populations if p.name == "conv0")
    weak = dataclasses.replace(pop, inhibit_weight=-1, inhibit_exp=0)
    g = _rebuilt(graph, populations=[weak if p is pop else p for p in graph.populations])
    assert "ttfs_fire_once" in _rules(g)
    # and it is real: with that inhibition some neuron of conv0 fires twice
    grid_q0 = np.random.default_rng(0).integers(0, 5, (3, *graph.meta["input_shape"]))
    run = simulate(g, ttfs_chip.payloads(g, grid_q0))
    assert run.spikes["conv0"].sum(1).max() > 1


def test_readout_that_can_reach_its_threshold_and_state_out_of_range(graph):
    readout = next(p for p in graph.populations if p.name == graph.meta["readout"]["population"])
    low = dataclasses.replace(readout, vth=1)
    assert "ttfs_threshold" in _rules(_rebuilt(graph, populations=[low if p is readout else p
                                                                   for p in graph.populations]))
    pop = next(p for p in graph.populations if isinstance(p, FireOncePopulation))
    hot = dataclasses.replace(pop, vth=2**17 - 2)
    assert "ttfs_state_range" in _rules(_rebuilt(graph, populations=[hot if p is pop else p
                                                                     for p in graph.populations]))
    meta = dict(graph.meta, steps_per_window=200)
    g = ChipGraph(graph.inputs, graph.populations, [], graph.synapses, 0, meta)
    assert "ttfs_state_range" in _rules(g)
