"""The fast simulator runs any netx file netx can build (input, dense, delays, dense_rec, conv, flatten; CUBA and
sigma-delta neurons) and equals Lava's fixed_pt models bit for bit.

Three kinds of evidence:
* Lava's own process-model classes (LIF, SigmaDelta, Delta, Sigma) driven in-process, step by step, against
  the simulator's kernels, including the int32/24-bit wrap-around and saturation regimes (fast);
* lava-dl's reference networks shipped in site-packages (PilotNet SDNN, NTIDIGITS with axonal delays) against
  their ground truth (fast);
* networks built with slayer and exported by lava-dl's own ``export_hdf5``, run in Lava (``@pytest.mark.lava``;
  three small ones in the default run, the rest ``slow``).
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import pytest

from ptsnn import compat
from ptsnn.chip import kernels
from ptsnn.chip.synapses import conv2d_exact
from ptsnn.deploy import fastsim, lava_runner
from ptsnn.errors import InputError
from ptsnn.formats.netx import (
    ConvLayerSpec,
    CubaNeuronSpec,
    DenseLayerSpec,
    FlattenLayerSpec,
    InputLayerSpec,
    SdnnNeuronSpec,
    network_shapes,
    read_netx,
    write_netx,
)
from ptsnn.numerics import loihi

compat.apply()
_SITE = Path(np.__file__).resolve().parents[1]
GTS = _SITE / "tests" / "lava" / "lib" / "dl" / "netx" / "gts"
LAVA_TIMEOUT = 300


def _compare_with_lava(path, inputs, input_message_bits=0, num_layers=None, input_shape=None, **reset):
    """Run both; return per-block (lava nonzero count, mismatches) after asserting shapes agree. ``reset``:
    ``reset_interval`` / ``reset_offset`` for ``hdf5.Network``."""
    layers = read_netx(path, num_layers=num_layers)
    fast = fastsim.simulate(layers, inputs, input_message_bits=input_message_bits, input_shape=input_shape, **reset)
    lava = lava_runner.run_netx(path, inputs, input_message_bits=input_message_bits, timeout_s=LAVA_TIMEOUT,
                                num_layers=num_layers, input_shape=input_shape, **reset)
    assert len(lava.layer_outputs) == len(fast.layer_outputs)
    stats = []
    for a, b in zip(lava.layer_outputs, fast.layer_outputs):
        assert a.shape == b.shape
        stats.append((int(np.count_nonzero(a)), int((a != b).sum())))
    return stats


def _assert_exact_and_active(stats):
    assert all(m == 0 for _, m in stats), f"mismatches per block: {stats}"
    assert all(n > 0 for n, _ in stats), f"a block is silent, the comparison would mean little: {stats}"


# ------------------------------------------------------------------------------------ slayer networks
def _slayer():
    from lava.lib.dl import slayer

    return slayer


def _export(blocks, path, x):
    """Forward once (slayer infers shapes), then lava-dl's own export_hdf5 per block."""
    import torch

    with torch.no_grad():
        y = x
        for b in blocks:
            y = b(y)
    with h5py.File(path, "w") as h:
        layer = h.create_group("layer")
        for i, b in enumerate(blocks):
            b.export_hdf5(layer.create_group(f"{i}"))
    return path


CUBA = dict(threshold=1.0, current_decay=0.25, voltage_decay=0.05, requires_grad=False)


def _dense_net(tmp_path, delay: bool, seed: int):
    import torch

    slayer = _slayer()
    torch.manual_seed(seed)
    blocks = [slayer.block.cuba.Dense(CUBA, 16, 12, weight_scale=2, delay=delay),
              slayer.block.cuba.Dense(CUBA, 12, 6, weight_scale=2, delay=delay)]
    x = (torch.rand(2, 16, 30) < 0.3).float()
    if delay:  # slayer creates its delay parameters at the first forward pass
        _export(blocks, tmp_path / "warmup.net", x)
        for b in blocks:
            b.delay.delay.data = torch.randint(0, 6, b.delay.delay.shape).float()
    path = _export(blocks, tmp_path / "dense.net", x)
    return path, x.numpy().astype(np.int32)


@pytest.mark.lava
def test_slayer_dense_with_delays_equals_lava(tmp_path):
    path, x = _dense_net(tmp_path, delay=True, seed=0)
    with h5py.File(path) as f:  # slayer's axonal delay export: one delay per output neuron
        assert f["layer/0/delay"].shape == (12,) and f["layer/0/delay"][()].max() > 0
        assert f["layer/1/delay"][()].max() > 0
    _assert_exact_and_active(_compare_with_lava(path, x))


