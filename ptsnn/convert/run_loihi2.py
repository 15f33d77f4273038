#!/usr/bin/env python3
"""Run this ptsnn bundle's chip part on Loihi 2 and print the label of each utterance.

Copied into every Loihi 2 bundle by ptsnn-convert (never imported by ptsnn). Self-contained: it needs Lava
(lava-nc), Intel's lava-loihi for the hardware, numpy, h5py and the Python standard library; not ptsnn.

It reads the bundle files next to it (manifest.json, chip_graph.json, chip_graph.h5; sha256-checked against
the manifest) and builds the chip IR as Lava processes, the same ones ptsnn's Lava backend builds
(ptsnn/deploy/lava_graph.py; there lava-dl's netx builds the same LIF and Dense processes for the netx chain):
a RingBuffer source for the host payloads, one LIF per population (du = i_decay - 1, dv = v_decay, vth,
bias_mant with bias_exp = 6), one Dense (DelayDense when the edge has delays) per synapse edge, one Sigma
per accumulator, and a RingBuffer sink on the readout. Each payload is followed by the bundle's flush steps
(empty), and the label is the arg-max of the readout after the last step, divided by 2**scale_exponent and
the step count (the logits, as `ptsnn run` computes them).

TTFS bundles (graph meta model_kind "ttfs": fire-once populations, convolution groups, two host inputs) build
the same way: a fire-once population is a LIF (du = -1: no current decay) plus a diagonal Dense
self-connection of its inhibit weight; a conv group is Lava's Conv, reached through (C, H, W) -> (W, H, C)
reshape/transpose ports; the second host input ("timing") is a fixed spike pattern this script rebuilds from
graph meta; the logits are the readout population's voltage after the last step, >> 6, divided by its
scale (docs/ttfs.md).

Payloads: the host part's integer payloads, one [steps, features] .npy per utterance (for TTFS bundles the
input spikes [steps, C*H*W], one inference), as written by
`ptsnn run BUNDLE INPUT --backend fast --save-payloads DIR`.

--sim runs the same graph in Lava's CPU simulation (Loihi2SimCfg(select_tag='fixed_pt')) instead of
Loihi2HwCfg: it checks the script and the bundle without hardware, and gives the readout `ptsnn run
--backend lava` gives.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

BUNDLE = Path(__file__).resolve().parent
EXIT_INPUT = 2


class ScriptError(Exception):
    """A problem with the inputs or the installation: one line on stderr, exit code 2."""


# ------------------------------------------------------------------------------------------- bundle files
def _verified(bundle: Path, manifest: dict, rel: str) -> Path:
    path = bundle / rel
    if not path.is_file():
        raise ScriptError(f"{path}: missing (this script reads the bundle it was written into)")
    digest = (manifest.get("files") or {}).get(rel)
    if digest is not None and hashlib.sha256(path.read_bytes()).hexdigest() != digest:
        raise ScriptError(f"{path}: does not match its sha256 in manifest.json (modified or damaged)")
    return path


def load_graph(bundle: Path) -> dict:
    """The chip IR as plain dicts and numpy arrays (format 'ptsnn-chip-ir': chip_graph.json + .h5)."""
    import h5py

    try:
        manifest = json.loads((bundle / "manifest.json").read_text())
    except (OSError, ValueError) as exc:
        raise ScriptError(f"{bundle / 'manifest.json'}: not readable JSON ({exc})") from None
    structure_path = _verified(bundle, manifest, "chip_graph.json")
    arrays_path = _verified(bundle, manifest, "chip_graph.h5")
    try:
        g = json.loads(structure_path.read_text())
        if g.get("format") != "ptsnn-chip-ir":
            raise ScriptError(f"{structure_path}: format is {g.get('format')!r}, not 'ptsnn-chip-ir'")
        unsupported = [f"{x['name']} ({x['kind']})" for x in [*g["populations"], *g["synapses"]]
                       if x.get("kind", "cuba") not in ("cuba", "fire_once", "dense", "conv")]
        if unsupported:
            raise ScriptError(f"{structure_path}: {', '.join(unsupported[:3])}: this script builds CUBA and "
                              "fire-once populations, dense and conv synapse groups only")
        with h5py.File(arrays_path, "r") as f:
            for p in g["populations"]:
                p["bias"] = np.asarray(f[p["bias"]][()], np.int64)
            for s in g["synapses"]:
                s["weight"] = np.asarray(f[s["weight"]][()], np.int64)
                if s.get("kind", "dense") == "dense":
                    s["delay"] = np.asarray(f[s["delay"]][()], np.int64)
        g["ttfs"] = (g.get("meta") or {}).get("model_kind") == "ttfs"
        if g["ttfs"]:
            meta = g["meta"]
            names = {p["name"]: p for p in g["populations"]}
            if [i["name"] for i in g["inputs"]] != [meta["input"], meta["timing_input"]] \
                    or meta["readout"]["population"] not in names:
                raise ScriptError(f"{structure_path}: a TTFS graph needs its input and timing inputs and a readout "
                                  "population")
            readout_size = names[meta["readout"]["population"]]["size"]
        elif len(g["inputs"]) != 1 or len(g["accumulators"]) != 1:
            raise ScriptError(f"{structure_path}: expected one host input and one readout accumulator")
        else:
            readout_size = g["accumulators"][0]["size"]
    except (KeyError, TypeError, OSError, ValueError) as exc:
        raise ScriptError(f"{structure_path}: not a readable chip IR ({type(exc).__name__}: {exc})") from None
    g["classes"] = list(manifest.get("classes") or [str(i) for i in range(readout_size)])
    return g


def load_payload(path: Path, graph: dict) -> np.ndarray:
    """A [steps, features] integer payload inside the input's graded range."""
    inp = graph["inputs"][0]
    try:
        x = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise ScriptError(f"{path}: not a readable .npy array ({exc})") from None
    if not isinstance(x, np.ndarray) or x.ndim != 2 or x.shape[1] != inp["size"] or len(x) == 0:
        raise ScriptError(f"{path}: payload shape {getattr(x, 'shape', None)}, expected [steps, {inp['size']}]")
    if x.dtype.kind not in "iu":
        raise ScriptError(f"{path}: payload dtype {x.dtype}, expected integers (ptsnn run --save-payloads)")
    if graph["ttfs"]:  # one inference of input spikes: exactly the graph's steps, 0/1
        steps = int(graph["meta"]["steps"])
        if len(x) != steps or x.min(initial=0) < 0 or x.max(initial=0) > 1:
            raise ScriptError(f"{path}: a TTFS payload is {steps} steps of 0/1 input spikes, got {len(x)} steps "
                              f"with values {int(x.min())}..{int(x.max())}")
    limit = max(2 ** (inp["message_bits"] - 1) - 1, 1) if inp["message_bits"] else 1
    if np.abs(x).max(initial=0) > limit:
        raise ScriptError(f"{path}: payload values up to {int(np.abs(x).max())}, the input carries "
                          f"{inp['message_bits']}-bit payloads (|x| <= {limit})")
    return x.astype(np.int64)


