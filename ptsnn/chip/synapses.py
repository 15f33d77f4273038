"""Synapse groups of the chip: the one implementation of synaptic input, shared by every simulator.

Lava 0.10's bit-accurate ``Dense`` / ``DelayDense`` (``lava/proc/dense/models.py``) and ``Conv``
(``lava/proc/conv/models.py``), computed for *all* time steps and samples at once: one matrix product per
distinct delay (dense) or one convolution over ``batch x time`` images (conv), in float32/float64 BLAS when no
partial sum can lose precision, else int64. Each synapse adds one step of latency (a spike at step t reaches
its target at t + 1 + delay). Arrays are time-major: ``[T, B, ...]``.
"""

from __future__ import annotations

import numpy as np

from ptsnn.chip.ir import ConvSynapses, SynapseGroup
from ptsnn.errors import InputError
from ptsnn.numerics import loihi

_EXACT_FLOAT = 2**53  # float64 sums of integers are exact while every partial sum stays below this
_EXACT_FLOAT32 = 2**24  # the same for float32


def payload(x: np.ndarray, graded: bool) -> np.ndarray:
    """What a synapse multiplies: the graded payload, or 1 for any non-zero (``s_in.astype(bool)``)."""
    return np.ascontiguousarray(x, dtype=np.int64) if graded else np.ascontiguousarray(x != 0, dtype=np.int64)


def matmul_exact(s: np.ndarray, w: np.ndarray, s_max: float | None = None, binary: bool = False) -> np.ndarray:
    """``s @ w.T`` over the last axis of ``s`` (any leading axes) for integer-valued arrays (``s`` may
    already be float), exactly, as int64 (exact modulo 2**64 beyond the float range). ``binary``: ``s`` holds
    only 0 and 1 (spikes), which lets sparse activity be summed column by column."""
    out = _product(s.reshape(-1, s.shape[-1]), w, s_max, binary)
    if out.dtype != np.int64:
        out = out.astype(np.int64)
    return out.reshape(*s.shape[:-1], w.shape[0])


# Sparse products. Every path below sums the same integer products; while no partial sum can reach the
# float type's exact range (2**24 for float32, 2**53 for float64) any summation order gives the exact sum,
# so the sparse paths are exact under the same bound as the BLAS product (tests/test_chip_fast_paths.py).
# The path is chosen by a cost model in units of one float32 BLAS multiply-accumulate, fitted on 2 cores
# (benchmarks/chip_fold.py shapes: 15,232 rows, 8-768 inputs, 0.4-93 % activity); a wrong guess costs time,
# never exactness.
_SPARSE_MIN_ROWS = 2048  # below this a BLAS product is cheap and scipy's import (~0.2 s) would dominate
_COST_FLOAT64 = 2.3  # a float64 BLAS multiply-accumulate, against a float32 one
_COST_SCAN = 16.0  # finding the active inputs: per (row, input) element scanned
_COST_PER_ACTIVE = 1300.0  # ... plus per active input found (index bookkeeping, branch misses)
_COST_SPARSE_MAC = 12.0  # one weight column added for an active input
_COST_SPARSE_FIXED = 2.5e8  # scipy's fixed overhead per product (~2 ms)
_COST_GATHER = 90.0  # one gathered element (np.take along the input axis) times its weight
_GATHER_MAX_FAN_IN = 4  # weight rows with at most this many synapses may be gathered instead of multiplied