@pytest.mark.lava
@pytest.mark.slow
def test_slayer_dense_equals_lava(tmp_path):
    path, x = _dense_net(tmp_path, delay=False, seed=1)
    _assert_exact_and_active(_compare_with_lava(path, x))


@pytest.mark.lava
def test_slayer_conv_flatten_dense_equals_lava(tmp_path):
    """Non-square image, asymmetric kernel/stride/padding: catches any W/H mix-up in netx's flip + transpose."""
    import torch

    slayer = _slayer()
    torch.manual_seed(2)
    blocks = [slayer.block.cuba.Input(None, delay_shift=False),
              slayer.block.cuba.Conv(CUBA, 2, 4, (3, 2), stride=(1, 2), padding=(1, 0), weight_scale=3),
              slayer.block.cuba.Conv(CUBA, 4, 6, 3, stride=2, padding=1, weight_scale=3),
              slayer.block.cuba.Flatten(),
              slayer.block.cuba.Dense(CUBA, 6 * 4 * 2, 5, weight_scale=3)]
    x = (torch.rand(2, 2, 8, 6, 30) < 0.3).float()  # slayer NCHWT
    path = _export(blocks, tmp_path / "conv.net", x)
    x_lava = x.numpy().transpose(0, 3, 2, 1, 4).astype(np.int32)  # Lava [B, W, H, C, T]
    assert fastsim.input_shape(read_netx(path)) == (6, 8, 2)
    _assert_exact_and_active(_compare_with_lava(path, x_lava))


@pytest.mark.lava
@pytest.mark.slow
def test_slayer_recurrent_equals_lava(tmp_path):
    import torch

    slayer = _slayer()
    torch.manual_seed(3)
    blocks = [slayer.block.cuba.Recurrent(CUBA, 10, 8, weight_scale=2),
              slayer.block.cuba.Dense(CUBA, 8, 4, weight_scale=4)]
    x = (torch.rand(2, 10, 30) < 0.4).float()
    path = _export(blocks, tmp_path / "rec.net", x)
    layers = read_netx(path)
    assert layers[0].recurrent
    x_np = x.numpy().astype(np.int32)
    _assert_exact_and_active(_compare_with_lava(path, x_np))
    # the feedback synapse matters: without it the first layer's spikes differ
    no_rec = [DenseLayerSpec(layers[0].weight, layers[0].neuron, weight_rec=np.zeros_like(layers[0].weight_rec),
                             name="r")] + layers[1:]
    assert not np.array_equal(fastsim.simulate(no_rec, x_np).layer_outputs[0],
                              fastsim.simulate(layers, x_np).layer_outputs[0])


@pytest.mark.lava
def test_slayer_sigma_delta_equals_lava(tmp_path):
    import torch

    slayer = _slayer()
    torch.manual_seed(4)
    sd = dict(threshold=0.1, activation=torch.nn.functional.relu, requires_grad=False)
    blocks = [slayer.block.sigma_delta.Input(sd),
              slayer.block.sigma_delta.Dense(sd, 12, 10, weight_scale=2),
              slayer.block.sigma_delta.Output(sd, 10, 4, weight_scale=2)]
    x = torch.cumsum(torch.randint(-3, 4, (2, 12, 30)).float(), -1) / 8
    path = _export(blocks, tmp_path / "sdnn.net", x)
    layers = read_netx(path)
    assert isinstance(layers[0].neuron, SdnnNeuronSpec) and layers[-1].neuron.sigma_output
    stats = _compare_with_lava(path, (x * 64).round().numpy().astype(np.int32))
    _assert_exact_and_active(stats)


