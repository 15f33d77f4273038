"""Chip simulator on an IEMOCAP-size fold: `paper` config, 1,100 utterances x 225 frames, streamed in chunks.

The network is a freshly initialised paper-config PTS-SNN (data-driven start, so firing rates are realistic),
quantized, as ``model.chip_graph()``. Payloads come from the model's own host part on random 768-d features
(the shape of emotion2vec frames), produced chunk by chunk, so the fold is never held in memory. The chip
part runs through ``ptsnn.chip.simulator.simulate_stream`` (readouts and spike counts only).

In the same run it times the yardstick of issue 9: dense float64 BLAS products with the simulator's
multiply-accumulate count (every synapse matrix entry, every step of every utterance), in the same chunks.
Prints both, the ratio, and the process's peak RSS.
Usage: .venv/bin/python benchmarks/chip_fold.py [--utterances 1100] [--frames 225] [--chunk 64]
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import torch

from ptsnn.chip.simulator import simulate_stream
from ptsnn.train.config import load_config
from ptsnn.train.model import PTSSNN


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build_model(seed: int = 0) -> PTSSNN:
    cfg = load_config("paper")
    torch.manual_seed(seed)
    model = PTSSNN(cfg.model)
    model.data_init(torch.randn(4, 100, cfg.model.input_dim) * 2)
    model.quantize()
    return model.eval()


class HostPayloads:
    """Host payloads ``[frames * steps_per_frame, F]`` per utterance, made chunk by chunk; keeps its own time
    so that the simulator's time can be told apart."""

    def __init__(self, model: PTSSNN, utterances: int, frames: int, chunk: int, seed: int = 1):
        self.model, self.utterances, self.frames, self.chunk = model, utterances, frames, chunk
        self.rng = torch.Generator().manual_seed(seed)
        self.seconds = 0.0

    def __iter__(self):
        spf, dim = self.model.cfg.steps_per_frame, self.model.cfg.input_dim
        for start in range(0, self.utterances, self.chunk):
            t0 = time.perf_counter()
            n = min(self.chunk, self.utterances - start)
            with torch.no_grad():
                x = self.model.host(torch.randn(n, self.frames, dim, generator=self.rng) * 2, True)
            x = np.rint(x.numpy()).astype(np.int8)  # 6-bit graded payloads
            if spf > 1:
                x = np.repeat(x, spf, axis=1)
            self.seconds += time.perf_counter() - t0
            yield from x


def blas_yardstick(graph, rows_total: int, chunk_rows: int) -> tuple[float, int]:
    """Dense float64 products with the simulator's MAC count: each synapse matrix times ``rows_total``
    rows (steps x utterances), in chunks of ``chunk_rows``. Returns (seconds, MACs)."""
    rng = np.random.default_rng(0)
    weights = [rng.standard_normal(e.weight.shape) for e in graph.synapses]
    sources = {w.shape[1] for w in weights}
    xs = {n: rng.standard_normal((chunk_rows, n)) for n in sources}
    macs = sum(w.size for w in weights) * rows_total
    t0 = time.perf_counter()
    done = 0
    while done < rows_total:
        r = min(chunk_rows, rows_total - done)
        for w in weights:
            xs[w.shape[1]][:r] @ w.T
        done += r
    return time.perf_counter() - t0, macs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--utterances", type=int, default=1100)
    ap.add_argument("--frames", type=int, default=225)
    ap.add_argument("--chunk", type=int, default=64)
    args = ap.parse_args()
    model = build_model()
    graph = model.chip_graph()
    neurons = sum(p.size for p in graph.populations)
    synapses = sum(e.weight.size for e in graph.synapses)
    rss_before = peak_rss_mib()

    host = HostPayloads(model, args.utterances, args.frames, args.chunk)
    t0 = time.perf_counter()
    result = simulate_stream(graph, host, batch_size=args.chunk)
    sim_s = time.perf_counter() - t0 - host.seconds
    rss_fold = peak_rss_mib()

    rows = int(result.steps.sum())
    blas_s, macs = blas_yardstick(graph, rows, args.chunk * int(result.steps.max()))
    rates = {k: v.sum() / (rows * v.shape[1]) for k, v in result.spike_counts.items()}
    print(f"paper config: {neurons:,} neurons, {synapses:,} synapse matrix entries; fold {args.utterances} "
          f"utterances x {args.frames} frames = {rows:,} chip steps, chunks of {args.chunk}")
    print("firing rates: " + ", ".join(f"{k} {100 * r:.1f}%" for k, r in rates.items()))
    print(f"chip simulator (simulate_stream): {sim_s:8.2f} s  (host payloads {host.seconds:.2f} s, not counted)")
    print(f"dense float64 BLAS, {macs / 1e9:,.0f} G MACs: {blas_s:8.2f} s")
    print(f"ratio simulator / BLAS: {sim_s / blas_s:.2f}x (target <= 3x)")
    print(f"peak RSS: {rss_fold:.0f} MiB after the fold ({rss_before:.0f} MiB before it: torch and the model)")


if __name__ == "__main__":
    main()
