"""`ptsnn simulate` runs what `lava.lib.dl.netx.hdf5.Network` runs (issue #9, item 6), bit-exact with Lava's
``Loihi2SimCfg(select_tag="fixed_pt")`` on networks built here with lava-dl's slayer blocks and its own
``export_hdf5``:

* a conv-first network without an input layer: the shape comes from the input array in either layout
  (``--layout lava`` = [batch, W, H, C, time], ``--layout lava-dl`` = [batch, C, H, W, time]) or from
  ``--input-shape``; Lava gets it as ``hdf5.Network(input_shape=...)``;
* netx values outside a Loihi register that Lava simulates anyway (clipped and zeroed 8-bit weights, decays
  outside 0..4096, a 13-bit bias beyond range, a 17-bit threshold beyond range): one warning line each, and
  the spikes Lava computes;
* a saturating dense network whose current wraps (asserted from the voltages the run records).
"""

from __future__ import annotations

import re
import sys
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_fastsim_netx_general import CUBA, _compare_with_lava, _export, _slayer  # noqa: E402

from ptsnn.chip import kernels  # noqa: E402
from ptsnn.chip.synapses import dense_input  # noqa: E402
from ptsnn.deploy import fastsim, netx_inputs  # noqa: E402
from ptsnn.errors import InputError, RegisterWarning  # noqa: E402
from ptsnn.formats.netx import needs_input_shape, read_netx  # noqa: E402
from ptsnn.numerics import loihi  # noqa: E402


def _app():
    from ptsnn.cli._app import new_app
    from ptsnn.cli.simulate_cmd import simulate

    app = new_app("ptsnn", "test")
    app.command()(simulate)
    app.command("noop")(lambda: None)
    return app


def _invoke(*args):
    from typer.testing import CliRunner

    return CliRunner().invoke(_app(), ["simulate", *map(str, args)])  # stdout and stderr kept apart


def _conv_first_net(tmp_path):
    """conv (asymmetric kernel, stride, padding) -> conv -> flatten -> dense, no input layer: the file's
    first layer is the convolution (what lava-dl exports for a network without an Input block)."""
    import torch

    slayer = _slayer()
    torch.manual_seed(7)
    blocks = [slayer.block.cuba.Conv(CUBA, 2, 4, (3, 2), stride=(1, 2), padding=(1, 0), weight_scale=3),
              slayer.block.cuba.Conv(CUBA, 4, 5, 3, stride=2, padding=1, weight_scale=3),
              slayer.block.cuba.Flatten(),
              slayer.block.cuba.Dense(CUBA, 5 * 4 * 2, 4, weight_scale=3)]
    x = (torch.rand(2, 2, 8, 6, 30) < 0.3).float()  # lava-dl N C H W T: non-square, so W/H mix-ups show
    path = _export(blocks, tmp_path / "convfirst.net", x)
    return path, x.numpy().astype(np.int8)


@pytest.mark.lava
def test_conv_first_without_input_layer_equals_lava_in_both_layouts(tmp_path):
    path, x_dl = _conv_first_net(tmp_path)
    with h5py.File(path) as f:
        assert f["layer/0/type"][0] == b"conv"  # no input layer: the case netx needs input_shape for
    layers = read_netx(path)
    assert needs_input_shape(layers)
    with pytest.raises(InputError, match="input shape could not be inferred"):
        fastsim.input_shape(layers)
    x_lava = np.ascontiguousarray(x_dl.transpose(0, 3, 2, 1, 4))  # [B, W, H, C, T]
    shape, tell = netx_inputs.resolve_input_shape(layers, x_lava.shape, "lava")
    assert (shape, tell) == ((6, 8, 2), True)
    assert netx_inputs.resolve_input_shape(layers, x_dl.shape, "lava-dl") == ((6, 8, 2), True)
    # every block, Lava (hdf5.Network(input_shape=(6, 8, 2))) vs the fast simulator
    stats = _compare_with_lava(path, x_lava[1:].astype(np.int32), input_shape=shape)  # sample 0: the CLI below
    assert all(m == 0 for _, m in stats) and all(n > 0 for n, _ in stats), stats

    # the CLI: Lava backend with the lava-dl layout (one unbatched sample), the fast backend with both layouts,
    # flat inputs and --input-shape (in each layout's order)
    np.save(tmp_path / "x_dl0.npy", x_dl[0])
    np.save(tmp_path / "x_dl.npy", x_dl)
    np.save(tmp_path / "x_lava.npy", x_lava)
    np.save(tmp_path / "x_flat.npy", x_lava.reshape(2, -1, 30))  # C-order flattening of (W, H, C)
    np.save(tmp_path / "x_flat_dl.npy", x_dl.reshape(2, -1, 30))  # ... of (C, H, W)
    runs = {"lava_dl_lava": ("x_dl0.npy", "--backend", "lava", "--layout", "lava-dl"),
            "lava_dl_fast": ("x_dl.npy", "--layout", "lava-dl"),
            "lava_fast": ("x_lava.npy", "--layout", "lava"),
            "flat_fast": ("x_flat.npy", "--input-shape", "6,8,2"),
            "flat_dl_fast": ("x_flat_dl.npy", "--layout", "slayer", "--input-shape", "2x8x6")}
    out = {}
    for name, (src, *opts) in runs.items():
        r = _invoke(path, "-i", tmp_path / src, "-o", tmp_path / f"{name}.npy", "--timeout", 300, *opts)
        assert r.exit_code == 0, r.output + r.stderr
        out[name] = np.load(tmp_path / f"{name}.npy")
    assert out["lava_dl_lava"].shape == (4, 30) and out["lava_dl_lava"].sum() > 0
    for name in runs:
        assert out[name].shape == (2, 4, 30) or name == "lava_dl_lava"
        assert np.array_equal(out[name][0] if name != "lava_dl_lava" else out[name], out["lava_dl_lava"]), name
    assert np.array_equal(out["lava_dl_fast"], out["lava_fast"]) and np.array_equal(out["flat_fast"], out["lava_fast"])
    assert np.array_equal(out["flat_dl_fast"], out["lava_fast"])


