"""netx writer/reader round trip and the fast simulator's timing, checked by hand."""

import h5py
import numpy as np
import pytest

from ptsnn.deploy import fastsim
from ptsnn.errors import InputError
from ptsnn.formats.netx import CubaNeuronSpec, DenseLayerSpec, InputLayerSpec, read_netx, write_netx

RELAY = CubaNeuronSpec(i_decay=4096, v_decay=4096, vth_mant=0)  # spikes whenever any positive input arrives


def test_round_trip_and_netdict_layout(tmp_path):
    w = np.array([[2, -4], [6, 8], [0, 2]])
    layers = [InputLayerSpec((2,)), DenseLayerSpec(w, CubaNeuronSpec(1024, 256, 77, 0), delay=np.array([1, 2, 3]),
                                                   bias=np.array([1, 0, -1]))]
    path = write_netx(tmp_path / "n.net", layers)
    back = read_netx(path)
    assert isinstance(back[0], InputLayerSpec) and back[0].shape == (2,)
    assert (back[1].weight == w).all() and (back[1].delay == [1, 2, 3]).all() and back[1].neuron.vth_mant == 77
    with h5py.File(path) as f:  # the exact keys netx's NetDict reads
        assert f["layer/1/type"][0] == b"dense"
        assert f["layer/1/neuron/iDecay"][()] == 1024
    assert not list(tmp_path.glob("*.tmp"))


def test_one_step_latency_plus_delay():
    w = np.array([[64], [64]])
    delay = np.array([[0], [3]])
    layers = [InputLayerSpec((1,)), DenseLayerSpec(w, RELAY, delay=delay)]
    x = np.zeros((1, 1, 10), np.int32)
    x[0, 0, 2] = 1
    out = fastsim.simulate(layers, x).output[0]
    assert out[0].nonzero()[0].tolist() == [3]  # 2 + 1 (synapse) + 0
    assert out[1].nonzero()[0].tolist() == [6]  # 2 + 1 + 3


def test_graded_input_multiplies_payload():
    w = np.array([[2]])
    neuron = CubaNeuronSpec(i_decay=4096, v_decay=4096, vth_mant=9)  # needs a_in >= 10 to cross 9 << 6
    layers = [InputLayerSpec((1,)), DenseLayerSpec(w, neuron)]
    x = np.array([[[4, 5, 0]]])
    assert fastsim.simulate(layers, x, input_message_bits=8).output[0, 0].tolist() == [0, 0, 1]
    assert fastsim.simulate(layers, x, input_message_bits=0).output[0, 0].tolist() == [0, 0, 0]


def test_bad_files_are_one_line_errors(tmp_path):
    with pytest.raises(InputError, match="no such netx file"):
        read_netx(tmp_path / "missing.net")
    (tmp_path / "junk.net").write_bytes(b"not hdf5")
    with pytest.raises(InputError, match="not an HDF5 file"):
        read_netx(tmp_path / "junk.net")


def test_spec_validation(tmp_path):
    with pytest.raises(ValueError, match="delays must be in 0..62"):
        DenseLayerSpec(np.zeros((2, 2), int), RELAY, delay=np.full((2, 2), 63))
    with pytest.raises(ValueError, match="vThMant .* outside int32"):
        CubaNeuronSpec(4096, 0, 2**31)
    # beyond the 17-bit register but simulated by Lava: the spec holds it, names it, the writer refuses it
    beyond = CubaNeuronSpec(4096, 0, 2**17)
    assert beyond.register_problems() and "17-bit threshold register" in beyond.register_problems()[0]
    with pytest.raises(ValueError, match="layer 1: vThMant 131072 is beyond the 17-bit threshold register"):
        write_netx(tmp_path / "x.net", [InputLayerSpec((2,)), DenseLayerSpec(np.full((1, 2), 2), beyond)])