# ----------------------------------------------------------------------- hand-built corner cases (slow)
@pytest.mark.lava
@pytest.mark.slow
def test_conv_groups_dilation_bias_and_sdnn_conv_equal_lava(tmp_path):
    rng = np.random.default_rng(1)
    layers = [InputLayerSpec((4, 9, 7)),
              ConvLayerSpec(2 * rng.integers(-40, 60, (6, 2, 3, 2)), CubaNeuronSpec(2048, 1024, 60), (6, 7, 8),
                            padding=(1, 1), dilation=(2, 1), groups=2, bias=rng.integers(-5, 10, 6)),
              ConvLayerSpec(2 * rng.integers(-40, 60, (4, 6, 2, 3)), CubaNeuronSpec(4096, 512, 40), (4, 3, 3),
                            stride=(2, 2)),
              FlattenLayerSpec(),
              DenseLayerSpec(2 * rng.integers(-30, 60, (5, 36)), CubaNeuronSpec(1024, 256, 50), bias=rng.integers(-3, 5, 5))]
    path = write_netx(tmp_path / "c2.net", layers)
    _assert_exact_and_active(_compare_with_lava(path, (rng.random((2, 7, 9, 4, 30)) < 0.3).astype(np.int32)))

    sd = SdnnNeuronSpec
    layers = [InputLayerSpec((2, 6, 5), sd(1)),
              ConvLayerSpec(2 * rng.integers(-40, 60, (3, 2, 3, 3)), sd(2), (3, 4, 3), bias=rng.integers(-5, 10, 3)),
              FlattenLayerSpec(),
              DenseLayerSpec(2 * rng.integers(-30, 60, (5, 36)), sd(3), bias=rng.integers(-3, 5, 5)),
              DenseLayerSpec(2 * rng.integers(-30, 60, (3, 5)), sd(0, sigma_output=True))]
    path = write_netx(tmp_path / "sc.net", layers)
    x = np.cumsum(rng.integers(-2, 3, (2, 5, 6, 2, 30)), axis=-1).astype(np.int32) + 10
    _assert_exact_and_active(_compare_with_lava(path, x))


@pytest.mark.lava
@pytest.mark.slow
def test_input_neuron_per_input_delays_recurrent_sdnn_and_huge_payloads_equal_lava(tmp_path):
    rng = np.random.default_rng(3)
    # input CUBA neuron (its file bias is netx's unused transform), per-input delays, neuron-less dense
    layers = [InputLayerSpec((6,), CubaNeuronSpec(4096, 2048, 3), bias=np.array(50)),
              DenseLayerSpec(2 * rng.integers(-40, 80, (5, 6)), CubaNeuronSpec(1024, 512, 60), delay=rng.integers(0, 4, 6)),
              DenseLayerSpec(2 * rng.integers(-40, 80, (4, 5)), None)]
    path = write_netx(tmp_path / "m1.net", layers)
    stats = _compare_with_lava(path, rng.integers(0, 400, (2, 6, 30)).astype(np.int32))
    assert [m for _, m in stats] == [0, 0, 0] and stats[0][0] > 0 and stats[1][0] > 0 and stats[2][0] == 0

    # graded input with 2**20 payloads: Lava's int32 registers wrap, the exact (replaying) LIF path runs
    layers = [InputLayerSpec((6,)),
              DenseLayerSpec(2 * rng.integers(-100, 127, (5, 6)), CubaNeuronSpec(0, 0, 131071)),
              DenseLayerSpec(2 * rng.integers(-20, 127, (4, 5)), CubaNeuronSpec(100, 4000, 10))]
    path = write_netx(tmp_path / "big.net", layers)
    x = rng.integers(-(1 << 20), 1 << 20, (2, 6, 30)).astype(np.int32)
    _assert_exact_and_active(_compare_with_lava(path, x, input_message_bits=24))

    # recurrent CUBA and recurrent SDNN layers, and a dense_rec with delays (netx drops its weight exponent)
    layers = [InputLayerSpec((6,)),
              DenseLayerSpec(2 * rng.integers(-20, 80, (5, 6)), CubaNeuronSpec(1024, 512, 40), bias=rng.integers(-2, 3, 5),
                             weight_rec=2 * rng.integers(-60, 60, (5, 5))),
              DenseLayerSpec(2 * rng.integers(10, 80, (4, 5)), SdnnNeuronSpec(1), weight_rec=2 * rng.integers(-60, 60, (4, 4)),
                             bias=rng.integers(0, 5, 4)),
              DenseLayerSpec(2 * rng.integers(-20, 80, (4, 4)), CubaNeuronSpec(1024, 512, 300), delay=rng.integers(0, 3, 4),
                             weight_rec=2 * rng.integers(-30, 60, (4, 4)))]
    path = write_netx(tmp_path / "r2.net", layers)
    _assert_exact_and_active(_compare_with_lava(path, (rng.random((2, 6, 30)) < 0.5).astype(np.int32)))


