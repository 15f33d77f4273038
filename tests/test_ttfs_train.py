"""The ReLU twin trains with standard autograd, and what it learns carries over to the grid form."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from ptsnn.train.ttfs import TTFSNet, calibrate_windows, encode_clip
from ptsnn.train.ttfs_config import ConvSpec, TTFSConfig
from ptsnn.train.ttfs_integer import quantize_ttfs


def test_a_few_training_steps_reduce_the_loss_and_the_grid_form_follows():
    torch.manual_seed(0)
    cfg = TTFSConfig(frame_size=(8, 8), frames_per_clip=3, conv=[ConvSpec(4, pool="max"), ConvSpec(6, pool="avg")],
                     dense=[16], num_classes=3, steps_per_window=16)
    net = TTFSNet(cfg)
    clips = torch.rand(24, 5, 1, 8, 8)
    x = encode_clip(clips, cfg)
    y = torch.randint(0, 3, (24,))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0], losses
    # the trained twin maps to the grid; the grid twin keeps most of its decisions
    twin = net.double()
    grid = quantize_ttfs(twin, calibrate_windows(twin, x.double()))
    agree = (grid.twin(x.double())["logits"].argmax(1) == twin(x.double()).argmax(1)).float().mean()
    assert agree >= 0.8
