"""Chip IR files: every node type round-trips byte-stably; the reader refuses hostile files with one line."""

import json
import shutil

import h5py
import numpy as np
import pytest

from ptsnn.chip.ir import (
    Accumulator,
    ChipGraph,
    ConvSynapses,
    CubaPopulation,
    FireOncePopulation,
    HostInput,
    IRError,
    SigmaDeltaPopulation,
    Synapses,
    sum_pool,
)
from ptsnn.chip.serialize import read_chip_graph, to_dict, write_chip_graph
from ptsnn.chip.simulator import simulate


def every_kind_graph() -> ChipGraph:
    rng = np.random.default_rng(0)
    conv_w = rng.integers(-20, 20, (4, 2, 3, 3))
    return ChipGraph(
        [HostInput("img", 2 * 6 * 6, 0)],
        [CubaPopulation("c1", 4 * 4 * 4, 0, 0, 40, rng.integers(-5, 5, 64), role="plif"),
         FireOncePopulation("p1", 4 * 2 * 2, 0, 0, 0, np.zeros(16, np.int64)),
         SigmaDeltaPopulation("sd", 5, 1, rng.integers(-3, 3, 5)),
         FireOncePopulation("d1", 6, 0, 0, 30, np.zeros(6, np.int64), inhibit_weight=-200, inhibit_exp=6)],
        [Accumulator("readout", 3, 2)],
        [ConvSynapses("img->c1", "img", "c1", conv_w, (2, 6, 6), (4, 4, 4)),
         sum_pool("c1->p1", "c1", "p1", (4, 4, 4), 2),
         Synapses("p1->sd", "p1", "sd", rng.integers(-25, 25, (5, 16)) * 2, rng.integers(0, 3, (5, 16))),
         Synapses("sd->d1", "sd", "d1", rng.integers(-9, 9, (6, 5)) * 2, np.zeros((6, 5), np.int64), weight_exp=-1),
         Synapses("d1->readout", "d1", "readout", rng.integers(-50, 50, (3, 6)) * 2, np.zeros((3, 6), np.int64))],
        flush_steps=7, meta=dict(classes=["a", "b", "c"]))