def _reset_net(tmp_path, rng):
    """An input CUBA neuron, a dense CUBA layer and a recurrent CUBA layer with slow decays (state carries
    across a reset), and a sigma-delta layer (netx ignores resets there)."""
    layers = [InputLayerSpec((6,), CubaNeuronSpec(4096, 300, 250)),
              DenseLayerSpec(2 * rng.integers(-20, 90, (8, 6)), CubaNeuronSpec(300, 200, 250)),
              DenseLayerSpec(2 * rng.integers(-20, 90, (5, 8)), CubaNeuronSpec(400, 100, 200),
                             weight_rec=2 * rng.integers(-40, 60, (5, 5))),
              DenseLayerSpec(2 * rng.integers(10, 90, (4, 5)), SdnnNeuronSpec(1))]
    return write_netx(tmp_path / "reset.net", layers)


@pytest.mark.lava
def test_reset_interval_equals_lavas_lif_reset(tmp_path):
    """``hdf5.Network(reset_interval=7, reset_offset=3)``: every CUBA block is a LIFReset, block k reset at
    its own phase; the fast simulator equals Lava in every block, and the resets change the spikes."""
    rng = np.random.default_rng(11)
    path = _reset_net(tmp_path, rng)
    x = rng.integers(0, 160, (1, 6, 45)).astype(np.int32)
    _assert_exact_and_active(_compare_with_lava(path, x, reset_interval=7, reset_offset=3))
    layers = read_netx(path)
    plain = fastsim.simulate(layers, x)
    reset = fastsim.simulate(layers, x, reset_interval=7, reset_offset=3)
    for k in (0, 1, 2):  # every CUBA block (input, dense, recurrent) is changed by its resets
        assert not np.array_equal(plain.layer_outputs[k], reset.layer_outputs[k]), k


@pytest.mark.lava
def test_spike_exp_equals_lava(tmp_path):
    """``hdf5.Network(spike_exp=...)`` on Delta input, SigmaDelta (biased), recurrent SigmaDelta and Sigma output
    blocks: equal to Lava at 0 and 3 fraction bits, and different from the default 6."""
    rng = np.random.default_rng(12)
    layers = [InputLayerSpec((6,), SdnnNeuronSpec(2)),
              DenseLayerSpec(rng.integers(-60, 90, (8, 6)), SdnnNeuronSpec(3), bias=rng.integers(0, 4, 8)),
              DenseLayerSpec(rng.integers(-40, 90, (5, 8)), SdnnNeuronSpec(2), weight_rec=rng.integers(-30, 30, (5, 5))),
              DenseLayerSpec(rng.integers(-50, 90, (4, 5)), SdnnNeuronSpec(0, sigma_output=True))]
    path = write_netx(tmp_path / "sdnn_exp.net", layers)
    x = np.cumsum(rng.integers(-3, 5, (1, 6, 25)), -1).astype(np.int32)
    for exp in (0, 3):
        _assert_exact_and_active(_compare_with_lava(path, x, spike_exp=exp))
    default = fastsim.simulate(read_netx(path), x).output
    assert not np.array_equal(fastsim.simulate(read_netx(path), x, spike_exp=3).output, default)
    with pytest.raises(InputError, match="spike_exp"):
        fastsim.simulate(read_netx(path), x, spike_exp=-1)


def test_reset_schedule_and_kernel_paths():
    """Block k of netx is reset at Lava steps t (from 1) with t % interval == (offset + 1 + k) % interval;
    the CUBA fast path and the int32 reference agree with resets, voltages included."""
    np.testing.assert_array_equal(np.flatnonzero(kernels.reset_steps(20, 7, 3 + 1 + 0)) + 1, [4, 11, 18])
    assert kernels.reset_steps(5, None, 0) is None
    with pytest.raises(ValueError):
        kernels.reset_steps(5, 0, 0)
    rng = np.random.default_rng(5)
    a_in = rng.integers(-200, 900, (60, 2, 7))
    a_in[20:40] = 0  # a silent stretch: the rest-skip and a reset inside it
    p = loihi.CubaParams(du=100, dv=50, vth=300, bias_mant=0)
    mask = kernels.reset_steps(60, 9, 2)
    fast = kernels.run_cuba(a_in, p, record_voltage=True, path="fast", reset=mask)
    ref = kernels.run_cuba(a_in, p, record_voltage=True, path="reference", reset=mask)
    for f, r in zip(fast, ref):
        np.testing.assert_array_equal(f, r)
    assert not np.array_equal(fast[0], kernels.run_cuba(a_in, p))
    with pytest.raises(InputError, match="reset interval"):
        fastsim.simulate([InputLayerSpec((3,), CubaNeuronSpec(4096, 4096, 1))], np.ones((3, 4), np.int32), reset_interval=0)


