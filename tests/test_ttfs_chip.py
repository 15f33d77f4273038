"""The TTFS grid network as chip IR: ``simulate`` equals the numpy reference spike step for spike step in every
layer and in the readout voltage; every fire-once neuron spikes at most once; the graph survives its files."""

from __future__ import annotations

import numpy as np
import pytest

from ptsnn.chip.ir import ConvSynapses, CubaPopulation, FireOncePopulation, Synapses
from ptsnn.chip.serialize import read_chip_graph, write_chip_graph
from ptsnn.chip.simulator import simulate
from ptsnn.errors import InputError
from ptsnn.testing import random_ttfs
from ptsnn.train import ttfs_chip
from ptsnn.train.ttfs_config import ConvSpec
from ptsnn.train.ttfs_integer import quantize_ttfs
from ptsnn.train.ttfs_reference import run_ttfs_reference


def _grid(seed, k, batch=4, **overrides):
    net, x, widths = random_ttfs(seed, batch=batch, steps_per_window=k, **overrides)
    grid = quantize_ttfs(net, widths)
    return grid, grid.quantize_input(x).numpy().astype(np.int64)


def _check_equal(graph, grid, q0):
    ref = run_ttfs_reference(grid.export(), q0)
    run = simulate(graph, ttfs_chip.payloads(graph, q0), record_voltage=True)
    steps = graph.meta["steps"]
    assert steps == grid.layers[-1].window_start + 1
    for layer in grid.layers:
        if layer.kind == "readout":
            assert not run.spikes[layer.name].any()
            assert np.array_equal(ttfs_chip.readout_potential(graph, run.voltages), ref["output"])
            continue
        spikes = run.spikes[layer.name]
        assert spikes.shape[1] == steps
        counts = spikes.sum(1)
        assert counts.max() <= 1, layer.name  # fire once, over the whole inference
        first = ttfs_chip.first_spike_steps(spikes)
        assert np.array_equal(first, ref[layer.name].reshape(len(q0), -1)), layer.name
    return run, ref


@pytest.mark.parametrize("seed, k", [(0, 8), (1, 1), (2, 3), (3, 16), (4, 5), (5, 4)])
def test_simulator_equals_reference_on_random_architectures(seed, k):
    grid, q0 = _grid(seed, k)
    graph = grid.chip_graph()
    kinds = {type(s) for s in graph.synapses}
    assert ConvSynapses in kinds and Synapses in kinds  # conv stages and dense stages both present
    _check_equal(graph, grid, q0)


def test_node_types_and_readout_meta():
    grid, q0 = _grid(0, 6)
    graph = grid.chip_graph()
    by_name = {p.name: p for p in graph.populations}
    for layer in grid.layers:
        pop = by_name[layer.name]
        if layer.kind == "readout":
            assert type(pop) is CubaPopulation and pop.vth == 2**17 - 1 and pop.i_decay == pop.v_decay == 0
        else:
            assert isinstance(pop, FireOncePopulation) and pop.vth == layer.vth
            assert pop.inhibition() == -(layer.inhibit[0] << layer.inhibit[1])
        if layer.kind == "maxpool":
            (feed,) = [s for s in graph.incoming(layer.name) if s.source != "timing"]
            assert isinstance(feed, ConvSynapses) and feed.groups == layer.source_shape[0]
    r = graph.meta["readout"]
    assert r["kind"] == "voltage" and r["step"] == graph.meta["steps"] - 1 == grid.layers[-1].window_start
    assert r["scale"] == grid.layers[-1].scale
    # every timing channel spikes exactly once per inference, at its fixed step
    t = ttfs_chip.timing_payload(graph, 3)
    assert t.shape == (3, graph.meta["steps"], graph.inputs[1].size)
    assert np.array_equal(t.sum(1), np.ones((3, t.shape[2])))
    assert [int(np.argmax(t[0, :, c])) for c in range(t.shape[2])] == [c["step"] for c in graph.meta["timing"]]


def test_dense_flatten_order_is_c_h_w():
    """A dense stage on a multi-channel map: the IR matrix column j is the C, H, W flat index j."""
    grid, q0 = _grid(1, 4, conv=[ConvSpec(3, kernel=3, padding=1, pool="max")], dense=[5])
    graph = grid.chip_graph()
    layer = next(l for l in grid.layers if l.name == "dense0")
    feeds = [s for s in graph.incoming("dense0") if s.source != "timing"]
    assert all(isinstance(f, Synapses) for f in feeds) and layer.source_shape[0] == 3 and layer.source_shape[1] > 1
    assert np.array_equal(sum(f.weight for f in feeds), layer.weight_mant.reshape(layer.weight_mant.shape[0], -1))
    _check_equal(graph, grid, q0)


def test_graph_round_trips_through_its_files(tmp_path):
    grid, q0 = _grid(2, 4, batch=2)
    graph = grid.chip_graph()
    write_chip_graph(graph, tmp_path)
    back = read_chip_graph(tmp_path)
    assert back.meta == graph.meta
    _check_equal(back, grid, q0)


def test_bad_input_payloads_are_one_line_errors():
    grid, q0 = _grid(0, 4, batch=2)
    graph = grid.chip_graph()
    with pytest.raises(InputError, match="0..4"):
        ttfs_chip.input_payload(graph, q0 + 5)
    with pytest.raises(InputError, match="expected"):
        ttfs_chip.input_payload(graph, q0[:, :1])


def test_dense_groups_lava_would_truncate_are_split_by_sign_exactly():
    """249 next to -27: Lava's mixed-sign Dense drops the low bit and netx's exponent form cannot shift 249;
    positive and negative parts as separate groups keep every mantissa (and -256 leaves its -1 to a third)."""
    from ptsnn.numerics import loihi

    w = np.array([[249, -27, 0], [-256, 7, 13]])
    assert not np.array_equal(loihi.lava_synapse_weights(w), w)
    groups = ttfs_chip.dense_groups("a->b", "a", "b", w, 2)
    assert len(groups) == 3 and np.array_equal(sum(g.weight for g in groups), w)
    for g in groups:
        assert np.array_equal(loihi.lava_synapse_weights(g.weight), g.weight) and g.weight_exp == 2
    small = np.array([[-40, 58], [3, 0]])  # netx's lossless form handles these: one group
    assert len(ttfs_chip.dense_groups("a->b", "a", "b", small, 0)) == 1
