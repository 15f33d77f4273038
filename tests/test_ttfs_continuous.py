"""Continuous-time TTFS SNN == ReLU twin (the exact mapping), from a genuine event-based solver."""

from __future__ import annotations

import pytest
import torch

from ptsnn.errors import InputError
from ptsnn.testing import random_ttfs
from ptsnn.train.ttfs import TTFSNet, calibrate_windows
from ptsnn.train.ttfs_config import TTFSConfig
from ptsnn.train.ttfs_continuous import ContinuousTTFS


def _compare(snn_acts, relu_acts):
    worst = {}
    for name, relu in relu_acts.items():
        worst[name] = float((snn_acts[name].flatten(1) - relu.detach().flatten(1)).abs().max())
    return worst


@pytest.mark.parametrize("seed", range(6))
def test_snn_spike_times_equal_relu_twin(seed):
    net, x, widths = random_ttfs(seed)
    snn = ContinuousTTFS(net, widths)
    times = snn.run(x)
    worst = _compare(snn.activations(x), net.activations(x))
    assert max(worst.values()) < 1e-9, worst
    for st in net.stages():  # every spike lies inside its layer's window
        if st.kind != "readout":
            w = snn.windows[st.name]
            assert times[st.name].min() >= w.t_min - 1e-12 and times[st.name].max() <= w.t_max + 1e-12
    # the twin is not trivially silent: some neurons fire early (positive activation) in every layer
    acts = net.activations(x)
    assert all(float(acts[s.name].detach().max()) > 0 for s in net.stages() if s.kind == "spiking")


def test_anchor_alpha_gives_the_same_spike_times():
    net, x, _ = random_ttfs(3)
    with torch.no_grad():  # alpha = 1 (the anchor's choice) needs sum_j W_ij < 1 for every neuron
        for p in net.parameters():
            p.mul_(0.3)
    widths = calibrate_windows(net, x)
    unit = ContinuousTTFS(net, widths).run(x)
    anchor = ContinuousTTFS(net, widths, alpha_mode="anchor").run(x)
    for name in unit:
        assert torch.allclose(unit[name], anchor[name], atol=1e-9, rtol=0), name


def test_anchor_alpha_rejects_weights_whose_sum_reaches_one():
    net, x, widths = random_ttfs(0)
    with torch.no_grad():
        net.convs[0].weight.fill_(0.2)  # 9 or more inputs of 0.2 per neuron: sum >= 1
    with pytest.raises(InputError, match=r"conv0: alpha = 1 needs sum_j W_ij < 1"):
        ContinuousTTFS(net, widths, alpha_mode="anchor")


def test_activation_beyond_the_window_is_clipped_and_without_hold_fires_early():
    """A window smaller than the largest activation: with the hold the spike is clipped to t_min(n)
    (activation B); without it the neuron fires while its inputs are still arriving and the spike time no
    longer encodes the activation. The solver follows the dynamics; it does not return the ReLU."""
    torch.manual_seed(0)
    cfg = TTFSConfig(frame_size=(4, 4), frames_per_clip=1, conv=[], dense=[6], num_classes=2)
    net = TTFSNet(cfg).double()
    with torch.no_grad():
        net.dense[0].weight.abs_()  # all-positive drive: a large activation for bright inputs
    x = torch.rand(8, *cfg.input_shape, dtype=torch.float64)
    relu = net.activations(x)["dense0"].detach()
    b = float(relu.max()) / 2
    widths = {"input": 1.0, "dense0": b}
    snn = ContinuousTTFS(net, widths)
    clipped = snn.activations(x)["dense0"].flatten(1)
    assert torch.allclose(clipped, relu.clamp(max=b), atol=1e-9)
    snn.layers["dense0"].hold.zero_()
    early = snn.run(x)["dense0"].flatten(1)
    assert bool((early < snn.windows["dense0"].t_min - 1e-9).any())
