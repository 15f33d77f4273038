"""TTFS configuration: validation gives one-line errors naming the field; clip encoding keeps time."""

from __future__ import annotations

import pytest
import torch

from ptsnn.errors import InputError
from ptsnn.testing import random_ttfs
from ptsnn.train.ttfs import TTFSNet, calibrate_windows, encode_clip
from ptsnn.train.ttfs_config import ConvSpec, TTFSConfig


def _one_line_error(match: str, **fields):
    with pytest.raises(InputError, match=match) as info:
        TTFSConfig(**fields).validate()
    assert "\n" not in str(info.value)
    return str(info.value)


@pytest.mark.parametrize("fields, match", [
    (dict(steps_per_window=0), r"steps_per_window must be an integer in 1\.\.256, not 0"),
    (dict(steps_per_window=1000), r"steps_per_window"),
    (dict(frame_size=(4, 4), conv=[ConvSpec(4, kernel=7, padding=1)]), r"conv\[0\]\.kernel 7 is larger than its padded input 6x6"),
    (dict(conv=[ConvSpec(0)]), r"conv\[0\]\.out_channels must be an integer in 1\.\.1024, not 0"),
    (dict(conv=[ConvSpec(4, kernel=3, padding=3)]), r"conv\[0\]\.padding"),
    (dict(conv=[ConvSpec(4, kernel=16)]), r"conv\[0\]\.kernel must be"),
    (dict(frame_size=(6, 6), conv=[ConvSpec(4, pool="max", pool_size=4)]), r"pool_size 4 does not divide its input 6x6"),
    (dict(conv=[ConvSpec(4, pool="median")]), r"conv\[0\]\.pool must be max, avg or empty"),
    (dict(conv=[ConvSpec(4)] * 9), r"at most 8 conv layers"),
    (dict(dense=[0]), r"dense\[0\] must be"),
    (dict(temporal_encoding="fft"), r"temporal_encoding must be one of stack, onoff"),
    (dict(windows=[1.0]), r"windows must list 3 values"),
    (dict(num_classes=1), r"num_classes"),
])
def test_bad_configs_give_one_line_errors(fields, match):
    _one_line_error(match, **fields)


def test_config_round_trips_through_a_dict():
    cfg = TTFSConfig(conv=[ConvSpec(4, pool="avg")], dense=[5], steps_per_window=4).validate()
    again = TTFSConfig.from_dict(cfg.to_dict())
    assert again == cfg
    with pytest.raises(InputError, match="unknown field"):
        TTFSConfig.from_dict({**cfg.to_dict(), "depth": 3})
    with pytest.raises(InputError, match="conv layer has unknown field"):
        TTFSConfig.from_dict({"conv": [{"out_channels": 4, "dilation": 2}]})


def test_window_that_cannot_hold_the_activations_is_an_error():
    net, x, widths = random_ttfs(1)
    too_small = [widths[s.name] / 2 for s in net.stages() if s.kind == "spiking"]
    net.cfg.windows = too_small
    with pytest.raises(InputError, match=r"window of conv0: B = .* cannot hold the activation"):
        calibrate_windows(net, x)
    net.cfg.windows = [widths[s.name] for s in net.stages() if s.kind == "spiking"]
    assert calibrate_windows(net, x) == widths


def test_onoff_encoding_keeps_the_order_of_frames():
    cfg = TTFSConfig(frame_size=(2, 2), frames_per_clip=3, conv=[], dense=[], temporal_encoding="onoff").validate()
    rising = torch.linspace(0, 1, 5).view(1, 5, 1, 1, 1).expand(1, 5, 1, 2, 2)
    enc = encode_clip(rising, cfg)
    assert enc.shape == (1, cfg.input_channels, 2, 2) == (1, 5, 2, 2)
    # first frame 0, two ON steps of 0.5, no OFF: the reversed clip swaps ON and OFF
    assert torch.allclose(enc[0, :, 0, 0], torch.tensor([0.0, 0.5, 0.5, 0.0, 0.0]))
    rev = encode_clip(rising.flip(1), cfg)
    assert torch.allclose(rev[0, :, 0, 0], torch.tensor([1.0, 0.0, 0.0, 0.5, 0.5]))
    assert enc.min() >= 0  # every channel is a valid TTFS input
    stacked = encode_clip(rising, TTFSConfig(frame_size=(2, 2), frames_per_clip=3, conv=[], dense=[],
                                             temporal_encoding="stack").validate())
    assert torch.allclose(stacked[0, :, 0, 0], torch.tensor([0.0, 0.5, 1.0]))
    with pytest.raises(InputError, match="clip frames are 1x3x3"):
        encode_clip(torch.zeros(1, 4, 1, 3, 3), cfg)


def test_twin_input_shape_follows_the_encoding():
    cfg = TTFSConfig(frame_channels=2, frame_size=(8, 8), frames_per_clip=4, conv=[ConvSpec(3, pool="max")],
                     dense=[6], num_classes=4)
    net = TTFSNet(cfg)
    assert cfg.input_shape == (2 * 7, 8, 8)
    clip = torch.rand(3, 10, 2, 8, 8)
    assert net(encode_clip(clip, cfg)).shape == (3, 4)


def test_padding_defaults_to_half_the_kernel():
    cfg = TTFSConfig(frame_size=(8, 8), conv=[ConvSpec(4, kernel=1), ConvSpec(4, kernel=5, pool="max")],
                     dense=[]).validate()
    assert [c.padding for c in cfg.conv] == [0, 2]
    assert cfg.feature_shapes() == [(4, 8, 8), (4, 4, 4)]
