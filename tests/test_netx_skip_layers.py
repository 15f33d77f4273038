"""``hdf5.Network(skip_layers=k)`` / ``ptsnn simulate --skip-layers k``: the neuron layers among the first k
entries of ``layer/`` are built by netx but left out of the network; the input feeds the first kept layer.
What netx carries over from the skipped layers (lava-dl 0.6 ``netx/hdf5.py`` ``_create``): a skipped input or
conv layer's output shape (the next conv layer's input shape), the last skipped layer's message bits, a
pending flatten; reset phases count only kept blocks. Each case is compared with Lava itself."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ptsnn import compat
from ptsnn.deploy import fastsim, lava_runner
from ptsnn.errors import InputError
from ptsnn.formats.netx import (
    ConvLayerSpec,
    CubaNeuronSpec,
    DenseLayerSpec,
    FlattenLayerSpec,
    InputLayerSpec,
    SdnnNeuronSpec,
    SkippedLayerSpec,
    network_shapes,
    read_netx,
    skip_layers,
    write_netx,
)

sys.path.insert(0, str(Path(__file__).parent))
from test_fastsim_netx_general import _reset_net  # noqa: E402

compat.apply()
LAVA_TIMEOUT = 300


def _fast_and_lava(path, x, skip, **options):
    fast = fastsim.simulate_file(path, x, skip_layers=skip, **options)
    lava = lava_runner.run_netx(path, x, timeout_s=LAVA_TIMEOUT, skip_layers=skip, **options)
    assert len(lava.layer_outputs) == len(fast.layer_outputs)
    for i, (a, b) in enumerate(zip(lava.layer_outputs, fast.layer_outputs)):
        assert a.shape == b.shape, (i, a.shape, b.shape)
        assert np.array_equal(a, b), f"block {i}: {int((a != b).sum())} of {a.size} differ"
    assert all(np.count_nonzero(a) for a in lava.layer_outputs), "a silent block would make the comparison weak"
    return fast


@pytest.mark.lava
def test_skipping_the_input_and_a_dense_layer_with_resets_equals_lava(tmp_path):
    rng = np.random.default_rng(5)
    path = _reset_net(tmp_path, rng)  # input CUBA neuron, dense, recurrent dense, sigma-delta dense
    x = (rng.random((1, 8, 45)) < 0.4).astype(np.int32)  # the kept recurrent layer's 8 inputs
    fast = _fast_and_lava(path, x, 2, reset_interval=7, reset_offset=3)
    assert len(fast.layer_outputs) == 2
    # the kept blocks take reset phases 4 and 5 (netx counts only kept blocks): not those of blocks 2 and 3
    wrong_phase = fastsim.simulate(read_netx(path, skip=2), x, reset_interval=7, reset_offset=5)
    assert not np.array_equal(wrong_phase.layer_outputs[0], fast.layer_outputs[0])


def _conv_net(tmp_path, rng):
    layers = [InputLayerSpec((2, 8, 6)),
              ConvLayerSpec(2 * rng.integers(-30, 80, (4, 2, 3, 2)), CubaNeuronSpec(2048, 1024, 40), (4, 8, 3),
                            stride=(1, 2), padding=(1, 0)),
              ConvLayerSpec(2 * rng.integers(-30, 80, (3, 4, 3, 3)), CubaNeuronSpec(2048, 1024, 40), (3, 4, 2),
                            stride=(2, 2), padding=(1, 1)),
              FlattenLayerSpec(),
              DenseLayerSpec(2 * rng.integers(-20, 80, (5, 24)), CubaNeuronSpec(1024, 512, 30))]
    return write_netx(tmp_path / "conv.net", layers)


@pytest.mark.lava
@pytest.mark.parametrize("skip, kept_input", [(2, (3, 8, 4)),  # conv 1 skipped: conv 2 reads its (W, H, C)
                                              pytest.param(4, (24,), marks=pytest.mark.slow)])  # flat dense input
def test_skipping_conv_layers_takes_their_output_shape_and_equals_lava(tmp_path, skip, kept_input):
    rng = np.random.default_rng(6)
    path = _conv_net(tmp_path, rng)
    assert network_shapes(read_netx(path, skip=skip))[0] == kept_input
    x = (rng.random((2, *kept_input, 25)) < 0.35).astype(np.int32)
    _fast_and_lava(path, x, skip)


@pytest.mark.lava
@pytest.mark.slow
def test_a_skipped_sigma_delta_layer_hands_its_message_bits_to_the_first_kept_layer(tmp_path):
    rng = np.random.default_rng(7)
    layers = [InputLayerSpec((6,), SdnnNeuronSpec(1)),
              DenseLayerSpec(2 * rng.integers(10, 90, (5, 6)), SdnnNeuronSpec(1)),
              DenseLayerSpec(2 * rng.integers(-20, 90, (4, 5)), CubaNeuronSpec(1024, 512, 2000))]
    path = write_netx(tmp_path / "sd.net", layers)
    x = rng.integers(0, 300, (1, 5, 30)).astype(np.int32)  # graded payloads, though no --input-message-bits
    fast = _fast_and_lava(path, x, 2)
    as_spikes = fastsim.simulate(read_netx(path, skip=0)[2:], x)  # the same layer fed unary spikes
    assert not np.array_equal(as_spikes.output, fast.output)


@pytest.mark.lava
@pytest.mark.slow
def test_a_flatten_before_a_convolution_stays_pending_until_the_dense_layer_as_in_netx(tmp_path):
    rng = np.random.default_rng(8)
    layers = [InputLayerSpec((2, 4, 4)), FlattenLayerSpec(),
              ConvLayerSpec(2 * rng.integers(-10, 90, (3, 2, 3, 3)), CubaNeuronSpec(2048, 1024, 30), (3, 2, 2)),
              DenseLayerSpec(2 * rng.integers(-10, 90, (4, 12)), CubaNeuronSpec(1024, 512, 20))]
    path = write_netx(tmp_path / "flat.net", layers)
    _fast_and_lava(path, (rng.random((1, 4, 4, 2, 30)) < 0.5).astype(np.int32), 0)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "ptsnn.cli.main", "simulate", *map(str, args)],
                          capture_output=True, text=True, timeout=600)


@pytest.mark.lava
@pytest.mark.slow
def test_cli_skips_a_conv_first_layer_given_the_files_input_shape(tmp_path):
    """No input layer: netx needs the file's input shape to build the skipped conv, though the data feed conv 2."""
    rng = np.random.default_rng(9)
    import h5py

    path = tmp_path / "noinput.net"  # the conv network without its input layer (write_netx refuses to write it)
    with h5py.File(_conv_net(tmp_path, rng)) as src, h5py.File(path, "w") as dst:
        for i in range(1, len(src["layer"])):
            src.copy(f"layer/{i}", dst, f"layer/{i - 1}")
    x = (rng.random((2, 3, 8, 4, 25)) < 0.35).astype(np.int32)  # conv 2's input, Lava (W, H, C)
    np.save(tmp_path / "x.npy", x)
    common = (path, "--input", tmp_path / "x.npy", "--skip-layers", 1)
    missing = _cli(*common, "--out", tmp_path / "y.npy")
    assert missing.returncode == 2 and "give the file's input shape with --input-shape" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1 and not (tmp_path / "y.npy").exists()
    for backend in ("fast", "lava"):
        run = _cli(*common, "--input-shape", "6,8,2", "--backend", backend, "--out", tmp_path / f"{backend}.npy")
        assert run.returncode == 0, run.stderr
    fast, lava = np.load(tmp_path / "fast.npy"), np.load(tmp_path / "lava.npy")
    assert fast.shape == (2, 5, 25) and np.count_nonzero(lava) and np.array_equal(fast, lava)