# ------------------------------------------------------------------------------------------------- Lava
@contextlib.contextmanager
def _python311_dataclass_fix():
    """lava-nc 0.10's compiler.var_model uses a dataclass instance as a field default, which Python 3.11
    rejects; while that module is first imported, its class ByteEncoder gets unsafe_hash=True (3.10's
    behaviour). The same fix as ptsnn/compat.py, repeated here so the script needs no ptsnn."""
    import dataclasses

    original = dataclasses.dataclass

    def dataclass(cls=None, /, **kwargs):
        def wrap(c):
            if c.__name__ == "ByteEncoder":
                kwargs.setdefault("unsafe_hash", True)
            return original(c, **kwargs)
        return wrap if cls is None else wrap(cls)

    dataclasses.dataclass = dataclass
    try:
        yield
    finally:
        dataclasses.dataclass = original


def import_lava(hardware: bool) -> dict:
    """Lava's processes and run configuration; a ScriptError when Lava or (for hardware) lava-loihi is absent."""
    try:
        with _python311_dataclass_fix():
            with contextlib.suppress(ModuleNotFoundError):
                import lava.magma.compiler.var_model  # noqa: F401  (imported here, under the fix)
            from lava.magma.core.run_conditions import RunSteps
            from lava.magma.core.run_configs import Loihi2HwCfg, Loihi2SimCfg
            from lava.proc.conv.process import Conv
            from lava.proc.dense.process import DelayDense, Dense
            from lava.proc.io.sink import RingBuffer as Sink
            from lava.proc.io.source import RingBuffer as Source
            from lava.proc.lif.process import LIF
            from lava.proc.sdn.process import Sigma
            from lava.utils.loihi import is_installed
    except ImportError as exc:
        raise ScriptError(f"Lava (lava-nc) is not importable ({exc}); install lava-nc, and for the hardware "
                          "Intel's lava-loihi") from None
    if hardware and not is_installed():
        raise ScriptError("Loihi 2 hardware needs Intel's lava-loihi, which is not installed (it is distributed "
                          "to INRC members); --sim runs the same graph in Lava's CPU simulation")
    run_cfg = Loihi2HwCfg() if hardware else Loihi2SimCfg(select_tag="fixed_pt")
    return dict(RunSteps=RunSteps, run_cfg=run_cfg, Conv=Conv, DelayDense=DelayDense, Dense=Dense, Sink=Sink,
                Source=Source, LIF=LIF, Sigma=Sigma)