def test_every_node_kind_round_trips_byte_stably_and_simulates_the_same(tmp_path):
    g = every_kind_graph()
    write_chip_graph(g, tmp_path)
    back = read_chip_graph(tmp_path)
    (s1, a1), (s2, a2) = to_dict(g), to_dict(back)
    assert s1 == s2 and all(np.array_equal(a1[k], a2[k]) for k in a1)
    assert [type(p).__name__ for p in back.populations] == [
        "CubaPopulation", "FireOncePopulation", "SigmaDeltaPopulation", "FireOncePopulation"]
    first = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    write_chip_graph(back, tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == first
    x = (np.random.default_rng(1).random((2, 30, 72)) < 0.5).astype(np.int64)
    r1, r2 = simulate(g, x), simulate(back, x)
    for k in r1.spikes:
        assert np.array_equal(r1.spikes[k], r2.spikes[k])
    assert r1.spikes["c1"].any() and np.array_equal(r1.accumulators["readout"], r2.accumulators["readout"])


def test_conv_fan_out_counts_every_synapse():
    e = every_kind_graph().synapses[0]
    dense = np.zeros((64, 72), np.int64)  # the conv as an explicit matrix, by brute force
    for o in range(64):
        oc, oy, ox = np.unravel_index(o, (4, 4, 4))
        for c in range(2):
            for i in range(3):
                for j in range(3):
                    dense[o, np.ravel_multi_index((c, oy + i, ox + j), (2, 6, 6))] = e.weight[oc, c, i, j]
    assert np.array_equal(e.fan_out(), np.count_nonzero(dense, axis=0)) and e.count() == np.count_nonzero(dense)


def test_format_version_1_files_still_read(tmp_path):
    g = ChipGraph([HostInput("in", 3, 8, levels=100)], [CubaPopulation("a", 2, 4096, 100, 50, np.zeros(2, np.int64))],
                  [], [Synapses("in->a", "in", "a", np.ones((2, 3), np.int64), np.zeros((2, 3), np.int64))])
    write_chip_graph(g, tmp_path)
    s = json.loads((tmp_path / "chip_graph.json").read_text())
    s["format_version"] = 1
    for p in s["populations"]:
        del p["kind"]
    for e in s["synapses"]:
        del e["kind"], e["weight_exp"]
    (tmp_path / "chip_graph.json").write_text(json.dumps(s))
    assert read_chip_graph(tmp_path).populations[0].vth == 50


# ------------------------------------------------------------------------------------------ hostile files
def _json_case(mutate):
    def apply(d):
        s = json.loads((d / "chip_graph.json").read_text())
        mutate(s)
        (d / "chip_graph.json").write_text(json.dumps(s))
    return apply


def _set(path, value):
    def mutate(s):
        node = s
        for k in path[:-1]:
            node = node[k]
        node[path[-1]] = value
    return _json_case(mutate)


def _h5(fn):
    def apply(d):
        with h5py.File(d / "chip_graph.h5", "a") as f:
            fn(f)
    return apply


def _replace_dataset(key, data):
    def fn(f):
        del f[key]
        f.create_dataset(key, data=data)
    return _h5(fn)


def _raw_json(text: bytes):
    return lambda d: (d / "chip_graph.json").write_bytes(text)


CASES = {
    "flush_steps_huge": (_set(["flush_steps"], 10**9), "flush_steps"),
    "flush_steps_negative": (_set(["flush_steps"], -3), "flush_steps"),
    "flush_steps_string": (_set(["flush_steps"], "7"), "flush_steps"),
    "flush_steps_float": (_set(["flush_steps"], 7.0), "flush_steps"),
    "extra_top_field": (_set(["surprise"], 1), "surprise"),
    "extra_node_field": (_set(["populations", 0, "gain"], 2), "gain"),
    "unknown_kind": (_set(["populations", 0, "kind"], "izhikevich"), "populations.0"),
    "unknown_synapse_kind": (_set(["synapses", 0, "kind"], "attention"), "synapses.0"),
    "size_string": (_set(["inputs", 0, "size"], "72"), "size"),
    "size_zero": (_set(["inputs", 0, "size"], 0), "size"),
    "size_absurd": (_set(["populations", 2, "size"], 10**13), "size"),
    "vth_out_of_register": (_set(["populations", 0, "vth"], 2**17), "vth"),
    "i_decay_negative": (_set(["populations", 0, "i_decay"], -1), "i_decay"),
    "message_bits_30": (_set(["inputs", 0, "message_bits"], 30), "message_bits"),
    "weight_exp_9": (_set(["synapses", 2, "weight_exp"], 9), "weight_exp"),
    "inhibit_positive": (_set(["populations", 1, "inhibit_weight"], 5), "inhibit_weight"),
    "stride_zero": (_set(["synapses", 0, "stride"], [0, 1]), "stride"),
    "conv_shape_lies": (_set(["synapses", 0, "out_shape"], [4, 5, 5]), "output"),
    "unknown_target": (_set(["synapses", 2, "target"], "nowhere"), "unknown"),
    "backward_edge": (_set(["synapses", 4, "source"], "readout"), "boundary"),
    "wrong_format": (_set(["format"], "onnx"), "not a ptsnn chip IR"),
    "version_99": (_set(["format_version"], 99), "format_version"),
    "list_not_object": (_raw_json(b"[1, 2, 3]"), "JSON object"),
    "not_utf8": (_raw_json(b"\xff\xfe{\x00"), "UTF-8"),
    "truncated_json": (_raw_json(b'{"format": "ptsnn-chip-ir", "flush'), "not valid JSON"),
    "deeply_nested": (_raw_json(b'{"format": "ptsnn-chip-ir", "meta": ' + b"[" * 100000 + b"]" * 100000 + b"}"),
                      "nested too deeply"),
    "nan_literal_in_meta": (lambda d: (d / "chip_graph.json").write_text(
        (d / "chip_graph.json").read_text().replace('"meta": {', '"meta": {"scale": NaN, ', 1)), "NaN"),
    "nonzero_lies": (_set(["synapses", 2, "nonzero"], 1), "nonzero"),
    "dataset_missing": (_h5(lambda f: f.__delitem__("synapses/p1->sd/delay")), "missing"),
    "dataset_is_group": (_h5(lambda f: (f.__delitem__("population/c1/bias"), f.create_group("population/c1/bias"))),
                         "not a dataset"),
    "dataset_wrong_shape": (_replace_dataset("synapses/p1->sd/weight", np.zeros((4, 16), np.int64)), "shape"),
    "dataset_float": (_replace_dataset("synapses/p1->sd/weight", np.full((5, 16), 0.5)), "dtype"),
    "dataset_scalar": (_replace_dataset("population/sd/bias", np.int64(3)), "shape"),
    "weights_beyond_8_bits": (_replace_dataset("synapses/p1->sd/weight", np.full((5, 16), 900)), "weights"),
    "delay_beyond_62": (_replace_dataset("synapses/p1->sd/delay", np.full((5, 16), 70)), "delays"),
    "extra_dataset": (_h5(lambda f: f.create_dataset("smuggled", data=np.zeros(3))), "not named"),
    "h5_garbage": (lambda d: (d / "chip_graph.h5").write_bytes(b"\x89HDF\r\n" + b"\0" * 50), "HDF5"),
    "h5_missing": (lambda d: (d / "chip_graph.h5").unlink(), "missing"),
}


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    d = tmp_path_factory.mktemp("ir")
    write_chip_graph(every_kind_graph(), d)
    return d


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_ir_files_are_refused_with_one_line(case, written, tmp_path):
    mutate, needle = CASES[case]
    d = tmp_path / "b"
    shutil.copytree(written, d)
    mutate(d)
    with pytest.raises(IRError) as info:
        read_chip_graph(d)
    msg = str(info.value)
    assert "\n" not in msg and needle in msg and str(d) in msg, msg