def _product(s2: np.ndarray, w: np.ndarray, s_max: float | None, binary: bool) -> np.ndarray:
    """``s2 @ w.T`` for a 2-D ``s2`` (bool or integer-valued): float32/float64 holding exact integers when the
    bound allows (then by the cheapest of a dense BLAS product, a gather over sparse weight rows, or a sum of
    the weight columns of active inputs), else int64."""
    if s_max is None:
        s_max = float(max(-float(s2.min(initial=0)), float(s2.max(initial=0))))
    bound = float(np.abs(w).sum(axis=1).max(initial=0)) * s_max
    if bound >= _EXACT_FLOAT:
        return s2.astype(np.int64) @ w.T.astype(np.int64)
    dtype = np.float32 if bound < _EXACT_FLOAT32 else np.float64  # float32 BLAS is exact there and 2x faster
    rows, (n_out, n_in) = s2.shape[0], w.shape
    nz_w = w != 0
    fan_in = int(nz_w.sum(axis=1).max(initial=0))
    dense_cost = float(rows) * n_in * n_out * (1.0 if dtype == np.float32 else _COST_FLOAT64)
    best, path = dense_cost, "dense"
    if fan_in <= _GATHER_MAX_FAN_IN and _COST_GATHER * rows * n_out * max(fan_in, 1) < best:
        best, path = _COST_GATHER * rows * n_out * max(fan_in, 1), "gather"  # fixed wiring (one-to-one, few-to-one)
    if rows >= _SPARSE_MIN_ROWS and binary:
        active = s2 if s2.dtype == bool else s2 != 0
        n_active = int(np.count_nonzero(active))
        cost = (_COST_SCAN * rows * n_in + _COST_PER_ACTIVE * n_active + _COST_SPARSE_MAC * n_active * n_out
                + _COST_SPARSE_FIXED)
        if cost < best:
            return _sum_active_columns(active, w, dtype)
    elif rows >= _SPARSE_MIN_ROWS and not binary:
        nnz = int(np.count_nonzero(nz_w))
        cost = _COST_SPARSE_MAC * nnz * rows + _COST_SPARSE_FIXED
        if cost < best:
            import scipy.sparse

            return np.asarray(scipy.sparse.csr_matrix(w.astype(dtype)) @ s2.T.astype(dtype)).T
    if path == "gather":
        return _gather_rows(s2, w, nz_w, fan_in, dtype)
    return s2.astype(dtype, copy=False) @ w.T.astype(dtype)


def _gather_rows(s2: np.ndarray, w: np.ndarray, nz_w: np.ndarray, fan_in: int, dtype) -> np.ndarray:
    """Weight rows with at most ``fan_in`` synapses: ``out[:, j] = sum_k s2[:, idx[j, k]] * w[j, idx[j, k]]``
    (``np.take`` along the input axis: several times faster than fancy indexing of columns)."""
    n_out = w.shape[0]
    out = None
    order = np.argsort(~nz_w, axis=1, kind="stable")[:, :fan_in]  # the synapses of each row first
    for k in range(fan_in):
        idx = order[:, k]
        wk = w[np.arange(n_out), idx].astype(dtype)
        if not np.any(wk):
            continue
        g = np.take(s2, idx, axis=1).astype(dtype, copy=False)  # a new array: safe to scale in place
        g *= wk
        out = g if out is None else np.add(out, g, out=out)
    return np.zeros((s2.shape[0], n_out), dtype) if out is None else out


def _sum_active_columns(active: np.ndarray, w: np.ndarray, dtype) -> np.ndarray:
    """Binary ``s2``: each row's sum of the weight columns of its active inputs (a sparse-dense product).
    The CSR structure comes from one scan of the flat activity (row = index // inputs)."""
    import scipy.sparse

    n_rows, n_in = active.shape
    rows, cols = np.divmod(np.flatnonzero(active), n_in)
    indptr = np.searchsorted(rows, np.arange(n_rows + 1))  # rows are sorted: a flat scan is row-major
    s_sparse = scipy.sparse.csr_matrix((np.ones(len(cols), dtype), cols, indptr), shape=active.shape)
    return np.asarray(s_sparse @ np.ascontiguousarray(w.T, dtype=dtype))


def _synaptic_operand(s: np.ndarray, graded: bool) -> tuple[np.ndarray, int]:
    """What a synapse multiplies, as cheaply as the products can take it, and its largest magnitude: spikes
    as a bool array (any non-zero is a spike; no int64 copy), graded payloads as given."""
    s = np.asarray(s)
    if not graded:
        return (s if s.dtype == bool else s != 0), 1  # 1 bounds a spike train whether or not it has a spike
    if s.dtype == bool:
        return s, 1
    return s, max(-int(s.min(initial=0)), int(s.max(initial=0)))