def lava_keeps(weights: np.ndarray) -> bool:
    """Does Lava's bit-accurate Dense hold these weights unchanged (8-bit clip, then the LSB dropped for
    mixed signs)? Other weights are split by sign (``dense_parts``), as ptsnn's Lava backend does; what that
    cannot hold exactly is refused rather than run as something else."""
    w = np.asarray(weights, np.int64)
    if w.size == 0 or w.min() >= 0:
        return bool(w.max(initial=0) <= 255)
    if w.max() <= 0:
        return bool(w.min() >= -255)
    return bool(w.min() >= -256 and w.max() <= 254 and not np.any(w & 1))


def dense_parts(edge: dict) -> list[tuple[np.ndarray, int]]:
    """``(weights, weight_exp)`` of the Dense processes that together compute ``edge`` exactly: as they are when
    Lava's 8-bit Dense keeps them, else (non-negative exponent) split into excitatory, inhibitory (>= -255) and
    the rest (-1 where a weight was -256), each held exactly; Lava sums them in the target's input. Keep in step
    with ptsnn/deploy/lava_graph.py: _dense_parts()."""
    w, exp = edge["weight"], int(edge.get("weight_exp", 0))
    if lava_keeps(w):
        return [(w, exp)]
    if exp < 0:
        raise ScriptError(f"synapses {edge['name']}: weights outside what Lava's 8-bit Dense holds exactly "
                          f"({int(w.min())}..{int(w.max())}) with a negative exponent; not supported here")
    neg = np.minimum(w, 0)
    parts = [np.maximum(w, 0), np.maximum(neg, -255), neg - np.maximum(neg, -255)]
    return [(part, exp) for part in parts if part.any()]


def _neurons(pop: dict, lava: dict):
    """A LIF per CUBA population; a fire-once population adds its diagonal inhibitory self-connection."""
    lif = lava["LIF"](shape=(pop["size"],), du=pop["i_decay"] - 1, dv=pop["v_decay"], vth=pop["vth"],
                      bias_mant=pop["bias"].astype(np.int32), bias_exp=6, name=pop["name"])
    if pop.get("kind") == "fire_once":
        inhibit = lava["Dense"](weights=np.diag(np.full(pop["size"], pop["inhibit_weight"], np.int32)),
                                weight_exp=int(pop["inhibit_exp"]), name=f"{pop['name']}.fire_once")
        lif.s_out.connect(inhibit.s_in)
        inhibit.a_out.connect(lif.a_in)
    return lif


def _connect(edge: dict, bits: int, src_port, dst_port, lava: dict) -> None:
    if edge.get("kind") == "conv":
        c, h, w = edge["in_shape"]
        # Lava's Conv convolves (flipped kernel) with weights (out, kW, kH, in/groups) on (W, H, C) ports; the
        # IR cross-correlates (PyTorch, netx) on flat (C, H, W) populations
        lava_w = np.ascontiguousarray(edge["weight"][:, :, ::-1, ::-1].transpose(0, 3, 2, 1)).astype(np.int32)
        conv = lava["Conv"](weight=lava_w, input_shape=(w, h, c), padding=tuple(edge["padding"][::-1]),
                            stride=tuple(edge["stride"][::-1]), dilation=tuple(edge["dilation"][::-1]),
                            groups=int(edge["groups"]), num_message_bits=bits, name=edge["name"])
        src_port.reshape((c, h, w)).transpose([2, 1, 0]).connect(conv.s_in)
        conv.a_out.transpose([2, 1, 0]).reshape((int(np.prod(edge["out_shape"])),)).connect(dst_port)
        return
    delay = edge["delay"].astype(int)
    for k, (weights, exp) in enumerate(dense_parts(edge)):
        common = dict(weights=weights.astype(np.int32), weight_exp=exp, num_message_bits=bits,
                      name=edge["name"] if k == 0 else f"{edge['name']}.part{k}")
        if delay.any():
            syn = lava["DelayDense"](delays=delay, max_delay=int(delay.max()), **common)
        else:
            syn = lava["Dense"](**common)
        src_port.connect(syn.s_in)
        syn.a_out.connect(dst_port)


def timing_spikes(graph: dict) -> np.ndarray:
    """A TTFS graph's timing input: one spike per channel at its fixed step, ``[steps, channels]``."""
    meta = graph["meta"]
    spikes = np.zeros((int(meta["steps"]), graph["inputs"][1]["size"]), np.int64)
    for ch, c in enumerate(meta["timing"]):
        spikes[int(c["step"]), ch] = 1
    return spikes


