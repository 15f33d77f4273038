"""The smoke run: a tiny dense CUBA network with delays, built in code, written as netx HDF5, run in Lava's
CPU simulation and in the fast simulator, compared spike for spike in every layer.

It exercises the whole fixed-point contract (netx writer, netx's weight optimisation, Lava's CUBA decay
rounding, synapse latency and delays) in a few seconds, so it is both the first thing a new user runs and a
CI test.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ptsnn.fileio import atomic_output
from ptsnn.formats.netx import CubaNeuronSpec, DenseLayerSpec, InputLayerSpec, write_netx


@dataclass(frozen=True)
class SmokeConfig:
    sizes: tuple[int, ...] = (32, 48, 24, 8)  # input, hidden..., output neurons
    steps: int = 64
    batch: int = 2
    max_delay: int = 6
    input_rate: float = 0.25
    seed: int = 0


def build_network(cfg: SmokeConfig) -> list:
    """Random integer layers in netx terms: even 8-bit weight mantissas (slayer's export convention),
    per-synapse delays, CUBA decays and thresholds chosen so every layer is active but not saturated."""
    rng = np.random.default_rng(cfg.seed)
    layers: list = [InputLayerSpec(shape=(cfg.sizes[0],))]
    for i, (n_in, n_out) in enumerate(zip(cfg.sizes[:-1], cfg.sizes[1:])):
        weight = 2 * rng.integers(-64, 80, size=(n_out, n_in))
        delay = rng.integers(0, cfg.max_delay + 1, size=(n_out, n_in)) if i < len(cfg.sizes) - 2 else None
        neuron = CubaNeuronSpec(i_decay=int(rng.integers(512, 2048)), v_decay=int(rng.integers(128, 1024)),
                                vth_mant=int(rng.integers(700, 1400)))
        bias = rng.integers(-8, 9, size=n_out) if i == 0 else None
        layers.append(DenseLayerSpec(weight, neuron, delay, bias, name=f"dense{i}"))
    return layers


def make_inputs(cfg: SmokeConfig) -> np.ndarray:
    rng = np.random.default_rng(cfg.seed + 1)
    return (rng.random((cfg.batch, cfg.sizes[0], cfg.steps)) < cfg.input_rate).astype(np.int32)


@dataclass
class SmokeReport:
    netx_path: Path
    layer_names: list[str]
    lava_counts: list[int]
    fast_counts: list[int]
    mismatches: list[int]
    steps: int
    batch: int
    lava_seconds: float
    fast_seconds: float
    extra: dict = field(default_factory=dict)

    @property
    def exact(self) -> bool:
        return all(m == 0 for m in self.mismatches)


def run_smoke(out_dir: str | Path, cfg: SmokeConfig = SmokeConfig(), timeout_s: float = 300.0) -> SmokeReport:
    import time

    from ptsnn.deploy import fastsim, lava_runner

    out_dir = Path(out_dir)
    layers = build_network(cfg)
    netx_path = write_netx(out_dir / "smoke.net", layers)
    inputs = make_inputs(cfg)
    t0 = time.perf_counter()
    fast = fastsim.simulate(layers, inputs)
    t1 = time.perf_counter()
    lava = lava_runner.run_netx(netx_path, inputs, timeout_s=timeout_s, log_dir=out_dir)
    t2 = time.perf_counter()
    dense = [layer for layer in layers if isinstance(layer, DenseLayerSpec)]
    lava_counts, fast_counts, mismatches = [], [], []
    for i, layer in enumerate(dense):
        lava_spikes = lava.layer_outputs[i]  # [B, N, T]
        fast_spikes = fast.layer_spikes[i].transpose(0, 2, 1).astype(np.int32)
        lava_counts.append(int(lava_spikes.sum()))
        fast_counts.append(int(fast_spikes.sum()))
        mismatches.append(int((lava_spikes != fast_spikes).sum()))
    with atomic_output(out_dir / "smoke_spikes.npz") as tmp, open(tmp, "wb") as f:
        np.savez(f, inputs=inputs, lava_output=lava.output, fast_output=fast.output)
    return SmokeReport(netx_path, [d.name for d in dense], lava_counts, fast_counts, mismatches, cfg.steps,
                       cfg.batch, t2 - t1, t1 - t0)