def dense_input(weights: np.ndarray, weight_exp: int, delays: np.ndarray | None, s: np.ndarray,
                 graded: bool) -> np.ndarray:
    """Synaptic input ``[T, B, out]`` (int64 holding int32 values) of a Dense/DelayDense for presynaptic
    activity ``s`` ``[T, B, in]`` (spikes: any non-zero, bool preferred; or graded payloads), one step of
    latency plus the delays included.

    DelayDense shifts the sum of each (output, delay) group by ``weight_exp`` separately, so with a negative
    exponent (a flooring right shift) the groups cannot be merged. Per-output (axonal) delays have one group
    per output: one matrix product plus a per-column time shift. Per-input delays: one product per delay over
    that delay's inputs only. General per-synapse delays: one masked product per distinct delay."""
    steps = s.shape[0]
    out_shape = (steps, *s.shape[1:-1], weights.shape[0])
    a_in = np.zeros(out_shape, np.int64)
    if steps < 2:
        return a_in
    s, s_max = _synaptic_operand(s, graded)
    bound = int(np.abs(weights).sum(axis=1).max(initial=0)) * s_max
    if graded:  # once, C-ordered for the products; exactness is checked per product
        s = np.ascontiguousarray(s, dtype=np.float32 if bound < _EXACT_FLOAT32 else np.float64)
    binary = not graded
    safe = (bound << max(weight_exp, 0)) < 2**31  # no int32 register can wrap: shift only
    if safe:
        # Every sum is an exact integer below 2**31 in the product's float type: the shift is an exact
        # scaling by a power of two (plus floor for right shifts); the int64 output takes the values as they are.
        scale = 2.0**weight_exp

        def post(acc: np.ndarray, delayed: bool) -> np.ndarray:
            if weight_exp == 0:
                return acc
            return acc * scale if weight_exp > 0 else np.floor(acc * scale)
    else:
        def post(acc: np.ndarray, delayed: bool) -> np.ndarray:
            return loihi.dense_output(acc, weight_exp, graded, delayed)

    def product(x: np.ndarray, w: np.ndarray) -> np.ndarray:
        out = _product(x.reshape(-1, x.shape[-1]), w, s_max, binary).reshape(*x.shape[:-1], w.shape[0])
        return out if safe else out.astype(np.int64, copy=False)

    def add(view: np.ndarray, value: np.ndarray) -> None:
        np.add(view, value, out=view, casting="unsafe")  # float holding exact integers -> int64

    if delays is None:
        a_in[1:] = post(product(s[:-1], weights), False)
        return a_in
    if graded and not loihi.graded_products_fit_int32(np.abs(weights).max(initial=0), s_max):
        raise InputError("graded payloads times weights exceed int32 in Lava's DelayDense (each product wraps); "
                         "not emulated")
    lags = [(int(d), 1 + int(d)) for d in np.unique(delays) if 1 + int(d) < steps]
    if np.all(delays == delays[:, :1]):  # per output neuron (axonal delays)
        # post is elementwise: apply it once, then move each output's column by its lag
        shifted = _shift_columns(post(product(s[:-1], weights), True), 1 + delays[:, 0].astype(np.int64), steps)
        return shifted if safe else loihi.wrap_int32(shifted)
    elif np.all(delays == delays[:1, :]):  # per input neuron
        per_in = delays[0]
        if safe and weight_exp >= 0:  # post is linear: move each input's column by its lag, then one product
            moved = _shift_columns(s[:-1], 1 + per_in.astype(np.int64), steps, s.dtype)
            a_in[:] = post(product(moved, weights), True)
            return a_in
        for d, lag in lags:
            rows = per_in == d
            add(a_in[lag:], post(product(s[: steps - lag, ..., rows], weights[:, rows]), True))
    else:
        for d, lag in lags:
            add(a_in[lag:], post(product(s[: steps - lag], np.where(delays == d, weights, 0)), True))
    return a_in if safe else loihi.wrap_int32(a_in)


def _shift_columns(acc: np.ndarray, lags: np.ndarray, steps: int, dtype=np.int64) -> np.ndarray:
    """``out[t, ..., n] = acc[t - lags[n], ..., n]`` (zero before the lag) for ``t < steps``: each column
    moved down by its own lag, as ``dtype``. Done in a column-major copy, where one lag's columns are whole
    contiguous rows, instead of masked column updates of the time-major array."""
    flat = acc.reshape(acc.shape[0], -1, acc.shape[-1])  # [T-1, M, N]
    n_out = flat.shape[-1]
    acc_t = np.ascontiguousarray(flat.transpose(2, 1, 0))  # [N, M, T-1]
    out_t = np.zeros((n_out, flat.shape[1], steps), dtype)
    for lag in np.unique(lags):
        lag = int(lag)
        if lag >= steps:
            continue
        rows = np.flatnonzero(lags == lag)
        out_t[rows, :, lag:] = acc_t[rows, :, : steps - lag]
    return np.ascontiguousarray(out_t.transpose(2, 1, 0)).reshape(steps, *acc.shape[1:])