def test_skip_marks_only_neuron_layers_below_the_entry_index():
    rng = np.random.default_rng(0)
    conv = ConvLayerSpec(2 * rng.integers(-3, 9, (2, 1, 3, 3)), CubaNeuronSpec(4096, 4096, 1), (2, 2, 2))
    layers = [InputLayerSpec((1, 4, 4)), conv, FlattenLayerSpec(),
              DenseLayerSpec(np.ones((3, 8), int), CubaNeuronSpec(4096, 4096, 1))]
    kinds = [type(layer).__name__ for layer in skip_layers(layers, 3)]
    assert kinds == ["InputLayerSpec", "SkippedLayerSpec", "FlattenLayerSpec", "DenseLayerSpec"]
    assert skip_layers(layers, 0) == layers
    net_in, blocks = network_shapes(skip_layers(layers, 3))
    assert net_in == (8,) and [b.index for b in blocks] == [3]
    with pytest.raises(ValueError, match="no layer with neurons after the skipped ones"):
        network_shapes(skip_layers(layers, 4))
    with pytest.raises(InputError, match="skip_layers must be a non-negative integer"):
        skip_layers(layers, -1)
    with pytest.raises(ValueError, match="an hdf5.Network option"):
        write_netx("unused.net", [SkippedLayerSpec(conv), *layers[2:]])


def test_a_file_refused_without_skip_can_run_with_it(tmp_path):
    """netx wires (and Lava checks) only kept blocks: a size mismatch at the skip boundary does not matter."""
    layers = [InputLayerSpec((4,)), DenseLayerSpec(np.full((3, 4), 2), CubaNeuronSpec(4096, 4096, 1)),
              DenseLayerSpec(np.full((2, 5), 2), CubaNeuronSpec(4096, 4096, 1))]
    path = tmp_path / "gap.net"
    with pytest.raises(ValueError, match="weight expects 5 inputs, previous layer has 3"):
        write_netx(path, layers)
    import h5py  # the file as another tool might write it: netx builds it with skip_layers=2

    with h5py.File(path, "w") as f:
        for i, (kind, layer) in enumerate(zip(("input", "dense", "dense"), layers)):
            g = f.create_group(f"layer/{i}")
            g.create_dataset("type", (1,), "S10", [kind.encode()])
            g.create_dataset("shape", data=np.array(layer.shape if i else (4,)))
            if i:
                g.create_dataset("weight", data=layer.weight)
                for key, value in (("type", b"CUBA"), ("iDecay", 4096), ("vDecay", 4096), ("vThMant", 1)):
                    g.create_dataset(f"neuron/{key}", data=value)
    with pytest.raises(InputError, match="weight expects 5 inputs"):
        read_netx(path)
    out = fastsim.simulate(read_netx(path, skip=2), np.ones((5, 6), np.int32)).output
    assert out.shape == (2, 6) and out.any()
