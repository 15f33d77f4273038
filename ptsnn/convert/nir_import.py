"""NIR -> chip IR: run NIR graphs from other frameworks (norse, snnTorch, Sinabs, ...) on the chip model.

What is accepted: ``Input``/``Output``; the weighted-sum nodes ``Affine``, ``Linear``, ``Scale``, ``Conv1d``,
``Conv2d``, ``SumPool2d``, ``AvgPool2d`` (lowered to dense matrices, fine for small layers), ``Flatten``
(identity on the C-order flattened vector) and ``Delay`` (per-channel, seconds -> steps), in any
feed-forward arrangement (chains, fan-in, skip connections); the neurons ``LIF``, ``CubaLIF``, ``IF``
(chip populations), ``LI``/``CubaLI`` (non-spiking populations, or accumulators) and ``I`` (accumulator,
Lava ``Sigma``). Everything else (``Threshold``, nested ``NIRGraph``, recurrent loops, graded values sent
between layers, ...) is collected and raised as ONE :class:`~ptsnn.errors.InputError` naming each node.

Discretisation at step ``dt`` (forward Euler of NIR's ODEs, the convention of snnTorch and of norse's own
importer; ``a = dt/tau``):

* ``LIF``:     ``v = (1 - a_m) v + a_m (v_leak + r I)``       -> ``i_decay 4096``, ``v_decay = round(4096 a_m)``,
  input gain ``g = a_m r``, bias ``a_m (v_leak - v_reset) + g b``.
* ``CubaLIF``: ``I = (1 - a_s) I + a_s w_in S``; ``v = (1 - a_m) v + a_m (v_leak + r I)``
  -> ``i_decay = round(4096 a_s)``, ``v_decay = round(4096 a_m)``, gain ``g = a_m r a_s w_in``
  (``convention="norse"``: ``I = (1 - a_s) I + w_in S``, gain ``a_m r w_in``: what norse's ``LIFCell``
  computes although it exports ``w_in = 1``; also every ``tau`` is read as ``dt * tau``); an ``Affine`` bias
  ``b`` in front of it becomes the membrane bias ``g b / a_s`` (the current's steady state; its rise over the
  first ~tau_syn/dt steps is reported lost).
* ``IF``:      ``v = v + r I`` (per step, no ``dt``: norse's and Sinabs' convention) -> ``v_decay 0``.
* ``LI``/``CubaLI``: as ``LIF``/``CubaLIF`` with the threshold at the 17-bit limit (reached only if v saturates);
  ``I``: ``v += r I`` per step -> :class:`Accumulator`.
* spikes: ``v > v_threshold``, then ``v = v_reset``; the chip resets to 0, so ``v`` is shifted by ``v_reset``
  (exact; the chip's initial state is then ``v = v_reset`` instead of 0).

Quantization per population: the incoming real weights ``g_o W_oi`` (times ``1/levels`` for graded host
input) are scaled by ``2**k`` with the largest ``k`` for which ``max |w| 2**k <= 254`` and rounded to even
mantissas (Lava drops the LSB of mixed-sign 8-bit weights); values that are already integers at that scale
(e.g. an exported chip graph) are kept as they are. ``vth = round(theta 2**k)``, bias
``round(bias 2**k)``; ``k`` is lowered until they fit 17/13 bits. Per-neuron thresholds are equalised by
scaling each neuron's input row (exact). Decays are per population, so per-neuron time constants must agree.

Latency: each chip synapse adds one step. A chip node ``n`` runs ``L(n) = max over inputs (L(src) + 1)``
steps behind the NIR graph (host inputs 0) and each synapse gets ``NIR delay + L(n) - L(src) - 1`` extra
steps, so skip connections stay aligned. ``graph.meta["nir_import"]`` holds ``L``, the output map, the input
scaling and every approximation made; ``flush_steps`` is the largest output latency.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ptsnn.chip.ir import (BIAS_LIMIT, THRESHOLD_LIMIT, WEIGHT_MAX, WEIGHT_MIN, Accumulator, ChipGraph,
                              CubaPopulation, HostInput, IRError, Synapses)
from ptsnn import safeio
from ptsnn.errors import InputError
from ptsnn.numerics import loihi



def _dynamics() -> dict:
    """NIR neuron class -> (dynamics, spiking): the registry of neuron nodes the importer maps."""
    import nir

    return {nir.LIF: ("leaky", True), nir.LI: ("leaky", False), nir.CubaLIF: ("cuba", True),
            nir.CubaLI: ("cuba", False), nir.IF: ("integrate", True), nir.I: ("integrate", False)}


def _boundary() -> tuple:
    import nir

    return nir.Input, nir.Output


def _np(x) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensors straight from an exporter (norse keeps them)
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def _name(nir_name: str) -> str:
    return str(nir_name).replace("/", "_")


@dataclass
class _Flow:
    """What a node outputs, as weighted sums of chip-node outputs: ``sum_src sum_d M[src][d] @ x_src(t - d)
    + bias``; ``M is None`` is the identity."""

    shape: tuple[int, ...]
    terms: dict[str, dict[int, np.ndarray | None]] = field(default_factory=dict)
    bias: np.ndarray | None = None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape)) if len(self.shape) else 1

    def bias_or_zero(self) -> np.ndarray:
        return np.zeros(self.size) if self.bias is None else self.bias


def _dense(m: np.ndarray | None, n: int) -> np.ndarray:
    return np.eye(n) if m is None else m


def _apply(flow: _Flow, a: np.ndarray, b: np.ndarray | None, shape: tuple[int, ...]) -> _Flow:
    """``y = a @ x + b`` applied to a flow."""
    terms = {src: {d: a.copy() if m is None else a @ m for d, m in by_d.items()} for src, by_d in flow.terms.items()}
    bias = a @ flow.bias if flow.bias is not None else None
    if b is not None and np.any(b):
        bias = b.copy() if bias is None else bias + b
    return _Flow(shape, terms, bias)


def _sum_flows(flows: list[_Flow], sizes: dict[str, int]) -> _Flow:
    out = _Flow(flows[0].shape)
    for f in flows:
        for src, by_d in f.terms.items():
            dst = out.terms.setdefault(src, {})
            for d, m in by_d.items():
                dst[d] = m if d not in dst else _dense(dst[d], sizes[src]) + _dense(m, sizes[src])
        if f.bias is not None:
            out.bias = f.bias.copy() if out.bias is None else out.bias + f.bias
    return out


def _pair(x, n: int, what: str) -> tuple[int, ...]:
    a = np.atleast_1d(np.asarray(x)).astype(np.int64).reshape(-1)
    if a.size == 1:
        a = np.repeat(a, n)
    if a.size != n:
        raise ValueError(f"{what} {x!r} does not fit {n} spatial dimensions")
    return tuple(int(v) for v in a)


def _conv_matrix(weight: np.ndarray, in_shape: tuple[int, ...], stride, padding, dilation, groups: int):
    """Dense matrix of an N-d convolution (PyTorch semantics) on a C-order flattened ``in_shape`` input."""
    nd = weight.ndim - 2
    c_out, c_in_g = weight.shape[:2]
    kernel = weight.shape[2:]
    c_in, spatial = in_shape[0], tuple(in_shape[1:])
    if len(spatial) != nd or c_in != c_in_g * groups or c_out % groups:
        raise ValueError(f"input {in_shape} does not fit weight {weight.shape} with groups {groups}")
    stride, dilation = _pair(stride, nd, "stride"), _pair(dilation, nd, "dilation")
    if isinstance(padding, (str, bytes)):
        padding = padding.decode() if isinstance(padding, bytes) else padding
        if padding == "valid":
            pad = (0,) * nd
        elif padding == "same":
            pad = tuple(dilation[k] * (kernel[k] - 1) // 2 for k in range(nd))
        else:
            raise ValueError(f"padding {padding!r}")
        out_sp = spatial if padding == "same" else None
    else:
        pad, out_sp = _pair(padding, nd, "padding"), None
    if out_sp is None:
        out_sp = tuple((spatial[k] + 2 * pad[k] - dilation[k] * (kernel[k] - 1) - 1) // stride[k] + 1
                       for k in range(nd))
    if min(out_sp) < 1:
        raise ValueError(f"output size {out_sp} from input {in_shape}")
    n_in, n_out_sp = int(np.prod(in_shape)), int(np.prod(out_sp))
    mat = np.zeros((c_out * n_out_sp, n_in))
    grids = np.meshgrid(*[np.arange(o) for o in out_sp], indexing="ij")
    out_pos = np.ravel_multi_index(tuple(g.ravel() for g in grids), out_sp)
    per_group_out = c_out // groups
    for kk in np.ndindex(*kernel):
        pos = [g.ravel() * stride[k] - pad[k] + kk[k] * dilation[k] for k, g in enumerate(grids)]
        ok = np.all([(p >= 0) & (p < spatial[k]) for k, p in enumerate(pos)], axis=0)
        if not ok.any():
            continue
        in_pos = np.ravel_multi_index(tuple(p[ok] for p in pos), spatial)
        rows_sp = out_pos[ok]
        for co in range(c_out):
            grp = co // per_group_out
            for ci_l in range(c_in_g):
                w = weight[(co, ci_l, *kk)]
                if w:
                    ci = grp * c_in_g + ci_l
                    mat[co * n_out_sp + rows_sp, ci * int(np.prod(spatial)) + in_pos] += w
    return mat, (c_out, *out_sp)


def _param(node, attr: str, n: int, default=None) -> np.ndarray:
    val = getattr(node, attr, None)
    if val is None:
        if default is None:
            raise ValueError(f"missing parameter {attr}")
        val = default
    a = _np(val).reshape(-1)
    if a.size == 1:
        return np.full(n, float(a[0]))
    if a.size != n:
        raise ValueError(f"{attr} has {a.size} values for {n} neurons")
    return a


def _load(source):
    import nir

    if isinstance(source, nir.NIRGraph):
        return source, "<NIRGraph>"
    if isinstance(source, nir.NIRNode):
        raise InputError(f"NIR import: expected a NIRGraph or a file, got a single {type(source).__name__} node")
    path = Path(os.fspath(source))
    if not path.is_file():
        raise InputError(f"NIR import: {path} does not exist")
    safeio.check_hdf5(path, "NIR file")  # every dataset's size bounded before nir.read reads them all
    try:
        return nir.read(path, type_check=False), str(path)
    except RecursionError:
        raise InputError(f"NIR import: {path}: subgraphs nested too deeply") from None
    except Exception as exc:
        text = " ".join(f"{type(exc).__name__}: {exc}".split())[:200]
        raise InputError(f"NIR import: cannot read {path} as NIR: {text}") from None


def _check_parameters(nodes: dict, where: str) -> None:
    """Every array parameter of every node finite and within ``|x| <= max_abs_value`` (a NaN or 1e30 weight
    would otherwise quantize to a silently wrong or saturated chip graph), declared shapes bounded."""
    lim = safeio.limits()
    for name, node in nodes.items():
        for attr, value in vars(node).items():
            if attr == "metadata" or value is None or isinstance(value, (str, bool)):
                continue
            if isinstance(value, dict):  # input_type/output_type: {port: shape}; a subgraph's nodes are refused later
                if attr not in ("input_type", "output_type"):
                    continue
                for port, shape in value.items():
                    try:
                        dims = np.atleast_1d(_np(shape)).reshape(-1) if shape is not None else np.zeros(0)
                    except (TypeError, ValueError):
                        raise InputError(f"NIR import ({where}): node '{name}' {attr}[{port!r}] is not a shape") from None
                    if dims.size and (not np.all(np.isfinite(dims)) or np.any(dims < 0)
                                      or float(np.prod(dims)) > lim.max_neurons):
                        raise InputError(f"NIR import ({where}): node '{name}' {attr}[{port!r}] = {dims.tolist()[:6]}:"
                                         f" more than {lim.max_neurons:,} neurons or not a shape (PTSNN_MAX_NEURONS)")
                continue
            try:
                arr = _np(value)
            except (TypeError, ValueError):
                continue  # not numeric (e.g. a padding string): the node's own lowering checks it
            if arr.size > lim.max_elements:
                raise InputError(f"NIR import ({where}): node '{name}' {attr} has {arr.size:,} values, above "
                                 f"{lim.max_elements:,} (PTSNN_MAX_ELEMENTS)")
            safeio.check_array(arr, f"NIR import ({where}): node '{name}' {attr}", kinds="f", nonempty=False)


def _topo(nodes: dict, edges: list[tuple[str, str]]) -> tuple[list[str], list[str]]:
    indeg = {n: 0 for n in nodes}
    succ: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in edges:
        succ[a].append(b)
        indeg[b] += 1
    ready = [n for n in nodes if indeg[n] == 0]
    order = []
    while ready:
        n = ready.pop(0)
        order.append(n)
        for m in succ[n]:
            indeg[m] -= 1
            if indeg[m] == 0:
                ready.append(m)
    return order, [n for n in nodes if n not in set(order)]


@dataclass
class _Neuron:
    kind: str
    i_decay: int
    v_decay: int
    gain: np.ndarray  # real input gain per neuron (onto u, in threshold units before 2**k)
    bias: np.ndarray  # real membrane bias per step
    theta: float | None  # threshold (None: non-spiking)
    accumulator: bool = False


MAX_VOLTAGE_DECAY = loihi.DECAY_UNITY - 1  # Lava dv register: 12 bits


def _neuron(name: str, node, n: int, b_in: np.ndarray, dt: float, convention: str, notes: list[str]) -> _Neuron:
    kind = type(node).__name__  # for messages
    dyn, spiking = _dynamics()[type(node)]
    tau_unit = 1.0 / dt if convention == "norse" else 1.0  # norse 1.1 writes dt*tau (issue #411)

    def decay(tau: np.ndarray, what: str, lo: int, hi: int = loihi.DECAY_UNITY) -> tuple[np.ndarray, int]:
        # hi: the voltage decay register is 12-bit (0..4095); the current decay may be 4096 (du = 4095)
        if np.any(tau <= 0) or not np.all(np.isfinite(tau)):
            raise ValueError(f"{what} must be positive and finite")
        alpha = dt / (tau * tau_unit)
        q = np.clip(np.rint(alpha * loihi.DECAY_UNITY), lo, hi).astype(np.int64)
        if len(np.unique(q)) > 1:
            raise ValueError(f"per-neuron {what} gives decays {sorted(set(q.tolist()))[:4]}...; a chip population "
                             "shares one decay (split the layer)")
        if np.any(alpha > 1):
            notes.append(f"{kind} '{name}': dt/{what} = {alpha.max():.3g} > 1 (forward Euler unstable; a norse 1.1 "
                         f"export read without convention='norse'?); decay clamped to {hi}")
        elif np.any(np.rint(alpha * loihi.DECAY_UNITY) < max(lo, 1)):
            notes.append(f"{kind} '{name}': dt/{what} = {alpha.min():.3g} below the 1/4096 decay resolution; "
                         f"decay {int(q[0])}" + (" (no leak)" if q[0] == 0 else ""))
        return alpha, int(q[0])

    r = _param(node, "r", n, 1.0)
    if dyn == "leaky":
        a_m, v_decay = decay(_param(node, "tau", n), "tau", 0, MAX_VOLTAGE_DECAY)
        i_decay, gain = loihi.DECAY_UNITY, a_m * r
        leak = a_m * _param(node, "v_leak", n, 0.0)
        a_s_q = 1.0
    elif dyn == "cuba":
        a_s, i_decay = decay(_param(node, "tau_syn", n), "tau_syn", 1)
        a_m, v_decay = decay(_param(node, "tau_mem", n), "tau_mem", 0, MAX_VOLTAGE_DECAY)
        w_in = _param(node, "w_in", n, 1.0)
        gain = a_m * r * w_in * (a_s if convention == "nir" else 1.0)
        leak = a_m * _param(node, "v_leak", n, 0.0)
        a_s_q = i_decay / loihi.DECAY_UNITY
        if np.any(b_in) and i_decay < loihi.DECAY_UNITY:
            notes.append(f"{kind} '{name}': the input bias is applied at the membrane as the synaptic current's "
                         f"steady state (bias/a_s); its rise over the first ~{1 / a_s_q:.0f} steps is lost")
    else:  # IF, I: per-step increments v += r*I (norse/Sinabs convention)
        i_decay, v_decay, gain, leak, a_s_q = loihi.DECAY_UNITY, 0, r, np.zeros(n), 1.0
    bias = leak + gain * b_in / a_s_q
    if not spiking:
        return _Neuron(kind, i_decay, v_decay, gain, bias, None, accumulator=dyn == "integrate")
    v_th = _param(node, "v_threshold", n)
    v_reset = _param(node, "v_reset", n, 0.0)
    if np.any(v_reset):
        bias = bias - (a_m * v_reset if dyn in ("leaky", "cuba") else 0.0)
        notes.append(f"{kind} '{name}': v_reset {np.unique(v_reset)[:3].tolist()} handled by shifting v "
                     "(exact); the chip starts from v = v_reset instead of 0")
    theta = v_th - v_reset
    if np.any(theta < 0):
        raise ValueError("v_threshold below v_reset")
    ref = float(theta.max())
    if not np.allclose(theta, ref, rtol=1e-12, atol=0):
        if np.any(theta == 0):
            raise ValueError("per-neuron thresholds include v_threshold == v_reset")
        f = ref / theta  # equalise thresholds by scaling each neuron's input and bias (exact)
        gain, bias = gain * f, bias * f
    return _Neuron(kind, i_decay, v_decay, gain, bias, ref)


def _quantize(x: np.ndarray) -> np.ndarray:
    r = np.rint(x)
    if np.allclose(x, r, rtol=0, atol=1e-6):
        return r.astype(np.int64)
    return (2 * np.rint(x / 2)).astype(np.int64)


def import_nir(source, dt: float, input_bits: int = 0, *, convention: str = "nir",
               li_readout: str = "population") -> ChipGraph:
    """Build a :class:`ChipGraph` from a NIR graph (object or file) discretised at ``dt`` seconds.

    ``input_bits`` 0: the NIR inputs are binary spikes; ``> 0``: graded host input, values ``x`` in [-1, 1]
    sent as payloads ``round(x * (2**(input_bits-1) - 1))``. ``convention``: ``"nir"`` (NIR's ODEs by forward
    Euler: snnTorch, Sinabs, export_nir) or ``"norse"`` (graphs from norse 1.1's ``to_nir`` with the same
    ``dt``: its time constants are written as ``dt * tau`` (norse issue #411) and its ``LIFCell`` adds the
    input to the current without the ``dt/tau_syn`` factor). ``li_readout``: ``"population"`` (non-spiking CUBA
    population, exact leak, read through a voltage probe) or ``"accumulator"`` (Lava Sigma, leak dropped).
    """
    if not (isinstance(dt, (int, float)) and np.isfinite(dt) and dt > 0):
        raise InputError(f"NIR import: dt must be a positive number of seconds, got {dt!r}")
    if convention not in ("nir", "norse"):
        raise InputError(f"NIR import: convention must be 'nir' or 'norse', got {convention!r}")
    if li_readout not in ("population", "accumulator"):
        raise InputError(f"NIR import: li_readout must be 'population' or 'accumulator', got {li_readout!r}")
    if not 0 <= int(input_bits) <= 24 or int(input_bits) == 1:
        raise InputError(f"NIR import: input_bits must be 0 (spikes) or 2..24, got {input_bits}")
    graph, where = _load(source)
    nodes, edges = dict(graph.nodes), [(str(a), str(b)) for a, b in graph.edges]
    _check_parameters(nodes, where)

    problems: list[str] = []
    bad = set()
    for name, node in nodes.items():
        kind = type(node).__name__
        if type(node) not in (*_dynamics(), *_sum_handlers(), *_boundary()):
            what = "nested/recurrent subgraph" if kind == "NIRGraph" else "no chip equivalent"
            problems.append(f"{kind} '{name}' ({what})")
            bad.add(name)
    for a, b in edges:
        if a not in nodes or b not in nodes:
            problems.append(f"edge {a}->{b} names a missing node")
    edges = [(a, b) for a, b in edges if a in nodes and b in nodes]
    order, loop = _topo(nodes, edges)
    if loop:
        problems.append("recurrent loop through " + ", ".join(f"{type(nodes[n]).__name__} '{n}'" for n in loop))
    preds: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in edges:
        preds[b].append(a)

    levels = 2 ** (int(input_bits) - 1) - 1 if input_bits else 1
    notes: list[str] = []
    flows: dict[str, _Flow] = {}
    sizes: dict[str, int] = {}
    kinds: dict[str, str] = {}  # chip node -> input | population | li | accumulator
    neurons: dict[str, tuple[_Neuron, _Flow, dict]] = {}
    outputs: dict[str, str] = {}
    hints: dict[str, dict] = {}
    for name in order:
        node = nodes[name]
        kind = type(node).__name__
        hints[name] = dict(getattr(node, "metadata", None) or {})
        if name in bad:
            continue
        if isinstance(node, _boundary()[0]):
            shape = tuple(int(v) for v in np.atleast_1d(_np(node.input_type["input"])).astype(np.int64))
            flows[name] = _Flow(shape, {name: {0: None}})
            sizes[name] = flows[name].size
            kinds[name] = "input"
            continue
        if not preds[name]:
            problems.append(f"{kind} '{name}' has no input")
            continue
        if any(p not in flows for p in preds[name]):
            continue  # upstream already reported
        ins = [flows[p] for p in preds[name]]
        if len({f.size for f in ins}) > 1:
            problems.append(f"{kind} '{name}': inputs of different sizes {[f.size for f in ins]}")
            continue
        flow = _sum_flows(ins, sizes) if len(ins) > 1 else ins[0]
        try:
            if type(node) in _sum_handlers():
                flows[name] = _sum_node(name, node, flow, dt, sizes, notes)
            elif isinstance(node, _boundary()[1]):
                only = next(iter(flow.terms.values())) if len(flow.terms) == 1 else {}
                if flow.bias is None and set(only) == {0} and only[0] is None:
                    outputs[name] = next(iter(flow.terms))
                else:
                    problems.append(f"Output '{name}' is fed by a weighted sum or delay, not by neurons (graded "
                                    "values are not a chip output)")
            else:
                n = flow.size
                for src in flow.terms:
                    if kinds.get(src) in ("li", "accumulator"):
                        problems.append(f"{kind} '{name}' is fed by non-spiking {type(nodes[src]).__name__} '{src}' "
                                        "(graded voltages are not sent between chip populations)")
                if not flow.terms:
                    problems.append(f"{kind} '{name}' receives only a constant (no synapses)")
                    continue
                nrn = _neuron(name, node, n, flow.bias_or_zero(), dt, convention, notes)
                dyn, spiking = _dynamics()[type(node)]
                if not spiking and (dyn == "integrate" or li_readout == "accumulator"):
                    nrn.accumulator = True
                    kinds[name] = "accumulator"
                    if dyn != "integrate":
                        notes.append(f"{kind} '{name}': read out by an accumulator (Sigma): the leak is dropped "
                                     "and the value is the running sum of r*a_m*input")
                    if np.any(nrn.bias):
                        notes.append(f"{kind} '{name}': its bias cannot enter an accumulator; the host adds "
                                     "bias*steps (meta accumulator_bias)")
                else:
                    kinds[name] = "li" if nrn.theta is None else "population"
                    if nrn.theta is None:
                        notes.append(f"{kind} '{name}': non-spiking population (threshold at the 17-bit limit, "
                                     "reached only if v saturates); read its voltage with a probe")
                neurons[name] = (nrn, flow, hints[name])
                flows[name] = _Flow(flow.shape, {name: {0: None}})
                sizes[name] = n
        except (ValueError, IndexError) as exc:
            problems.append(f"{kind} '{name}': {exc}")
    if problems:
        raise InputError(f"NIR import ({where}): unsupported: " + "; ".join(problems))
    flush_hint = int(dict(getattr(graph, "metadata", None) or {}).get("ptsnn_flush_steps", 0))
    return _build(nodes, order, kinds, sizes, neurons, outputs, hints, levels, int(input_bits), dt, notes, where,
                  convention, li_readout, flush_hint)


def _affine(name, node, flow, dt, sizes, notes) -> _Flow:
    n = flow.size
    w = _np(node.weight)
    if w.ndim != 2 or w.shape[1] != n:
        raise ValueError(f"weight {w.shape} does not take an input of size {n}")
    b = _np(node.bias).reshape(-1) if getattr(node, "bias", None) is not None else None
    return _apply(flow, w, b, (w.shape[0],))


def _scale(name, node, flow, dt, sizes, notes) -> _Flow:
    return _apply(flow, np.diag(_param(node, "scale", flow.size)), None, flow.shape)


def _flatten(name, node, flow, dt, sizes, notes) -> _Flow:
    return _Flow((flow.size,), flow.terms, flow.bias)


def _conv(name, node, flow, dt, sizes, notes) -> _Flow:
    n = flow.size
    w = _np(node.weight)
    shape = flow.shape
    if len(shape) != w.ndim - 1:
        ish = getattr(node, "input_shape", None)
        ish = tuple(int(v) for v in np.atleast_1d(np.asarray(ish)).reshape(-1)) if ish is not None else ()
        shape = (w.shape[1] * int(node.groups), *ish)
        if int(np.prod(shape)) != n:
            raise ValueError(f"input shape {flow.shape} does not fit a {type(node).__name__} with weight {w.shape}")
    mat, out_shape = _conv_matrix(w, shape, node.stride, node.padding, node.dilation, int(node.groups))
    bias = getattr(node, "bias", None)
    b = np.repeat(_np(bias).reshape(-1), int(np.prod(out_shape[1:]))) if bias is not None else None
    return _apply(flow, mat, b, out_shape)


def _pool(name, node, flow, dt, sizes, notes, average: bool) -> _Flow:
    if len(flow.shape) != 3:
        raise ValueError(f"needs a (C, H, W) input, got shape {flow.shape}")
    k = _pair(node.kernel_size, 2, "kernel_size")
    stride = _pair(node.stride if node.stride is not None else k, 2, "stride")
    c = flow.shape[0]
    w = np.ones((c, 1, *k)) / (np.prod(k) if average else 1.0)
    mat, out_shape = _conv_matrix(w, flow.shape, stride, node.padding, 1, c)
    return _apply(flow, mat, None, out_shape)


def _delay(name, node, flow, dt, sizes, notes) -> _Flow:
    d = _param(node, "delay", flow.size) / dt
    steps = np.rint(d).astype(np.int64)
    if np.any(steps < 0):
        raise ValueError("negative delay")
    if not np.allclose(d, steps, rtol=1e-6, atol=1e-6):
        notes.append(f"Delay '{name}': delays are not multiples of dt; rounded to whole steps")
    if np.any(steps) and flow.bias is not None:
        notes.append(f"Delay '{name}': the constant bias before it is not delayed (it differs only in the first "
                     f"{int(steps.max())} steps)")
    out = _Flow(flow.shape, {}, flow.bias)
    for src, by_d in flow.terms.items():
        dst = out.terms.setdefault(src, {})
        for d0, m in by_d.items():
            m = _dense(m, sizes[src])
            for v in np.unique(steps):
                rows = np.where(steps == v, 1.0, 0.0)[:, None] * m
                key = int(d0 + v)
                dst[key] = rows if key not in dst else _dense(dst[key], sizes[src]) + rows
    return out


def _sum_handlers() -> dict:
    """NIR node class -> handler(name, node, flow, dt, sizes, notes) -> the flow after that linear node."""
    import functools

    import nir

    return {nir.Affine: _affine, nir.Linear: _affine, nir.Scale: _scale, nir.Flatten: _flatten,
            nir.Conv1d: _conv, nir.Conv2d: _conv, nir.SumPool2d: functools.partial(_pool, average=False),
            nir.AvgPool2d: functools.partial(_pool, average=True), nir.Delay: _delay}


def _sum_node(name: str, node, flow: _Flow, dt: float, sizes: dict[str, int], notes: list[str]) -> _Flow:
    return _sum_handlers()[type(node)](name, node, flow, dt, sizes, notes)


def _build(nodes, order, kinds, sizes, neurons, outputs, hints, levels, input_bits, dt, notes, where, convention,
           li_readout, flush_hint: int = 0) -> ChipGraph:
    problems: list[str] = []
    chip = {n: _name(n) for n in kinds}
    if len(set(chip.values())) != len(chip):
        raise InputError(f"NIR import ({where}): node names collide after replacing '/'")
    in_scale = {n: (1.0 / levels if input_bits else 1.0) for n, k in kinds.items() if k == "input"}
    # latency
    lat = {n: 0 for n, k in kinds.items() if k == "input"}
    for n in order:
        if n in neurons:
            lat[n] = max(lat[s] + 1 for s in neurons[n][1].terms)
    # a graph written by export_nir carries its chip latencies: keep them when they give valid delays
    if all("ptsnn_latency_steps" in hints.get(n, {}) for n in kinds):
        h = {n: int(hints[n]["ptsnn_latency_steps"]) for n in kinds}
        if all(h[i] == 0 for i, k in kinds.items() if k == "input") and all(
                min(by_d) + h[n] - h[s] - 1 >= 0 for n in neurons for s, by_d in neurons[n][1].terms.items()):
            lat = h
    inputs = [HostInput(chip[n], sizes[n], input_bits, levels,
                        int(hints[n].get("ptsnn_steps_per_frame", 1)) or 1)
              for n in order if kinds.get(n) == "input"]
    pops, accs, syns = [], [], []
    scale_exp: dict[str, int] = {}
    for n in order:
        if n not in neurons:
            continue
        nrn, flow, hint = neurons[n]
        contrib = []  # (src, extra delay, real weight matrix)
        for src, by_d in flow.terms.items():
            for d, m in by_d.items():
                w = nrn.gain[:, None] * _dense(m, sizes[src]) * in_scale.get(src, 1.0)
                contrib.append((src, d + lat[n] - lat[src] - 1, w))
        maxw = max(float(np.abs(w).max(initial=0.0)) for _, _, w in contrib)
        k = int(np.floor(np.log2(WEIGHT_MAX / maxw))) if maxw > 0 else 0
        if "ptsnn_scale_exponent" in hint:
            kh = int(hint["ptsnn_scale_exponent"])
            if kh <= k:
                k = kh
        if nrn.theta is not None or not nrn.accumulator:
            theta = nrn.theta if nrn.theta is not None else 0.0
            while k > -60 and (round(theta * 2.0**k) > THRESHOLD_LIMIT
                               or np.abs(np.rint(nrn.bias * 2.0**k)).max(initial=0) > BIAS_LIMIT):
                k -= 1
        scale_exp[n] = k
        qs = [(src, d, np.clip(_quantize(w * 2.0**k), WEIGHT_MIN, WEIGHT_MAX)) for src, d, w in contrib]
        if maxw > 0 and not any(np.any(q) for _, _, q in qs):
            notes.append(f"'{n}': every weight rounds to 0 at scale 2**{k}")
        by_src: dict[str, list] = {}
        for src, d, q in qs:
            if d > loihi.MAX_DELAY and np.any(q):
                problems.append(f"'{n}': delay of {d} steps from '{src}' exceeds {loihi.MAX_DELAY}")
            by_src.setdefault(src, []).append((min(d, loihi.MAX_DELAY), q))
        for src, parts in by_src.items():
            live = sum((q != 0).astype(int) for _, q in parts)
            base = f"{chip[src]}->{chip[n]}"
            if np.all(live <= 1):
                w = sum(q for _, q in parts)
                dly = sum(np.where(q != 0, d, 0) for d, q in parts)
                if len(parts) == 1:
                    dly = np.full(w.shape, parts[0][0])
                syns.append(Synapses(base, chip[src], chip[n], w, dly))
            else:
                for d, q in parts:
                    syns.append(Synapses(f"{base}@{d}", chip[src], chip[n], q, np.full(q.shape, d)))
        if nrn.accumulator:
            accs.append(Accumulator(chip[n], sizes[n], k))
            continue
        vth = THRESHOLD_LIMIT if nrn.theta is None else int(round(nrn.theta * 2.0**k))
        bias = np.clip(np.rint(nrn.bias * 2.0**k), -BIAS_LIMIT, BIAS_LIMIT).astype(np.int64)
        if vth > THRESHOLD_LIMIT:
            problems.append(f"{nrn.kind} '{n}': threshold/bias range does not fit 17/13-bit mantissas")
            continue
        role = "li" if nrn.theta is None else str(hint.get("ptsnn_role", "plif"))
        pops.append(CubaPopulation(chip[n], sizes[n], nrn.i_decay, nrn.v_decay, vth, bias, role=role,
                                   scale_exponent=k))
    if problems:
        raise InputError(f"NIR import ({where}): unsupported: " + "; ".join(problems))
    meta = dict(nir_import=dict(
        source=where, dt=float(dt), input_bits=input_bits, input_levels=levels, convention=convention,
        li_readout=li_readout, latency={chip[n]: int(v) for n, v in lat.items()},
        outputs={o: chip[s] for o, s in outputs.items()}, names={n: chip[n] for n in kinds},
        accumulator_bias={chip[n]: [float(b) for b in neurons[n][0].bias] for n in neurons
                          if neurons[n][0].accumulator and np.any(neurons[n][0].bias)},
        approximations=list(dict.fromkeys(notes))))
    flush = max(flush_hint, max((lat[s] for s in outputs.values()), default=max(lat.values(), default=0)))
    try:
        return ChipGraph(inputs, pops, accs, syns, flush_steps=int(flush), meta=meta)
    except IRError as exc:
        raise InputError(f"NIR import ({where}): {exc}") from exc


__all__ = ["import_nir"]