def conv2d_exact(x: np.ndarray, weight: np.ndarray, stride=(1, 1), padding=(0, 0), dilation=(1, 1),
                 groups: int = 1, chunk_bytes: int = 64 << 20) -> np.ndarray:
    """PyTorch-style ``conv2d`` (cross-correlation, NCHW, weight ``(out, in/groups, kH, kW)``) for integer-valued
    ``x``, computed exactly: one BLAS product per kernel offset in float32 or float64, chosen so that no
    partial sum can lose precision. Returns int64 ``(N, out, Ho, Wo)``."""
    n, c, h, w = x.shape
    o, cg, kh, kw = weight.shape
    g = int(groups)
    og = o // g
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    ho = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    wo = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    bound = float(np.abs(weight).reshape(o, -1).sum(axis=1).max(initial=0)) * float(np.abs(x).max(initial=0))
    if bound >= _EXACT_FLOAT:
        raise OverflowError("conv sums exceed the exact float64 range")
    dtype = np.float32 if bound < _EXACT_FLOAT32 else np.float64
    wg = weight.reshape(g, og, cg, kh, kw).astype(dtype)
    out = np.empty((n, o, ho, wo), np.int64)
    per_sample = max(1, c * ho * wo * np.dtype(dtype).itemsize * 2)
    step = max(1, int(chunk_bytes // per_sample))
    for n0 in range(0, n, step):
        xp = np.pad(x[n0:n0 + step].astype(dtype, copy=False), ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        nb = xp.shape[0]
        xg = xp.reshape(nb, g, cg, h + 2 * ph, w + 2 * pw)
        acc = np.zeros((g, nb * ho * wo, og), dtype)
        for i in range(kh):
            for j in range(kw):
                patch = xg[:, :, :, i * dh: i * dh + sh * (ho - 1) + 1: sh, j * dw: j * dw + sw * (wo - 1) + 1: sw]
                cols = patch.transpose(1, 0, 3, 4, 2).reshape(g, nb * ho * wo, cg)  # [G, N*Ho*Wo, Cg]
                acc += cols @ wg[:, :, :, i, j].transpose(0, 2, 1)  # [G, Cg, Og]
        out[n0:n0 + nb] = acc.reshape(g, nb, ho, wo, og).transpose(1, 0, 4, 2, 3).reshape(nb, o, ho, wo)
    return out


def conv_input(s: np.ndarray, weight: np.ndarray, out_shape: tuple[int, int, int], stride=(1, 1), padding=(0, 0),
               dilation=(1, 1), groups: int = 1, name: str = "conv") -> np.ndarray:
    """Synaptic input ``[T, B, C, H, W]`` of Lava's fixed_pt Conv for payloads ``s`` ``[T, B, C, H, W]``: the
    raw (unshifted, unclipped) integer weights, output wrapped to 24 bits, one step of latency."""
    steps, batch = s.shape[:2]
    out_c, out_h, out_w = out_shape
    a_in = np.zeros((steps, batch, out_c, out_h, out_w), np.int64)
    if steps < 2:
        return a_in
    w = np.asarray(weight, np.int64)
    bound = int(np.abs(w).reshape(w.shape[0], -1).sum(axis=1).max(initial=0)) * int(np.abs(s).max(initial=0))
    if bound >= _EXACT_FLOAT32:
        # Lava's Conv computes in float32 (torch.conv2d on FloatTensors) and casts to int32: exact below 2**24
        raise InputError(f"{name}: conv sums could reach 2**24, where Lava's float32 convolution rounds; "
                         "not emulated (lower the weights or the payload range)")
    y = conv2d_exact(s[:-1].reshape(-1, *s.shape[2:]), w, stride, padding, dilation, groups)
    a_in[1:] = loihi.wrap_signed(y.reshape(steps - 1, batch, out_c, out_h, out_w), loihi.CONV_OUTPUT_BITS)
    return a_in


# ---------------------------------------------------------------------------------- chip IR synapse groups
def edge_input(edge: SynapseGroup, pre: np.ndarray, graded: bool, weight: np.ndarray | None = None) -> np.ndarray:
    """Synaptic input ``[T, B, target size]`` (int64) that ``edge`` delivers for source activity ``pre``
    ``[T, B, source size]``. ``weight`` replaces the edge's weights (the report counts deliveries through
    the 0/1 mask of existing synapses this way)."""
    w = edge.weight if weight is None else weight
    if isinstance(edge, ConvSynapses):
        s = payload(pre, graded)
        steps, batch = s.shape[:2]
        a = conv_input(s.reshape(steps, batch, *edge.in_shape), w, edge.out_shape, edge.stride, edge.padding,
                       edge.dilation, edge.groups, name=f"synapses {edge.name}")
        return a.reshape(steps, batch, -1)
    delays = edge.delay if edge.max_delay > 0 else None  # Dense without delays, DelayDense with (Lava graph)
    return dense_input(w, edge.weight_exp, delays, pre, graded)