def build(graph: dict, payloads: dict, steps: int, lava: dict):
    """The processes for one utterance (``payloads``: host input -> [size, steps]); returns (sources, readout):
    ``readout`` is the Sigma's RingBuffer sink, or (TTFS) the readout LIF whose voltage is read after the run.
    Keep in step with ptsnn/deploy/lava_graph.py: build_chip()."""
    out_ports, in_ports, lifs, sources = {}, {}, {}, []
    bits = {}
    for inp in graph["inputs"]:
        src = lava["Source"](data=np.asarray(payloads[inp["name"]], np.int32).reshape(inp["size"], steps))
        out_ports[inp["name"]], bits[inp["name"]] = src.s_out, int(inp["message_bits"])
        sources.append(src)
    for pop in graph["populations"]:
        lif = lifs[pop["name"]] = _neurons(pop, lava)
        out_ports[pop["name"]], in_ports[pop["name"]] = lif.s_out, lif.a_in
    for a in graph["accumulators"]:
        sigma = lava["Sigma"](shape=(a["size"],))
        out_ports[a["name"]], in_ports[a["name"]] = sigma.s_out, sigma.a_in
    for edge in graph["synapses"]:
        _connect(edge, bits.get(edge["source"], 0), out_ports[edge["source"]], in_ports[edge["target"]], lava)
    if graph["ttfs"]:
        return sources[:1], lifs[graph["meta"]["readout"]["population"]]  # input and timing feed one graph
    acc = graph["accumulators"][0]
    sink = lava["Sink"](shape=(acc["size"],), buffer=steps)
    out_ports[acc["name"]].connect(sink.a_in)
    return sources, sink


def run_utterance(graph: dict, payload: np.ndarray, lava: dict) -> dict:
    if graph["ttfs"]:
        steps = int(graph["meta"]["steps"])
        padded = {graph["inputs"][0]["name"]: payload, graph["inputs"][1]["name"]: timing_spikes(graph)}
    else:
        steps = len(payload) + int(graph["flush_steps"])
        padded = np.zeros((steps, payload.shape[1]), np.int64)
        padded[: len(payload)] = payload  # the host sends nothing during the flush
        padded = {graph["inputs"][0]["name"]: padded}
    sources, readout_proc = build(graph, {k: v.T for k, v in padded.items()}, steps, lava)
    started = []
    try:
        for src in sources:
            started.append(src)
            src.run(condition=lava["RunSteps"](num_steps=steps), run_cfg=lava["run_cfg"])
        if graph["ttfs"]:  # the read step is the last step: the voltage after the run, >> 6, over the scale
            r = graph["meta"]["readout"]
            v = np.broadcast_to(np.asarray(readout_proc.v.get(), np.int64), readout_proc.v.shape)
            readout = v >> int(r["activation_shift"])
            logits = readout / float(r["scale"])
        else:
            readout = readout_proc.data.get()[:, steps - 1].astype(np.int64)
            logits = readout / (2.0 ** graph["accumulators"][0]["scale_exponent"] * steps)
    finally:
        for src in started:
            src.stop()
    return dict(label=graph["classes"][int(np.argmax(logits))], readout=readout.tolist(),
                logits=logits.tolist(), steps=steps)


# -------------------------------------------------------------------------------------------------- CLI
def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="run_loihi2.py", description="Run this ptsnn bundle's chip part on Loihi 2 (lava-loihi) and print "
        "each utterance's label.", epilog="Payloads come from: ptsnn run BUNDLE audio.wav --save-payloads DIR")
    p.add_argument("payloads", nargs="+", type=Path, metavar="PAYLOAD.npy",
                   help="host-part integer payloads [steps, features], one file per utterance")
    p.add_argument("--sim", action="store_true", help="Lava CPU simulation (Loihi2SimCfg, fixed_pt) instead of "
                   "Loihi 2 hardware: checks the script without a chip")
    p.add_argument("--json", action="store_true", help="one JSON object per utterance (file, label, logits, "
                   "readout, steps)")
    p.add_argument("--bundle", type=Path, default=BUNDLE, help="bundle folder (default: this script's folder)")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        parser().print_help(sys.stderr)
        return EXIT_INPUT
    args = parser().parse_args(argv)
    try:
        graph = load_graph(args.bundle)
        payloads = [load_payload(p, graph) for p in args.payloads]
        lava = import_lava(hardware=not args.sim)
        for path, payload in zip(args.payloads, payloads):
            result = run_utterance(graph, payload, lava)
            if args.json:
                print(json.dumps(dict(file=str(path), **result)), flush=True)
            else:
                print(f"{path.name}: {result['label']}  (logits "
                      + ", ".join(f"{c} {v:.4g}" for c, v in zip(graph["classes"], result["logits"]))
                      + f"; {result['steps']} steps, {'Lava CPU' if args.sim else 'Loihi 2'})", flush=True)
    except ScriptError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    return 0


if __name__ == "__main__":
    sys.exit(main())
