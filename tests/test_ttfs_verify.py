"""TTFS verification: the fixed-point legs agree exactly on a correct graph, a perturbed graph's first
divergence is named, a neuron firing twice fails the check, and the accuracy-vs-K curve is measured and plotted."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ptsnn.chip.ir import ChipGraph
from ptsnn.deploy.verify_ttfs import accuracy_vs_k, plot_accuracy_vs_k, verify_ttfs
from ptsnn.testing import random_ttfs
from ptsnn.train.ttfs_integer import quantize_ttfs


@pytest.fixture(scope="module")
def setup():
    net, x, widths = random_ttfs(2, batch=5, steps_per_window=4)
    grid = quantize_ttfs(net, widths)
    return net, x, widths, grid, grid.chip_graph()


def _with_population(graph, name, **changes):
    pops = [dataclasses.replace(p, **changes) if p.name == name else p for p in graph.populations]
    return ChipGraph(graph.inputs, pops, [], graph.synapses, graph.flush_steps, dict(graph.meta))


def test_correct_graph_is_exact_and_fires_once(setup):
    net, x, widths, grid, graph = setup
    rep = verify_ttfs(graph, net, grid, widths, x)
    assert rep.exact and rep.fire_once == {"quantized": 1, "fast": 1}
    assert all(r["quantized==fast"] == 100.0 for r in rep.layers)
    assert {r["layer"] for r in rep.layers} == {l.name for l in grid.layers if l.kind != "readout"}
    assert rep.predictions["quantized"] == rep.predictions["fast"]


def test_perturbed_threshold_names_the_first_divergence(setup):
    net, x, widths, grid, graph = setup
    vth = next(p.vth for p in graph.populations if p.name == "conv1")
    rep = verify_ttfs(_with_population(graph, "conv1", vth=vth + 40), net, grid, widths, x)
    assert not rep.exact
    first = next(d for d in rep.divergences if d.pair == "quantized==fast")
    assert first.layer == "conv1" and first.steps[0] != first.steps[1]


def test_a_neuron_firing_twice_fails(setup):
    net, x, widths, grid, graph = setup
    rep = verify_ttfs(_with_population(graph, "conv0", inhibit_weight=-1, inhibit_exp=0), net, grid, widths, x)
    assert rep.fire_once["fast"] > 1 and not rep.exact


def test_accuracy_vs_k_curve_and_plot(setup, tmp_path):
    net, x, _, _, _ = setup
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, len(x))
    curve = accuracy_vs_k(net, x, labels, ks=(1, 8))
    assert curve["k"] == [1, 8] and curve["measure"] == "accuracy"
    assert all(0 <= a <= 100 for a in curve["accuracy"])
    plot_accuracy_vs_k(curve, tmp_path / "acc.png")
    assert (tmp_path / "acc.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.lava
def test_tiny_ttfs_conv_net_runs_in_lava_spike_for_spike(tmp_path):
    """A TTFS conv net (conv + max-pool + dense + readout) in Lava fixed_pt: every layer's first-spike steps
    and the readout voltage equal the fast simulator and the quantized PyTorch recurrence."""
    from ptsnn.chip.serialize import write_chip_graph
    from ptsnn.deploy.verify_ttfs import lava_leg
    from ptsnn.train.ttfs_config import ConvSpec

    net, x, widths = random_ttfs(0, batch=2, steps_per_window=3, frame_size=(6, 6),
                                 conv=[ConvSpec(2, kernel=3, padding=1, pool="max")], dense=[4])
    grid = quantize_ttfs(net, widths)
    graph = grid.chip_graph()
    write_chip_graph(graph, tmp_path)
    rep = verify_ttfs(graph, net, grid, widths, x, lava=lava_leg(tmp_path, 2, timeout_s=300))
    assert rep.lava_samples == 2 and rep.fire_once["lava"] == 1
    assert all(r["fast==lava"] == 100.0 for r in rep.layers), rep.divergences
    assert rep.exact, rep.divergences
