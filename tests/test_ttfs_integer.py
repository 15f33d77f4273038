"""The TTFS network on the deployment grid: integer recurrence == quantized ReLU twin == numpy reference,
spike step for spike step, every neuron firing exactly once; parameters inside Loihi's registers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ptsnn.errors import DesignRuleError, InputError
from ptsnn.testing import random_ttfs
from ptsnn.train.ttfs import TTFSNet
from ptsnn.train.ttfs_config import TTFSConfig
from ptsnn.train.ttfs_integer import quantize_ttfs
from ptsnn.train.ttfs_reference import run_ttfs_reference


def _check_grid(seed, k, batch=6):
    net, x, widths = random_ttfs(seed, batch=batch, steps_per_window=k)
    grid = quantize_ttfs(net, widths)
    twin = grid.twin(x)
    run = grid.spike_times(x)
    for layer in grid.layers:
        if layer.kind == "readout":
            assert torch.equal(run["output"], twin["output"])
            continue
        q = twin[layer.name]
        assert q.min() >= 0 and q.max() <= k
        expected = layer.window_start + k - q  # x = t_max - t on the grid
        assert torch.equal(run[layer.name], expected), layer.name
        assert torch.equal(run[layer.name + ".count"], torch.ones_like(q)), layer.name
    return net, x, grid, twin, run


@pytest.mark.parametrize("seed, k", [(0, 8), (1, 1), (2, 3), (3, 16), (4, 5), (5, 32), (6, 2), (7, 8)])
def test_integer_recurrence_equals_quantized_twin(seed, k):
    _, _, _, twin, _ = _check_grid(seed, k)
    # the grid is used: activations take several levels, not only 0 and K
    assert len(torch.unique(twin["conv0"])) > min(k, 2)


@pytest.mark.parametrize("seed", [0, 2, 5])
def test_numpy_reference_equals_the_torch_recurrence(seed):
    _, x, grid, twin, run = _check_grid(seed, 6, batch=4)
    exported = grid.export()
    ref = run_ttfs_reference(exported, grid.quantize_input(x).numpy().astype(np.int64))
    assert np.array_equal(ref["input"], run["input"].numpy().astype(np.int64))
    for layer in grid.layers:
        if layer.kind == "readout":
            assert np.array_equal(ref["output"], twin["output"].numpy().astype(np.int64))
            continue
        assert np.array_equal(ref[layer.name], run[layer.name].numpy().astype(np.int64)), layer.name
        # over the whole run (to the readout step), never a second spike
        assert np.array_equal(ref[layer.name + ".count"], np.ones_like(ref[layer.name])), layer.name


def test_exported_integers_fit_loihi_registers():
    _, _, grid, _, _ = _check_grid(3, 16)
    exported = grid.export()
    assert exported["format"] == "ptsnn-ttfs-integer/1" and exported["steps_per_window"] == 16
    for layer in exported["layers"]:
        if "weight_mant" in layer:
            w = layer["weight_mant"]
            assert w.dtype == np.int64 and w.min() >= -256 and w.max() <= 254
            assert 0 <= layer["weight_exp"] <= 7
        vth = np.asarray(layer["vth"])
        assert vth.min() >= 0 and vth.max() < 2**17
        for ev in layer["timing"]:
            assert -256 <= np.min(ev["mant"]) and np.max(ev["mant"]) <= 254 and 0 <= ev["exp"] <= 7
    starts = [l["window_start"] for l in exported["layers"]]
    assert starts == sorted(starts)  # windows follow the data flow


def test_grid_twin_approaches_the_float_twin_as_k_grows():
    errors = {}
    for k in (2, 8, 64):
        net, x, widths = random_ttfs(4, batch=16, steps_per_window=k)
        grid = quantize_ttfs(net, widths)
        errors[k] = float((grid.twin(x)["logits"] - net(x).detach()).abs().max())
    assert errors[64] < errors[8] < errors[2], errors


def test_a_layer_that_cannot_fit_is_a_design_rule_error():
    """A window far smaller than the weights' reach: one input step would move the spike by thousands of
    grid steps, which no 8-bit weight with a slope >= 1 can express."""
    cfg = TTFSConfig(frame_size=(4, 4), frames_per_clip=1, conv=[], dense=[4], num_classes=2, steps_per_window=16)
    net = TTFSNet(cfg).double()
    with pytest.raises(DesignRuleError, match=r"ttfs layer dense0: does not fit the integer grid at K=16"):
        quantize_ttfs(net, {"input": 1.0, "dense0": 1e-4})
    with pytest.raises(InputError, match=r"ttfs windows: dense0 needs a window width B > 0, got None"):
        quantize_ttfs(net, {"input": 1.0})


def test_hand_computed_neuron_matches_the_reference_step_by_step():
    """docs/ttfs.md's worked example: K = 4, two inputs (w = 3, -1), alpha = 2 (slope S = 4), vth = 22,
    no hold needed, force 3, self-inhibition 8. Inputs q = (2, 3) spike at steps 2 and 1; the twin gives
    q = floor((3*2 - 1*3 + 1) / 4) = 1, so the neuron fires at T_1 + K - 1 = 7."""
    k = 4
    timing = [dict(name="alpha", step=0, mant=np.array([[[2]]]), exp=0),
              dict(name="hold_on", step=0, mant=0, exp=0), dict(name="hold_off", step=1, mant=0, exp=0),
              dict(name="release_on", step=3, mant=np.array([[[0]]]), exp=0),
              dict(name="release_off", step=4, mant=np.array([[[0]]]), exp=0),
              dict(name="force", step=7, mant=3, exp=0)]
    dense = dict(name="dense0", kind="spiking", source="input", source_shape=(2, 1, 1), shape=(1, 1, 1),
                 source_start=0, window_start=4, weight_mant=np.array([[[[3]], [[-1]]]]), weight_exp=0, stride=1,
                 padding=0, vth=22, inhibit_mant=8, inhibit_exp=0, timing=timing)
    readout = dict(name="output", kind="readout", source="dense0", source_shape=(1, 1, 1), shape=(1, 1, 1),
                   source_start=4, window_start=8, read_step=8, weight_mant=np.array([[[[5]]]]), weight_exp=0,
                   stride=1, padding=0, vth=2**17 - 1, inhibit_mant=0, inhibit_exp=0,
                   timing=[dict(name="alpha", step=4, mant=np.array([[[1]]]), exp=0)])
    exported = dict(steps_per_window=k, input_window_start=0, final_step=8, layers=[dense, readout])
    ref = run_ttfs_reference(exported, np.array([[[[2]], [[3]]]]), record_voltage=True)
    assert ref["input"].ravel().tolist() == [2, 1]
    # v / 64 per step: alpha from step 1, -1 from step 2, +3 from step 3: slope 4 after; fires at 7 (v > 22);
    # at 8 self-inhibition (-8) and force (+3) arrive: u = -1, v falls and never crosses again
    assert (ref["dense0.v"][0, :, 0] >> 6).tolist() == [0, 2, 3, 7, 11, 15, 19, 0, -1]
    assert ref["dense0"].ravel().tolist() == [7] and ref["dense0.count"].ravel().tolist() == [1]
    # readout: v(8) / 64 = alpha * K + w * q = 1 * 4 + 5 * 1
    assert ref["output"].ravel().tolist() == [9]


def test_chip_fire_once_kernel_reproduces_the_reference():
    """ptsnn/chip's fire-once kernel (CUBA + Dense self-inhibition), fed each layer's synaptic and timing
    input, gives the reference's spikes: the grid form is expressible in the chip IR's node type."""
    from ptsnn.chip import kernels
    from ptsnn.numerics import loihi
    from ptsnn.train.ttfs_reference import Synapse, timing_current

    _, x, grid, _, run = _check_grid(0, 8, batch=3)
    exported = grid.export()
    steps = exported["final_step"] + 1
    trains = {"input": np.arange(steps)[:, None, None] == run["input"].numpy().reshape(1, 3, -1)}  # [T, B, N]
    for layer in exported["layers"]:
        if layer["kind"] == "readout":
            continue
        syn = Synapse(layer)
        src = trains[layer["source"]]
        a_in = np.zeros((steps, 3, syn.out), np.int64)
        for t in range(steps):
            a_in[t] = timing_current(layer, t, syn.out)[None] + (syn(src[t - 1]) if t else 0)
        params = loihi.CubaParams.from_netx(0, 0, int(layer["vth"]))
        spikes, _ = kernels.run_fire_once(a_in, params, -(layer["inhibit_mant"] << layer["inhibit_exp"]))
        assert np.array_equal(spikes.sum(0), np.ones((3, syn.out))), layer["name"]
        first = spikes.argmax(0).reshape(run[layer["name"]].shape)
        assert np.array_equal(first, run[layer["name"]].numpy().astype(np.int64)), layer["name"]
        trains[layer["name"]] = spikes


def test_windows_too_small_for_the_data_still_match_the_clipped_twin():
    """Halved windows: many neurons would cross while their inputs still arrive. The hold keeps them until
    t_min(n), so they fire there (q = K) and the recurrence still equals the clipped twin exactly."""
    net, x, widths = random_ttfs(2, batch=8, steps_per_window=8)
    small = {name: (b if name == "input" else b / 2) for name, b in widths.items()}
    grid = quantize_ttfs(net, small)
    twin, run = grid.twin(x), grid.spike_times(x)
    clipped = held = 0
    for layer in grid.layers:
        if layer.kind != "spiking":
            continue
        assert torch.equal(run[layer.name], layer.window_start + 8 - twin[layer.name]), layer.name
        assert torch.equal(run[layer.name + ".count"], torch.ones_like(twin[layer.name]))
        held += int(layer.timing_value("hold_off") > 0)
        clipped += int((twin[layer.name] == 8).sum())
    assert clipped > 0 and held > 0  # activations beyond the window occurred, and a hold was needed