@pytest.mark.lava
@pytest.mark.slow
def test_ntidigits_reference_in_lava_equals_fast(tmp_path):
    """lava-dl's NTIDIGITS network (axonal delays up to 62, 256-neuron layers), first 150 steps, in Lava."""
    inp = np.load(GTS / "ntidigits" / "input.npy")[:, :150].astype(np.int32)
    _assert_exact_and_active(_compare_with_lava(GTS / "ntidigits" / "ntidigits.net", inp, num_layers=5))


# --------------------------------------------------------------------- lava-dl reference networks (fast)
def test_pilotnet_sdnn_reference_matches_lava_dl_ground_truth():
    """lava-dl's test feeds one frame into the input neuron's a_in for len(net.layers) = 9 steps (the
    RingBuffer source repeats it) and records the Sigma output: ground truth from Lava."""
    layers = read_netx(GTS / "pilotnet_sdnn" / "network.net")
    frame = np.load(GTS / "pilotnet_sdnn" / "input.npy")  # (W=100, H=33, C=3, T=1)
    assert fastsim.input_shape(layers) == frame.shape[:-1]
    out = fastsim.simulate(layers, np.repeat(frame, 9, axis=-1)).output  # unbatched in, unbatched out
    gt = np.load(GTS / "pilotnet_sdnn" / "output.npy")
    assert out.shape == gt.shape == (1, 9) and np.array_equal(out, gt) and np.count_nonzero(gt) > 5
    # 8 synapses deep: only the last step sees the frame (the biases drive the earlier ones), and it must
    blank = fastsim.simulate(layers, np.zeros_like(frame), steps=9).output
    assert np.array_equal(blank[:, :-1], gt[:, :-1]) and blank[0, -1] != gt[0, -1]


def test_ntidigits_reference_matches_lava_dl_ground_truth():
    """lava-dl's NTIDIGITS ground truth equals the simulator's output one step later, all 3000 steps."""
    layers = read_netx(GTS / "ntidigits" / "ntidigits.net", num_layers=5)  # layer 5 is 'average'
    inp = np.load(GTS / "ntidigits" / "input.npy").astype(np.int32)
    gt = np.load(GTS / "ntidigits" / "output.npy")
    out = fastsim.simulate(layers, inp).output
    assert out.shape == gt.shape and out.sum() == gt.sum() > 10000
    assert np.array_equal(out[:, :-1], gt[:, 1:])
    with pytest.raises(InputError, match=r"layer 5 has type 'average'"):
        read_netx(GTS / "ntidigits" / "ntidigits.net")


# ------------------------------------------------------- Lava's process models driven directly (fast)
def _lava_lif(a_in: np.ndarray, du: int, dv: int, vth: int, bias) -> np.ndarray:
    from lava.proc.lif.models import PyLifModelBitAcc

    m = PyLifModelBitAcc({})
    n = a_in.shape[1]
    m.u, m.v = np.zeros(n, np.int32), np.zeros(n, np.int32)
    m.du, m.dv, m.vth = du, dv, vth
    m.bias_mant = np.broadcast_to(np.asarray(bias, np.int32), (n,)).astype(np.int16)
    m.bias_exp = np.full(n, 6, np.int16)
    out = np.zeros(a_in.shape, bool)
    for t in range(a_in.shape[0]):  # PyLifModelBitAcc.run_spk without the ports
        m.scale_bias()
        if not m.isthrscaled:
            m.scale_threshold()
        m.subthr_dynamics(activation_in=a_in[t].astype(np.int32))
        out[t] = m.spiking_activation()
        m.reset_voltage(out[t])
    return out


@pytest.mark.parametrize("case", ["plain", "wrapping_u", "saturating_v", "huge_input", "bias"])
def test_cuba_kernels_equal_lavas_lif_model(case):
    rng = np.random.default_rng(sum(map(ord, case)))
    steps, n = 300, 16
    i_decay, v_decay, vth, bias = 1024, 512, 200, 0
    a_in = rng.integers(-300, 400, (steps, n))
    if case == "wrapping_u":  # no current decay, steady drive: u runs past 2**23 and wraps
        i_decay, v_decay, vth = 0, 4096, 100000
        a_in = rng.integers(2000, 60000, (steps, n))
    elif case == "saturating_v":
        i_decay, v_decay, vth = 4096, 0, 131071
        a_in = rng.integers(-30000, 60000, (steps, n))
    elif case == "huge_input":  # |a_in << 6| >= 2**23: the int32-replaying path
        a_in = rng.integers(-(1 << 26), 1 << 26, (steps, n))
    elif case == "bias":
        bias = rng.integers(-4096, 4095, n)
        a_in = a_in // 4
    want = _lava_lif(a_in, i_decay - 1, v_decay, vth, bias)
    p = loihi.CubaParams.from_netx(i_decay, v_decay, vth, bias)
    got = kernels.run_cuba(a_in[:, None, :], p)[:, 0]
    ref = kernels.run_cuba(a_in[:, None, :], p, path="reference")[:, 0]
    assert np.array_equal(got, want) and np.array_equal(ref, want) and 0 < want.sum() < want.size
    if case == "wrapping_u":
        assert np.abs(np.cumsum(a_in, 0) << 6).max() > 2**24  # it really wrapped


