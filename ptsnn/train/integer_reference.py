"""A small pure-integer reference for the chip part of PTS-SNN.

Runs ``PTSSNN.integer_graph()`` with numpy int64 and the Lava fixed-point rules of
``ptsnn.numerics.loihi`` only (no torch, no floats): the independent check that the quantization-aware
forward pass computes exactly what the chip computes. Input: the host's graded payloads ``[B, T, F]``.
"""

from __future__ import annotations

import numpy as np

from ptsnn.numerics import loihi


def _synaptic_input(pre: np.ndarray, weight: np.ndarray, delays: list[int]) -> np.ndarray:
    """``a_in[b, t] = sum_j weight[:, j] * pre[b, t - 1 - delays[j], j]`` in exact integers."""
    batch, steps, _ = pre.shape
    out = np.zeros((batch, steps, weight.shape[0]), np.int64)
    delays = np.asarray(delays)
    for d in np.unique(delays):
        cols = np.nonzero(delays == d)[0]
        lag = 1 + int(d)
        if lag < steps:
            out[:, lag:] += np.einsum("btj,oj->bto", pre[:, : steps - lag][:, :, cols], weight[:, cols])
    return out


def run_integer_graph(graph: dict, payload: np.ndarray, steps: np.ndarray | None = None) -> dict:
    """Returns ``{population: spikes [B, T, N] bool, 'readout': integer totals [B, classes]}``.

    ``steps`` ``[B]``: readout window per sample (default: all steps)."""
    acts = {"input": np.asarray(payload, np.int64)}
    for pop in graph["populations"]:
        a_in = sum(_synaptic_input(acts[g["source"]], np.asarray(g["weight"], np.int64), g["delays"])
                   for g in pop["groups"])
        params = loihi.CubaParams.from_netx(pop["i_decay"], pop["v_decay"], pop["vth"],
                                            np.asarray(pop["bias"], np.int64))
        acts[pop["name"]] = loihi.cuba_run(a_in, params)
    ro = graph["readout"]
    pre = acts[ro["source"]].astype(np.int64)
    contrib = _synaptic_input(pre, np.asarray(ro["weight"], np.int64), [0] * pre.shape[-1])
    if steps is not None:
        window = np.arange(pre.shape[1])[None, :] < np.asarray(steps)[:, None]
        contrib = contrib * window[..., None]
    out = {k: v for k, v in acts.items() if k != "input"}
    out["readout"] = contrib.sum(1)
    return out
