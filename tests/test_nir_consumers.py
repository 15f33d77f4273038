"""The bundle's NIR loads and runs in two independent maintained consumers, norse 1.1 (``from_nir``) and
snnTorch 1.0 (``import_from_nir``), and their float outputs equal the fixed-point chip's readout within
1e-4 (relative to the readout's size): ``model.consumer.nir``, the delay-free shape (convert/nir_consumer.py)."""

from __future__ import annotations

import nir
import numpy as np
import pytest
import torch

from ptsnn.chip.simulator import simulate_chip
from ptsnn.convert.nir_consumer import export_consumer_nir, tapped_input
from ptsnn.convert.nir_export import _latencies
from ptsnn.deploy.bundle_io import load_bundle
from ptsnn.testing import synthetic_bundle

TOLERANCE = 1e-4  # |consumer - chip| readout totals, relative to max(1, |chip|)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    root = tmp_path_factory.mktemp("nircons")
    path = synthetic_bundle(root, ["model.hidden=32", "model.key_dim=8", "model.value_dim=8", "model.prompts=2",
                                   "model.input_dim=16", "frontend.n_mels=16"], max_samples=8000,
                            emit=("nir",))
    return load_bundle(path)


def chip_and_input(b, steps=30, seed=0):
    g = b.graph
    rng = np.random.default_rng(seed)
    lv = g.inputs[0].levels
    payload = rng.integers(-lv, lv + 1, size=(2, steps, g.inputs[0].size)) * (rng.random((2, steps, 1)) < 0.8)
    payload = np.concatenate([payload, np.zeros((2, g.flush_steps, payload.shape[2]), np.int64)], 1)
    run = simulate_chip(g, payload.astype(np.int64))
    acc = g.accumulators[0]
    total_steps = payload.shape[1]
    chip = run.readout(acc.name, np.array([total_steps] * 2)) / 2.0 ** acc.scale_exponent
    return payload / lv, chip, total_steps - _latencies(g)[acc.name]


def step_through(module, x, unpack):
    state, outs = None, []
    with torch.no_grad():
        for t in range(x.shape[1]):
            out, state = unpack(module(x[:, t], state))
            outs.append(out)
    return torch.stack(outs, 1).numpy()


def check(b, module, unpack):
    graph = nir.read(b.path / "model.consumer.nir")
    real, chip, window = chip_and_input(b)
    x = torch.tensor(tapped_input(real, graph.metadata["ptsnn_input_lags"]), dtype=torch.float32)
    out = step_through(module(graph), x, unpack)
    total = out[:, :window].sum(1)
    assert np.abs(total - chip).max() <= TOLERANCE * max(1.0, np.abs(chip).max()), (total, chip)
    assert np.abs(chip).max() > 0  # the test would be empty on a silent network


def test_bundle_writes_the_consumer_shape(bundle):
    graph = nir.read(bundle.path / "model.consumer.nir")
    kinds = {type(n).__name__ for n in graph.nodes.values()}
    assert "Delay" not in kinds and "I" not in kinds and kinds <= {"Input", "Output", "Linear", "Affine", "LIF"}
    assert max(graph.metadata["ptsnn_input_lags"]) > 0  # the model's delays became input lags
    assert "Delay" in {type(n).__name__ for n in nir.read(bundle.path / "model.nir").nodes.values()}


def test_norse_loads_and_runs_the_bundle_nir(bundle):
    nt = pytest.importorskip("norse.torch")
    check(bundle, lambda g: nt.from_nir(g, dt=1e-4, ignore_warnings=True), lambda r: r)


def test_snntorch_loads_and_runs_the_bundle_nir(bundle, capsys):
    import_nir = pytest.importorskip("snntorch.import_nir")
    check(bundle, import_nir.import_from_nir, lambda r: (r[0], r[-1]))


def test_norse_fails_on_the_exact_nir_for_the_documented_reason(bundle):
    nt = pytest.importorskip("norse.torch")
    with pytest.raises(KeyError, match="delay"):  # nirtorch 2.6 legacy load: unmapped nodes collapse
        nt.from_nir(nir.read(bundle.path / "model.nir"), ignore_warnings=True)


def test_cuba_populations_are_refused_with_a_reason(tmp_path):
    from ptsnn.chip.ir import ChipGraph, CubaPopulation, HostInput, Synapses
    from ptsnn.errors import InputError

    g = ChipGraph([HostInput("in", 2, 0, 1, 1)], [CubaPopulation("p", 2, 2048, 1024, 64, np.zeros(2, np.int64))], [],
                  [Synapses("in->p", "in", "p", np.ones((2, 2), np.int64), np.zeros((2, 2), np.int64))])
    with pytest.raises(InputError, match="synaptic current"):
        export_consumer_nir(g, tmp_path / "x.nir")