def _lava_sdnn(kind: str, a_in: np.ndarray, vth: int, bias) -> np.ndarray:
    from lava.proc.sdn.models import PyDeltaModelFixed, PySigmaDeltaModelFixed, PySigmaModelFixed
    from lava.proc.sdn.process import ActivationMode

    n = a_in.shape[1]
    z = lambda: np.zeros(n, np.int32)  # noqa: E731
    model = {"delta": PyDeltaModelFixed, "sigma": PySigmaModelFixed, "sigma_delta": PySigmaDeltaModelFixed}[kind]
    m = model({"act_mode": ActivationMode.RELU})
    m.sigma, m.act, m.residue, m.error = z(), z(), z(), z()
    m.vth = np.array([vth << 12], np.int32)
    m.bias = (np.broadcast_to(np.asarray(bias, np.int32), (n,)) << 12).astype(np.int32)
    m.spike_exp, m.state_exp = np.array([6], np.int32), np.array([6], np.int32)
    m.cum_error = np.array([False])
    out = np.zeros(a_in.shape, np.int32)
    with np.errstate(over="ignore"):
        for t in range(a_in.shape[0]):  # the models' run_spk without the ports
            a = a_in[t].astype(np.int32)
            if kind == "sigma":
                m.sigma = m.sigma_dynamics(a)
                out[t] = m.sigma
            elif kind == "delta":
                act = np.left_shift(a, m.spike_exp + m.state_exp)
                out[t] = np.right_shift(m.delta_dynamics(act), m.state_exp)
                m.act = act
            else:
                out[t] = np.right_shift(m.dynamics(a), m.state_exp)
    return out


@pytest.mark.parametrize("kind", ["delta", "sigma_delta", "sigma"])
@pytest.mark.parametrize("scale", [300, 1 << 29])  # ordinary payloads, and int32 wrap-around everywhere
def test_sigma_delta_kernels_equal_lavas_sdn_models(kind, scale):
    rng = np.random.default_rng(scale + len(kind))
    a_in = rng.integers(-scale, scale, (60, 12))
    if kind == "delta":
        a_in = np.cumsum(a_in, axis=0) // 8 % (1 << 25)
    vth, bias = 3, rng.integers(-20, 20, 12)
    want = _lava_sdnn(kind, a_in, vth, bias)
    if kind == "delta":
        got = kernels.delta_run(a_in, vth)
    elif kind == "sigma":
        got = kernels.sigma_run(a_in)
    else:
        got = kernels.sigma_delta_run(a_in, vth, bias)
    assert np.array_equal(got, want) and np.count_nonzero(want) > 0
    k = kernels.SigmaDeltaKernel((12,), kind, vth, bias)  # the step-by-step form used by recurrent layers
    assert np.array_equal(np.stack([k.step(a) for a in a_in]), want)


