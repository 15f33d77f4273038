"""Chip IR: construction checks, serialisation, and the IR simulator == quantized PyTorch model."""

import numpy as np
import pytest
import torch

from ptsnn.chip.ir import ChipGraph, CubaPopulation, HostInput, IRError, Synapses
from ptsnn.chip.simulator import simulate_chip
from ptsnn.train.config import load_config
from ptsnn.train.model import PTSSNN


def tiny_quantized_model(seed=0, **over):
    sets = ["model.input_dim=12", "model.hidden=16", "model.key_dim=8", "model.value_dim=6", "model.prompts=3",
            "model.shift_div=4"] + [f"model.{k}={v}" for k, v in over.items()]
    torch.manual_seed(seed)
    model = PTSSNN(load_config("small", sets).model)
    x = torch.randn(3, 40, 12) * 2
    model.data_init(x)
    model.eval()
    model.quantize()
    return model, x


def test_ir_rejects_out_of_range_values():
    with pytest.raises(IRError, match="weights"):
        Synapses("e", "a", "b", np.full((2, 2), 300), np.zeros((2, 2)))
    with pytest.raises(IRError, match="delays"):
        Synapses("e", "a", "b", np.zeros((2, 2)), np.full((2, 2), 63))
    with pytest.raises(IRError, match="vth"):
        CubaPopulation("p", 2, 4096, 0, 2**17, [0, 0])
    with pytest.raises(IRError, match="bias shape"):
        CubaPopulation("p", 2, 4096, 0, 5, [0])


def test_graph_checks_shapes_names_and_order():
    pop = CubaPopulation("p", 3, 4096, 100, 10, [0, 0, 0])
    good = Synapses("in->p", "in", "p", np.zeros((3, 2)), np.zeros((3, 2)))
    ChipGraph([HostInput("in", 2, 0)], [pop], [], [good])
    with pytest.raises(IRError, match="shape"):
        ChipGraph([HostInput("in", 4, 0)], [pop], [], [good])
    with pytest.raises(IRError, match="unknown"):
        ChipGraph([HostInput("x", 2, 0)], [pop], [], [good])
    with pytest.raises(IRError, match="no incoming"):
        ChipGraph([HostInput("in", 2, 0)], [pop], [], [])


def test_ir_simulator_equals_quantized_model_and_round_trips(tmp_path):
    model, x = tiny_quantized_model()
    lengths = torch.tensor([40, 25, 12])
    with torch.no_grad():
        out = model(x, lengths, record=True)
    graph = model.chip_graph()
    graph.to_dir(tmp_path)
    back = ChipGraph.from_dir(tmp_path)
    run = simulate_chip(back, out.spikes["input"].numpy())
    for pop in back.populations:
        assert np.array_equal(run.spikes[pop.name], out.spikes[pop.name].numpy().astype(bool)), pop.name
    totals = run.readout("readout", out.steps.numpy())
    logits = totals / (2.0 ** back.accumulators[0].scale_exponent * out.steps.numpy()[:, None])
    np.testing.assert_allclose(out.logits.numpy(), logits, rtol=1e-6)
    first = [p.read_bytes() for p in sorted(tmp_path.iterdir())]
    graph.to_dir(tmp_path)
    assert [p.read_bytes() for p in sorted(tmp_path.iterdir())] == first  # byte-stable