def test_conv_first_shape_errors_are_one_line(tmp_path):
    """No Lava run: what cannot be resolved or does not fit is one line naming the file (exit code 2)."""
    path, x_dl = _conv_first_net(tmp_path)
    np.save(tmp_path / "x_dl.npy", x_dl)
    np.save(tmp_path / "flat.npy", x_dl.reshape(2, -1, 30))
    cases = [
        (("x_dl.npy",), r"input shape \(W, H, C\) = \(2, 8, 6\) from .*x_dl.npy's shape in the lava layout "
                        r".*does not fit: .*conv expects 2 input channels, got 6; it would fit with --layout lava-dl"),
        (("flat.npy",), r"the first layer is a convolution and the file has no input layer shape; .*flat.npy has "
                        r"shape \(2, 96, 30\).*or --input-shape"),
        (("flat.npy", "--input-shape", "6,9,2"), r"from --input-shape \(lava layout: W, H, C\) does not fit: "
                                                 r"layer 0 \(conv\): shape \(4, 8, 3\) != computed output \(4, 9, 3\)"),
        (("x_dl.npy", "--layout", "lava-dl", "--input-shape", "2,8,0"), r"--input-shape '2,8,0': expected"),
        (("x_dl.npy", "--layout", "xyz"), r"--layout must be one of lava, lava-dl"),
        (("x_dl.npy", "--layout", "lava-dl", "--input-shape", "2,8,7"),  # fits the network, not the array
         r"x_dl.npy: input shape \(2, 2, 8, 6, 30\) does not fit the network input in the lava-dl layout"),
    ]
    for (src, *opts), msg in cases:
        r = _invoke(path, "-i", tmp_path / src, "-o", tmp_path / "y.npy", *opts)
        assert isinstance(r.exception, InputError) and r.exception.exit_code == 2, (opts, r.output, r.exception)
        line = str(r.exception)
        assert "\n" not in line and line.startswith((str(path), str(tmp_path / src), "--")), line
        assert re.search(msg, line), (msg, line)
        assert not (tmp_path / "y.npy").exists()
    # a file that states its shape: --input-shape must agree with it
    from ptsnn.formats.netx import ConvLayerSpec, CubaNeuronSpec, InputLayerSpec, write_netx

    net = write_netx(tmp_path / "in.net", [InputLayerSpec((2, 4, 3)), ConvLayerSpec(
        np.full((1, 2, 1, 1), 64), CubaNeuronSpec(4096, 4096, 0), (1, 4, 3))])
    np.save(tmp_path / "x.npy", np.zeros((3, 4, 2, 5), np.int8))
    r = _invoke(net, "-i", tmp_path / "x.npy", "-o", tmp_path / "y.npy", "--input-shape", "4,3,2")
    assert isinstance(r.exception, InputError)
    assert "the file's input shape (C, H, W) = (2, 4, 3) differs from the given input shape" in str(r.exception)
    assert _invoke(net, "-i", tmp_path / "x.npy", "-o", tmp_path / "y.npy", "--input-shape", "3,4,2").exit_code == 0