# ------------------------------------------------------------------------------ reader, writer, errors
def test_conv2d_exact_matches_torch():
    import torch

    rng = np.random.default_rng(0)
    for n, c, h, w, o, g, k, s, p, d in [(3, 4, 9, 7, 6, 2, (3, 2), (1, 2), (1, 0), (1, 1)),
                                         (2, 3, 10, 10, 6, 3, (3, 3), (2, 1), (2, 1), (2, 1))]:
        x = rng.integers(-50, 50, (n, c, h, w))
        wt = rng.integers(-128, 128, (o, c // g, *k))
        want = torch.nn.functional.conv2d(torch.tensor(x, dtype=torch.float64), torch.tensor(wt, dtype=torch.float64),
                                          stride=s, padding=p, dilation=d, groups=g).numpy()
        assert np.array_equal(conv2d_exact(x, wt, s, p, d, g), want)


def test_round_trip_of_every_layer_type(tmp_path):
    rng = np.random.default_rng(0)
    layers = [InputLayerSpec((2, 5, 4), SdnnNeuronSpec(2)),
              ConvLayerSpec(rng.integers(-8, 8, (3, 2, 3, 3)) * 2, SdnnNeuronSpec(1), (3, 3, 2), bias=np.arange(3)),
              FlattenLayerSpec((18, 1, 1)),
              DenseLayerSpec(rng.integers(-8, 8, (4, 18)) * 2, SdnnNeuronSpec(1), weight_rec=np.eye(4, dtype=int) * 2),
              DenseLayerSpec(rng.integers(-8, 8, (2, 4)) * 2, SdnnNeuronSpec(0, sigma_output=True))]
    back = read_netx(write_netx(tmp_path / "all.net", layers))
    assert [type(a) for a in back] == [type(a) for a in layers]
    assert back[1].stride == (1, 1) and back[1].shape == (3, 3, 2) and back[3].recurrent
    assert back[4].neuron.sigma_output and back[0].neuron.message_bits == 16
    with h5py.File(tmp_path / "all.net") as f:
        assert f["layer/3/type"][0] == b"dense_rec" and "messageBits" not in f["layer/0/neuron"]
    net_in, blocks = network_shapes(back)
    assert net_in == (4, 5, 2) and [b.lava_shape for b in blocks] == [(4, 5, 2), (2, 3, 3), (4,), (2,)]


def _write_raw(path, layer_types, extra=None):
    with h5py.File(path, "w") as f:
        for i, kind in enumerate(layer_types):
            g = f.create_group(f"layer/{i}")
            g.create_dataset("type", (1,), "S10", [kind.encode()])
            g.create_dataset("shape", data=np.array([4]))
            if kind == "dense":
                g.create_dataset("weight", data=np.ones((4, 4)))
                g.create_dataset("neuron/type", (1,), "S10", [b"CUBA"])
                for k, v in dict(iDecay=4096, vDecay=4096, vThMant=1).items():
                    g.create_dataset(f"neuron/{k}", data=v)
        if extra:
            extra(f)
    return path


@pytest.mark.parametrize("kind", ["pool", "convT", "unpool", "average", "concat", "dense_comp", "bogus"])
def test_unsupported_layer_types_are_one_line_errors(tmp_path, kind):
    path = _write_raw(tmp_path / "u.net", ["input", "dense", kind])
    with pytest.raises(InputError, match=f"layer 2 has .*type '{kind}'") as err:
        read_netx(path)
    assert "\n" not in str(err.value)


def test_unsupported_neurons_and_message_bits_are_one_line_errors(tmp_path):
    def rf(f):
        del f["layer/1/neuron/type"]
        f["layer/1/neuron"].create_dataset("type", (1,), "S10", [b"RF_IZ"])

    with pytest.raises(InputError, match=r"layer 1 \(dense\): neuron type 'RF_IZ'"):
        read_netx(_write_raw(tmp_path / "rf.net", ["input", "dense"], rf))
    path = _write_raw(tmp_path / "mb.net", ["input", "dense"], lambda f: f["layer/1/neuron"].create_dataset("messageBits", data=8))
    with pytest.raises(InputError, match=r"layer 1 \(dense\): neuron/messageBits"):
        read_netx(path)


def test_chain_errors_match_what_netx_cannot_wire(tmp_path):
    conv = ConvLayerSpec(np.ones((2, 1, 3, 3), int), CubaNeuronSpec(4096, 4096, 1), (2, 2, 2))
    dense = DenseLayerSpec(np.ones((3, 8), int), CubaNeuronSpec(4096, 4096, 1))
    with pytest.raises(ValueError, match="without a flatten"):
        write_netx(tmp_path / "x.net", [InputLayerSpec((1, 4, 4)), conv, dense])
    with pytest.raises(ValueError, match="input shape could not be inferred"):
        write_netx(tmp_path / "x.net", [conv])
    with pytest.raises(ValueError, match=r"shape \(2, 2, 2\) != computed output \(2, 3, 3\)"):
        write_netx(tmp_path / "x.net", [InputLayerSpec((1, 5, 5)), conv])
    write_netx(tmp_path / "ok.net", [InputLayerSpec((1, 4, 4)), conv, FlattenLayerSpec(), dense])
    assert not list(tmp_path.glob("*.tmp")) and not (tmp_path / "x.net").exists()


def test_input_layouts_and_shape_errors():
    layers = [InputLayerSpec((2, 3, 4)),
              ConvLayerSpec(np.full((1, 2, 1, 1), 64), CubaNeuronSpec(4096, 4096, 0), (1, 3, 4))]
    x = np.zeros((4, 3, 2, 5), np.int32)  # Lava (W, H, C, T), unbatched
    x[1, 2, 0, 1] = 1
    out = fastsim.simulate(layers, x).output
    assert out.shape == (4, 3, 1, 5) and out[1, 2, 0].tolist() == [0, 0, 1, 0, 0]  # one step of latency
    flat = fastsim.simulate(layers, x.reshape(1, 24, 5)).output  # flat Lava order, batched
    assert np.array_equal(flat[0], out)
    assert fastsim.simulate(layers, x, steps=3).output.shape == (4, 3, 1, 3)
    for bad, msg in [(np.zeros((2, 3, 4, 5)), "does not fit the network input"), (x + 0.5, "must be integers"),
                     (np.full((4, 3, 2, 5), 2**40), "fit in int32")]:
        with pytest.raises(InputError, match=msg):
            fastsim.simulate(layers, bad)


def test_simulate_cli_fast_backend(tmp_path):
    from typer.testing import CliRunner

    from ptsnn.cli._app import new_app
    from ptsnn.cli.simulate_cmd import simulate

    app = new_app("ptsnn", "test")
    app.command()(simulate)
    app.command("noop")(lambda: None)
    rng = np.random.default_rng(0)
    layers = [InputLayerSpec((2, 4, 3)),
              ConvLayerSpec(2 * rng.integers(10, 60, (2, 2, 2, 2)), CubaNeuronSpec(4096, 2048, 30), (2, 3, 2)),
              FlattenLayerSpec(), DenseLayerSpec(2 * rng.integers(10, 60, (3, 12)), CubaNeuronSpec(4096, 2048, 30))]
    net = write_netx(tmp_path / "n.net", layers)
    x_slayer = (rng.random((2, 2, 4, 3, 20)) < 0.5).astype(np.int8)  # N C H W T
    np.save(tmp_path / "x.npy", x_slayer)
    np.save(tmp_path / "x_lava.npy", x_slayer.transpose(0, 3, 2, 1, 4))
    runner = CliRunner()
    r = runner.invoke(app, ["simulate", str(net), "-i", str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy"),
                            "--layout", "slayer", "--steps", "25"])
    assert r.exit_code == 0, r.output
    r2 = runner.invoke(app, ["simulate", str(net), "-i", str(tmp_path / "x_lava.npy"), "-o", str(tmp_path / "y2.npy"),
                             "--steps", "25"])
    assert r2.exit_code == 0, r2.output
    y, y2 = np.load(tmp_path / "y.npy"), np.load(tmp_path / "y2.npy")
    assert y.shape == (2, 3, 25) and np.array_equal(y, y2) and y.sum() > 0
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]
    r3 = runner.invoke(app, ["simulate", str(net), "-i", str(tmp_path / "x_lava.npy"), "-o", str(tmp_path / "y3.npy"),
                             "--steps", "25", "--reset-interval", "4", "--reset-offset", "1"])
    assert r3.exit_code == 0, r3.output
    want = fastsim.simulate(read_netx(net), np.load(tmp_path / "x_lava.npy"), steps=25, reset_interval=4,
                            reset_offset=1).output
    assert np.array_equal(np.load(tmp_path / "y3.npy"), want)
    bad = runner.invoke(app, ["simulate", str(net), "-i", str(tmp_path / "y.npy"), "-o", str(tmp_path / "z.npy")])
    assert bad.exit_code != 0 and isinstance(bad.exception, InputError) and "does not fit" in str(bad.exception)
    assert not (tmp_path / "z.npy").exists()


@pytest.mark.lava
@pytest.mark.slow
def test_simulate_cli_lava_backend_equals_fast(tmp_path):
    from typer.testing import CliRunner

    from ptsnn.cli._app import new_app
    from ptsnn.cli.simulate_cmd import simulate

    app = new_app("ptsnn", "test")
    app.command()(simulate)
    app.command("noop")(lambda: None)
    path, x = _dense_net(tmp_path, delay=True, seed=5)
    np.save(tmp_path / "x.npy", x[0])  # unbatched
    outs = []
    for backend in ("fast", "lava"):
        r = CliRunner().invoke(app, ["simulate", str(path), "-i", str(tmp_path / "x.npy"), "-o",
                                     str(tmp_path / f"{backend}.npy"), "--backend", backend, "--timeout", "300"])
        assert r.exit_code == 0, r.output
        outs.append(np.load(tmp_path / f"{backend}.npy"))
    assert outs[0].shape == (6, 30) and np.array_equal(outs[0], outs[1]) and outs[0].sum() > 0
