"""PTS-SNN: parameter counts, structure, and quantization-aware forward == pure-integer reference, exactly."""

import numpy as np
import pytest
import torch

from ptsnn.train.config import load_config
from ptsnn.chip.simulator import simulate
from ptsnn.train.model import PTSSNN, shift_delays


def test_paper_config_has_1_19m_trainable_parameters():
    model = PTSSNN(load_config("paper").model)
    n = model.num_trainable()
    assert abs(n - 1.19e6) / 1.19e6 < 0.01, n
    assert n == 1_191_676  # the breakdown in docs/model.md
    assert sum(model.param_breakdown().values()) == n


def test_shift_delays_fold():
    assert shift_delays(16, 8) == (2, 2, 0, 0) + (1,) * 12


def _tiny(**over):
    sets = ["model.input_dim=12", "model.hidden=16", "model.key_dim=8", "model.value_dim=6", "model.prompts=3",
            "model.blocks=2", "model.shift_div=4"] + [f"model.{k}={v}" for k, v in over.items()]
    torch.manual_seed(0)
    return PTSSNN(load_config("small", sets).model)


@pytest.mark.parametrize("steps_per_frame", [1, 2])
def test_quantized_forward_equals_integer_reference(steps_per_frame):
    model = _tiny(steps_per_frame=steps_per_frame)
    x = torch.randn(3, 40, 12) * 2
    lengths = torch.tensor([40, 31, 17])
    model.data_init(x, lengths)
    model.eval()
    model.quantize()
    with torch.no_grad():
        out = model(x, lengths, record=True)
    graph = model.chip_graph()  # the typed chip IR, run by the chip simulator (pure integers, no torch)
    ref = simulate(graph, out.spikes["input"].numpy().astype(np.int64))
    active = 0
    for pop in graph.populations:
        ours = out.spikes[pop.name].numpy().astype(bool)
        assert (ours == ref.spikes[pop.name]).all(), f"population {pop.name} differs"
        active += int(ours.sum() > 0)
    assert active >= len(graph.populations) - 2, "most populations must spike for the check to mean much"
    n = out.steps.numpy()[:, None].astype(np.float64)
    totals = ref.readout("readout", out.steps.numpy())
    expected = totals / (2.0 ** graph.accumulators[0].scale_exponent * n)
    np.testing.assert_allclose(out.logits.numpy(), expected, rtol=1e-6)
    assert (out.logits.argmax(1).numpy() == totals.argmax(1)).all()


def test_quantized_integers_fit_loihi_formats():
    model = _tiny()
    model.data_init(torch.randn(2, 30, 12) * 2)
    model.quantize()
    graph = model.chip_graph()
    for e in graph.synapses:
        if e.target == "readout":
            continue
        assert e.weight.min() >= -256 and e.weight.max() <= 254 and (e.weight % 2 == 0).all()
        assert e.delay.max() <= 62
    for pop in graph.populations:
        assert 0 <= pop.v_decay <= 4096 and 0 < pop.vth < 2**17
        assert np.abs(pop.bias).max(initial=0) < 2**12


def test_qat_gradients_flow_through_integer_forward():
    model = _tiny()
    x = torch.randn(2, 30, 12) * 2
    model.data_init(x)
    model.quantize()
    model.train()
    out = model(x)
    torch.nn.functional.cross_entropy(out.logits, torch.tensor([0, 1])).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert sum(float(g.abs().sum()) for g in grads if g is not None) > 0


def test_quantization_state_survives_state_dict():
    model = _tiny()
    model.data_init(torch.randn(2, 30, 12) * 2)
    model.quantize()
    fresh = _tiny()
    fresh.load_state_dict(model.state_dict())
    assert fresh.quantized
    x = torch.randn(2, 20, 12)
    with torch.no_grad():
        assert torch.equal(fresh(x).logits, model(x).logits)