# ------------------------------------------------------------------------------- beyond the registers
def _beyond_register_net(tmp_path):
    """A slayer dense network 16-12-8-6-4, exported by lava-dl, then edited where slayer cannot go."""
    import torch

    slayer = _slayer()
    torch.manual_seed(11)
    sizes = [16, 12, 8, 6, 4]
    blocks = [slayer.block.cuba.Dense(CUBA, a, b, weight_scale=3) for a, b in zip(sizes, sizes[1:])]
    x = (torch.rand(2, 16, 40) < 0.4).float()
    path = _export(blocks, tmp_path / "beyond.net", x)
    with h5py.File(path, "r+") as f:
        def put(key, value):
            del f[key]
            f[key] = value

        w0 = f["layer/0/weight"][()]
        put("layer/0/weight", w0 * 6)  # mixed signs beyond -256..254: netx clips
        put("layer/0/neuron/iDecay", np.int64(5000))  # effective current decay beyond 4096: the factor flips sign
        put("layer/1/neuron/vDecay", np.int64(-300))  # negative voltage decay: the factor exceeds 1
        put("layer/2/weight", np.abs(f["layer/2/weight"][()]) * 4 + 300)  # all positive > 255: netx zeroes them
        f["layer/2/bias"] = np.array([36000, -36000, 20, 40, 5000, -5000])  # beyond 13 bits (and int16: wraps)
        put("layer/3/neuron/vThMant", np.int64(200000))  # beyond 17 bits: vth << 6 above the saturated voltage
    return path, x.numpy().astype(np.int32)


