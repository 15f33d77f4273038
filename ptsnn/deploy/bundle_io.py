"""Reading a deployment bundle and running its host part.

The host part runs from the bundle alone: ``host.onnx`` (front end if fbank, LayerNorm, tanh, graded-payload
quantization, frame repetition) in onnxruntime; the deploy stage never needs the training code or the
checkpoint to run a bundle. Every file is checked against the manifest's sha256 before use.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ptsnn.chip.ir import ChipGraph, IRError
from ptsnn.deploy.bundle_schema import (
    MANIFEST,
    MAX_MANIFEST_BYTES,
    Manifest,
    check_tree,
    parse_manifest,
    resolve_inside,
)
from ptsnn import safeio
from ptsnn.errors import InputError
from ptsnn.fileio import sha256_file
from ptsnn.formats.strict import to_builtins


@dataclass
class Bundle:
    path: Path
    manifest: dict  # the validated manifest (``spec``) as plain JSON data, for readers that want a dict
    graph: ChipGraph
    spec: Manifest | None = None

    @property
    def classes(self) -> list[str]:
        from ptsnn.deploy.readout import readout_size

        return list(self.manifest.get("classes") or [str(i) for i in range(readout_size(self.graph))])

    @property
    def flush_steps(self) -> int:
        return int(self.graph.flush_steps)

    def chip_steps(self, payload_steps: int) -> int:
        return payload_steps + self.flush_steps


REQUIRED_FILES = ("chip_graph.json", "chip_graph.h5")


def load_bundle(path: str | Path, verify_hashes: bool = True) -> Bundle:
    """Read and check a bundle folder; every problem is one :class:`InputError` line naming the file and field.

    Checks, in order: ``manifest.json`` (size, UTF-8, JSON object, :class:`Manifest` schema), every listed
    path (relative, inside the folder, no symlinks, no unlisted files), the sha256 of every file, the chip IR
    (its reader's errors mapped to one line) and the consistency of manifest and graph (class count =
    readout size, netx layers, flush steps bounded by the graph's own latency)."""
    path = Path(path)
    if not path.is_dir():
        raise InputError(f"{path}: not a ptsnn bundle (not a folder)")
    root = path.resolve()
    manifest_path = path / MANIFEST
    if manifest_path.is_symlink() or not manifest_path.is_file():
        raise InputError(f"{path}: not a ptsnn bundle (no manifest.json)")
    spec = parse_manifest(read_manifest_json(manifest_path), manifest_path)
    listed = set(spec.files)
    for name in REQUIRED_FILES:
        if name not in listed:
            raise InputError(f"{manifest_path}: files: {name} is not listed (every bundle has the chip IR)")
    if spec.netx.file is not None and spec.netx.file not in listed:
        raise InputError(f"{manifest_path}: netx.file: {spec.netx.file} is not listed in files")
    check_tree(root, listed)
    for rel, digest in spec.files.items():
        f = resolve_inside(root, rel)
        if not f.is_file():
            raise InputError(f"{path}: {rel} listed in the manifest is missing")
        if verify_hashes and sha256_file(f) != digest:
            raise InputError(f"{path}: {rel} does not match its sha256 in the manifest (modified or damaged)")
    graph = _read_graph(path)
    _check_consistency(spec, graph, manifest_path)
    return Bundle(path, to_builtins(spec), graph, spec)


def read_manifest_json(path: Path, expect_object: bool = False):
    """A bundle manifest as JSON: at most a manifest's size, then the one bounded JSON reader (UTF-8, no NaN
    literals, bounded nesting); one line naming the file otherwise."""
    size = path.stat().st_size
    if size > MAX_MANIFEST_BYTES:
        raise InputError(f"{path}: {size:,} bytes, more than a manifest can be ({MAX_MANIFEST_BYTES:,})")
    return safeio.read_json(path, "manifest", expect_object=expect_object)


def _read_graph(path: Path) -> ChipGraph:
    """The chip IR reader (``ptsnn.chip.ir``) behind the bundle boundary: whatever it raises on a damaged
    file becomes one line (its own :class:`IRError` messages, or the kind of error for anything else)."""
    where = path / "chip_graph.json"
    try:
        return ChipGraph.from_dir(path)
    except IRError as exc:  # its messages name the file already (the IR reader's own validation)
        msg = str(exc)
        raise InputError(msg if "chip_graph" in msg else f"{where}: {msg}") from None
    except RecursionError:
        raise InputError(f"{where}: nested too deeply") from None
    except MemoryError:
        raise InputError(f"{where}: declares arrays too large to load") from None
    except Exception as exc:  # noqa: BLE001 - a trust boundary: a malformed file must not become a traceback
        detail = " ".join(str(exc).split())[:200]
        raise InputError(f"{where}: unreadable chip graph ({type(exc).__name__}: {detail})") from None


def graph_latency(graph: ChipGraph) -> int:
    """Steps from the host input to the readout along the slowest path (1 + delay per synapse): the
    most flush steps a correct bundle can need."""
    lat = {i.name: 0 for i in graph.inputs}
    for node in [*graph.populations, *graph.accumulators]:
        lat[node.name] = max(lat[e.source] + 1 + int(e.max_delay) for e in graph.incoming(node.name))
    from ptsnn.deploy.readout import readout_name

    return lat[readout_name(graph)[0]] if graph.accumulators or graph.populations else 0


def _check_ttfs_consistency(spec: Manifest, graph: ChipGraph, where: Path) -> None:
    """A TTFS graph is read by voltage (``meta["readout"]``, docs/ttfs.md), not by an accumulator."""
    graph_file = where.parent / "chip_graph.json"
    readout = graph.meta.get("readout") if isinstance(graph.meta.get("readout"), dict) else {}
    pops = {p.name: p for p in graph.populations}
    if graph.meta.get("model_kind") != "ttfs" or readout.get("kind") != "voltage" or readout.get("population") not in pops:
        raise InputError(f"{graph_file}: meta.readout: a TTFS bundle needs a voltage readout naming a population")
    for i in graph.inputs:
        if not graph.outgoing(i.name):
            raise InputError(f"{graph_file}: inputs.{i.name}: connects to nothing")
    size = pops[readout["population"]].size
    if spec.classes and len(spec.classes) != size:
        raise InputError(f"{where}: classes: {len(spec.classes)} names for a readout of {size} neurons")
    if spec.timing.flush_steps != graph.flush_steps or graph.flush_steps != 0:
        raise InputError(f"{where}: timing.flush_steps: a TTFS inference is exactly meta.steps steps (flush 0)")


def _check_consistency(spec: Manifest, graph: ChipGraph, where: Path) -> None:
    if spec.model_kind == "ttfs":
        return _check_ttfs_consistency(spec, graph, where)
    if not graph.inputs or not (graph.accumulators or graph.populations):
        raise InputError(f"{where.parent / 'chip_graph.json'}: needs a host input and a readout")
    for i in graph.inputs:
        if not graph.outgoing(i.name):
            raise InputError(f"{where.parent / 'chip_graph.json'}: inputs.{i.name}: connects to nothing")
    from ptsnn.deploy.readout import readout_size

    readout = readout_size(graph)  # an accumulator, or (graphs imported from NIR) the output population
    if spec.classes and len(spec.classes) != readout:
        raise InputError(f"{where}: classes: {len(spec.classes)} names for a readout of {readout} neurons")
    if spec.timing.flush_steps != graph.flush_steps:
        raise InputError(f"{where}: timing.flush_steps: {spec.timing.flush_steps} but the chip graph says "
                         f"{graph.flush_steps}")
    latency = graph_latency(graph)
    if not 0 <= graph.flush_steps <= latency:
        raise InputError(f"{where.parent / 'chip_graph.json'}: flush_steps: {graph.flush_steps} outside 0..{latency} "
                         f"(the graph's longest input-to-readout latency)")
    pops = [p.name for p in graph.populations]
    if spec.netx.layers != pops[: len(spec.netx.layers)]:
        raise InputError(f"{where}: netx.layers: {spec.netx.layers} is not a leading chain of the chip graph's "
                         f"populations")
    if spec.netx.layers and spec.netx.file is None:
        raise InputError(f"{where}: netx.layers: listed without a netx.file")


class HostRunner:
    """``host.onnx`` in onnxruntime: waveform (fbank bundles) or features -> graded payloads ``[steps, F]``."""

    def __init__(self, bundle: Bundle):
        onnx_path = bundle.path / "host.onnx"
        self.direct = None
        if not onnx_path.is_file():
            from ptsnn.deploy.direct_input import DirectInput, has_no_host_part

            if not has_no_host_part(bundle):
                raise InputError(f"{bundle.path}: no host.onnx (convert with --emit onnx to run audio or features)")
            self.direct = DirectInput(bundle)  # NIR import: the chip input is given as .npy
            self.takes_audio, self.feature_dim, self.min_samples = False, self.direct.feature_dim, 1
            return
        import onnxruntime as ort

        self.path = onnx_path
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1  # deterministic and small; the chip part dominates anyway
        opts.log_severity_level = 4  # errors come back as exceptions (one line below), not as log spam
        try:
            self.session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - onnxruntime's own exception types; a trust boundary
            raise InputError(f"{onnx_path}: not a loadable ONNX model ({_first_line(exc)})") from None
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        out_names = [o.name for o in outputs]
        if len(inputs) != 1 or inputs[0].name not in ("wave", "features") or "payload" not in out_names \
                or not set(out_names) <= {"payload", "scaled"}:
            raise InputError(f"{onnx_path}: expected one input ('wave' or 'features') and the outputs 'payload' "
                             f"(and optionally 'scaled'), got {[i.name for i in inputs]} -> {out_names}")
        self.input_name = inputs[0].name
        self.takes_audio = self.input_name == "wave"
        self.feature_dim = bundle.graph.inputs[0].size
        self.levels = bundle.graph.inputs[0].levels
        meta = self.session.get_modelmeta().custom_metadata_map
        try:
            self.min_samples = int(meta.get("ptsnn.min_samples", 1))  # shorter audio is zero-padded, as in training
        except ValueError:
            raise InputError(f"{self.path}: metadata ptsnn.min_samples is not an integer") from None
        if not 1 <= self.min_samples <= 1 << 20:
            raise InputError(f"{self.path}: metadata ptsnn.min_samples {self.min_samples} outside 1..{1 << 20}")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.direct is not None:
            return self.direct(x)
        x = np.asarray(x, np.float32)
        if not self.takes_audio and (x.ndim != 2 or x.shape[1] != self.feature_dim):
            raise InputError(f"features of shape {x.shape}, expected [frames, {self.feature_dim}]")
        if self.takes_audio and x.shape[-1] < self.min_samples:
            x = np.pad(x, (0, self.min_samples - x.shape[-1]))
        try:
            (payload,) = self.session.run(["payload"], {self.input_name: x[None]})
        except Exception as exc:  # noqa: BLE001 - a damaged graph can fail only when it runs
            raise InputError(f"{self.path}: the host part failed to run ({_first_line(exc)})") from None
        payload = np.asarray(payload)
        if payload.ndim != 3 or payload.shape[0] != 1 or payload.shape[2] != self.feature_dim:
            raise InputError(f"{self.path}: host part returned shape {payload.shape}, expected "
                             f"[1, steps, {self.feature_dim}]")
        if not np.isfinite(payload).all() or np.abs(payload).max(initial=0) > self.levels:
            raise InputError(f"{self.path}: host part returned payloads outside -{self.levels}..{self.levels}")
        return np.rint(payload[0]).astype(np.int64)


def _first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:200]}"


def load_input(path: str | Path, bundle: Bundle, host: HostRunner) -> np.ndarray:
    """An audio file (fbank bundles) or a ``.npy`` feature file -> payload ``[steps, F]``."""
    path = Path(path)
    if path.suffix == ".npy":
        if host.takes_audio:
            raise InputError(f"{path}: this bundle takes audio (its host part starts with the fbank front end)")
        from ptsnn import safeio

        # bounded header-first read: no objects, no truncation, finite, 2-D (a chip-input .npy of a NIR bundle too)
        return host(safeio.load_npy(path, "features", kinds="biuf", ndim=2))
    if not host.takes_audio:
        from ptsnn.deploy.host_frontend import features_from_audio

        return host(features_from_audio(bundle, path))  # the recorded front end in PyTorch, or a clear error
    from ptsnn.data.audio import load_audio

    wave = load_audio(path, target_sr=16000)
    return host(wave)


def logits_from_readout(bundle: Bundle, totals: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """The host's last step: the Sigma readout divided by the scale and the number of steps."""
    from ptsnn.deploy.readout import scale

    return np.asarray(totals, np.float64) / (scale(bundle.graph) * np.asarray(steps, np.float64)[..., None])
