"""Reading a deployment bundle and running its host part.

The host part runs from the bundle alone: ``host.onnx`` (front end if fbank, LayerNorm, tanh, graded-payload
quantization, frame repetition) in onnxruntime; the deploy stage never needs the training code or the
checkpoint to run a bundle. Every file is checked against the manifest's sha256 before use.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ptsnn.chip.ir import ChipGraph, IRError
from ptsnn.errors import InputError


@dataclass
class Bundle:
    path: Path
    manifest: dict
    graph: ChipGraph

    @property
    def classes(self) -> list[str]:
        from ptsnn.deploy.readout import readout_size

        return list(self.manifest.get("classes") or [str(i) for i in range(readout_size(self.graph))])

    @property
    def flush_steps(self) -> int:
        return int(self.graph.flush_steps)

    def chip_steps(self, payload_steps: int) -> int:
        return payload_steps + self.flush_steps


def load_bundle(path: str | Path, verify_hashes: bool = True) -> Bundle:
    path = Path(path)
    manifest_path = path / "manifest.json"
    if not manifest_path.is_file():
        raise InputError(f"{path}: not a ptsnn bundle (no manifest.json)")
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"{manifest_path}: not valid JSON ({exc.msg})") from None
    if manifest.get("format") != "ptsnn-bundle":
        raise InputError(f"{manifest_path}: not a ptsnn bundle manifest")
    if verify_hashes:
        for rel, digest in manifest.get("files", {}).items():
            f = path / rel
            if not f.is_file():
                raise InputError(f"{path}: {rel} listed in the manifest is missing")
            if hashlib.sha256(f.read_bytes()).hexdigest() != digest:
                raise InputError(f"{path}: {rel} does not match its sha256 in the manifest (modified or damaged)")
    try:
        graph = ChipGraph.from_dir(path)
    except (IRError, KeyError, OSError) as exc:
        raise InputError(f"{path}: chip graph unreadable ({exc})") from None
    return Bundle(path, manifest, graph)


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

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1  # deterministic and small; the chip part dominates anyway
        self.session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.takes_audio = self.input_name == "wave"
        self.feature_dim = bundle.graph.inputs[0].size
        meta = self.session.get_modelmeta().custom_metadata_map
        self.min_samples = int(meta.get("ptsnn.min_samples", 1))  # shorter audio is zero-padded, as in training

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.direct is not None:
            return self.direct(x)
        x = np.asarray(x, np.float32)
        if not self.takes_audio and (x.ndim != 2 or x.shape[1] != self.feature_dim):
            raise InputError(f"features of shape {x.shape}, expected [frames, {self.feature_dim}]")
        if self.takes_audio and x.shape[-1] < self.min_samples:
            x = np.pad(x, (0, self.min_samples - x.shape[-1]))
        (payload,) = self.session.run(["payload"], {self.input_name: x[None]})
        return np.rint(payload[0]).astype(np.int64)


def load_input(path: str | Path, bundle: Bundle, host: HostRunner) -> np.ndarray:
    """An audio file (fbank bundles) or a ``.npy`` feature file -> payload ``[steps, F]``."""
    path = Path(path)
    if path.suffix == ".npy":
        if host.takes_audio:
            raise InputError(f"{path}: this bundle takes audio (its host part starts with the fbank front end)")
        if not path.is_file():
            raise InputError(f"{path}: no such file")
        feats = np.load(path, allow_pickle=False)
        if not np.isfinite(feats).all():
            raise InputError(f"{path}: features contain NaN or Inf")
        return host(feats)
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