def _warning_lines(path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        layers = read_netx(path)
    return layers, [str(w.message) for w in caught if issubclass(w.category, RegisterWarning)]


def test_register_warnings_name_file_layer_and_register(tmp_path):
    path, _ = _beyond_register_net(tmp_path)
    layers, lines = _warning_lines(path)
    expected = [r"layer 0 \(dense\): iDecay 5000 is outside the 12-bit current decay register",
                r"layer 0 \(dense\): weights in \[-\d+, \d+\] are beyond the 8-bit synapse register \(-256..254\); "
                r"clipped",
                r"layer 1 \(dense\): vDecay -300 is outside the 12-bit voltage decay register",
                r"layer 2 \(dense\): weights in \[\d+, \d+\] are beyond the 8-bit synapse register; .* holds zeros",
                r"layer 2 \(dense\): bias in \[-\d+, \d+\] is beyond the 13-bit bias mantissa register",
                r"layer 3 \(dense\): vThMant 200000 is beyond the 17-bit threshold register"]
    assert len(lines) == len(expected), lines
    for pattern in expected:
        assert any(re.search(pattern, line) and line.startswith(str(path)) for line in lines), (pattern, lines)
    assert all("\n" not in line for line in lines)
    # what netx makes of the weights: clipped, and zeroed (a negative left shift)
    assert np.abs(loihi.netx_dense_weights(layers[0].weight).weights).max() <= 256
    assert not loihi.netx_dense_weights(layers[2].weight, allow_zeroed=True).weights.any()
    with pytest.raises(ValueError, match="exceed the 8-bit synapse"):
        loihi.netx_dense_weights(layers[2].weight)
    # the CLI prints each as one 'warning:' line on stderr and still simulates
    np.save(tmp_path / "x.npy", np.zeros((16, 10), np.int8))
    r = _invoke(path, "-i", tmp_path / "x.npy", "-o", tmp_path / "y.npy")
    assert r.exit_code == 0, r.stderr
    warn_lines = [line for line in r.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warn_lines) == len(expected) and "vThMant 200000" in warn_lines[-1]


def test_values_lava_cannot_simulate_stay_one_line_errors(tmp_path):
    """A float threshold or decay makes Lava's fixed_pt LIF fail (np.left_shift / right_shift of a float: the
    Lava run dies and hangs, checked by hand); values beyond int32 are outside what ptsnn follows."""
    from ptsnn.formats.netx import CubaNeuronSpec, DenseLayerSpec, InputLayerSpec, write_netx

    for key, value, msg in [("vThMant", np.float64(80.0), "neuron/vThMant is stored as a float"),
                            ("iDecay", np.float64(1024.0), "neuron/iDecay is stored as a float"),
                            ("vDecay", np.int64(2**40), "vDecay 1099511627776 is outside int32")]:
        path = write_netx(tmp_path / f"{key}.net", [InputLayerSpec((4,)),
                                                     DenseLayerSpec(np.full((3, 4), 100), CubaNeuronSpec(1024, 512, 80))])
        with h5py.File(path, "r+") as f:
            del f[f"layer/1/neuron/{key}"]
            f[f"layer/1/neuron/{key}"] = value
        with pytest.raises(InputError, match=f"{re.escape(str(path))}: layer 1 \\(dense\\): {msg}") as err:
            read_netx(path)
        assert "\n" not in str(err.value)


@pytest.mark.lava
def test_values_beyond_the_registers_are_simulated_as_lava_does(tmp_path):
    path, x = _beyond_register_net(tmp_path)
    with pytest.warns(RegisterWarning):
        stats = _compare_with_lava(path, x)
    assert all(m == 0 for _, m in stats), stats
    assert all(n > 0 for n, _ in stats[:3]), stats  # the edited layers 0-2 are active (layer 2 on its bias alone)
    assert stats[3][0] == 0  # a threshold beyond 17 bits: Lava's neurons never spike, nor do ours
    with pytest.warns(RegisterWarning):
        layers = read_netx(path)
    # the kernels took the reference path for the out-of-range decays (the fast path's bounds need 0..4096)
    p0 = loihi.CubaParams.from_netx(layers[0].neuron.i_decay, layers[0].neuron.v_decay, layers[0].neuron.vth_mant)
    assert not kernels.fast_path_params(p0)



@pytest.mark.lava
@pytest.mark.slow
def test_sigma_delta_threshold_beyond_24_bits_is_simulated_as_lava_does(tmp_path):
    """Lava holds a sigma-delta vth << 12 in int32, so 2**24 + 5 acts as 5 (were it not wrapped, layer 1 of
    this run would stay silent)."""
    from ptsnn.formats.netx import DenseLayerSpec, InputLayerSpec, SdnnNeuronSpec, write_netx

    rng = np.random.default_rng(2)
    sd = write_netx(tmp_path / "sd.net", [InputLayerSpec((6,), SdnnNeuronSpec(1)),
                                          DenseLayerSpec(2 * rng.integers(-20, 60, (5, 6)), SdnnNeuronSpec(5))])
    with h5py.File(sd, "r+") as f:
        del f["layer/1/neuron/vThMant"]
        f["layer/1/neuron/vThMant"] = np.int64(2**24 + 5)
    x_sd = np.cumsum(rng.integers(-2, 3, (1, 6, 30)), axis=-1).astype(np.int32) + 10
    with pytest.warns(RegisterWarning, match=r"layer 1 \(dense\): vThMant 16777221 is outside the 24-bit"):
        stats = _compare_with_lava(sd, x_sd)
    assert all(m == 0 for _, m in stats) and all(n > 0 for n, _ in stats), stats


# --------------------------------------------------------------------- a saturating, wrapping network
@pytest.mark.lava
def test_saturating_dense_network_whose_current_wraps_equals_lava(tmp_path):
    """No current decay, no voltage decay, large excitatory weights and dense input: u runs past 2**23 and
    wraps (Lava's single wrap of the 24-bit current), v then saturates at -(2**23 - 1)."""
    import torch

    slayer = _slayer()
    torch.manual_seed(5)
    wrap = dict(threshold=2047.0, current_decay=0.0, voltage_decay=0.0, requires_grad=False)
    blocks = [slayer.block.cuba.Dense(wrap, 32, 8, weight_scale=1),
              slayer.block.cuba.Dense(CUBA, 8, 4, weight_scale=3)]
    with torch.no_grad():
        blocks[0].synapse.weight.data = 1.0 + 2.9 * torch.rand_like(blocks[0].synapse.weight)  # 64..250 mantissas
    x = (torch.rand(2, 32, 80) < 0.6).float()
    path = _export(blocks, tmp_path / "wrap.net", x)
    layers = read_netx(path)
    n0 = layers[0].neuron
    assert (n0.i_decay, n0.v_decay, n0.vth_mant) == (0, 0, 131008) and layers[0].weight.min() > 0
    x_np = x.numpy().astype(np.int32)

    # the first layer's own run, recorded: the current wraps and the voltage saturates in this very input
    syn = loihi.netx_dense_weights(layers[0].weight)
    a_in = dense_input(syn.weights, syn.weight_exp, None, x_np.transpose(2, 0, 1), False)  # [T, B, 8]
    assert a_in.min() >= 0  # excitatory only: without a wrap u could never turn negative
    unwrapped_u = np.cumsum(a_in << loihi.ACTIVATION_SHIFT, axis=0)  # no current decay
    assert unwrapped_u.max() > 2 * loihi.STATE_LIMIT  # past 2**24: wraps, more than once
    p = loihi.CubaParams.from_netx(n0.i_decay, n0.v_decay, n0.vth_mant)
    spikes, volts = kernels.run_cuba(a_in, p, record_voltage=True)
    assert volts.min() == -(loihi.STATE_LIMIT - 1)  # negative saturation, after the wrap
    assert 0 < spikes.sum() < spikes.size

    stats = _compare_with_lava(path, x_np)
    assert all(m == 0 for _, m in stats) and all(n > 0 for n, _ in stats), stats
    fast = fastsim.simulate(layers, x_np)
    assert np.array_equal(fast.layer_spikes[0], spikes.transpose(1, 0, 2))  # the recorded run is the simulated one
