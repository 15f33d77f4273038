"""The conversion pipeline and its deployment bundle.

checkpoint --load (weights_only)--> model --quantize--> chip IR --calibrate--> design rules + cores
--writers--> bundle/ (atomic: built in a temporary folder, moved into place only when complete)

Bundle layout (every file listed with its sha256 in ``manifest.json``)::

    manifest.json            versions, source checkpoint hash, profile, partition, layer table, files,
                             scores (the checkpoint's fitted score temperature, when it has one)
    chip_graph.json/.h5      the whole chip IR (what netx cannot express included)
    netx/chip_prefix.net     the netx-expressible chain (if --emit netx)
    host.onnx                host feature path (if --emit onnx)
    model.nir                spiking graph as NIR (if --emit nir)
    model.consumer.nir       the same, delay-free, for norse / snnTorch (if --emit nir; LIF graphs)
    conversion_report.json/.md
    run_loihi2.py            Loihi2HwCfg run script (loihi2 targets; needs Intel's lava-loihi)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ptsnn.batching import pad_batch
from ptsnn.convert import design_rules
from ptsnn.convert.calibration import max_synaptic_input, quantization_error, state_overflows
from ptsnn.errors import InputError
from ptsnn.convert.writers import EMIT_FORMATS, WRITERS, BundleContext
from ptsnn.fileio import atomic_output, atomic_write_text, sha256_file, signals_as_exceptions

BUNDLE_FORMAT_VERSION = 1


@dataclass
class ConversionResult:
    out_dir: Path
    manifest: dict
    report: dict
    violations: list = field(default_factory=list)


def load_calibration(spec: str | Path | None, model, frontend_spec: dict) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``--calib``: anything :func:`ptsnn.frontend.sources.load_utterances` reads (``synthetic``, a folder of
    audio or .npy features, an .npz), as a padded float batch and its lengths."""
    if spec is None:
        return None
    from ptsnn.frontend.sources import load_utterances

    utts = load_utterances(spec, frontend_spec, limit=64, feature_dim=model.cfg.input_dim, what="--calib")
    batch, lengths = pad_batch(utts.features, dtype=np.float32)
    return torch.as_tensor(batch), torch.as_tensor(lengths)


def convert_checkpoint(checkpoint: str | Path, profile, out_dir: str | Path, emit=EMIT_FORMATS,
                       calib: str | Path | None = None, progress=None) -> ConversionResult:
    """Run the whole conversion. Raises PtsnnError subclasses for user problems; leaves nothing behind then.
    Dispatches on the checkpoint's ``model_kind`` (PTS-SNN, or TTFS: :func:`convert_ttfs_checkpoint`)."""
    from ptsnn.train.checkpoint import load_model
    from ptsnn.train.ttfs_checkpoint import peek_kind

    step = progress or (lambda msg: None)
    checkpoint, out_dir = Path(checkpoint), Path(out_dir)
    if peek_kind(checkpoint) == "ttfs":
        if calib is not None:
            raise InputError(f"--calib: {checkpoint.name} is a TTFS checkpoint; its windows were calibrated "
                             "in training and are stored in it")
        return convert_ttfs_checkpoint(checkpoint, profile, out_dir, emit, step)
    step("loading checkpoint (weights_only)")
    model, ckpt = load_model(checkpoint)
    was_qat = model.quantized
    if not was_qat:
        step("quantizing (power-of-two scale per population)")
        model.quantize()
    graph = model.chip_graph(meta=dict(classes=ckpt.classes, frontend=ckpt.frontend,
                                                   config=ckpt.config.to_dict()))
    errors, peaks, overflows = None, None, None
    data = load_calibration(calib, model, ckpt.frontend)
    if data is not None:
        step("measuring float-vs-quantized error on calibration data")
        errors = quantization_error(model, *data)
        payload = errors.pop("payload")
        peaks = max_synaptic_input(graph, payload)
        overflows = state_overflows(graph, payload)
        errors.pop("steps")
    ctx = BundleContext(graph, profile, out_dir, source=checkpoint, quantization="qat" if was_qat else "post-training",
                        classes=ckpt.classes, frontend=ckpt.frontend, versions=ckpt.versions, emit=tuple(emit),
                        model=model, errors=errors, peaks=peaks, overflows=overflows)
    return write_bundle(ctx, step, scores=_scores(ckpt, was_qat))


def _scores(ckpt, was_qat: bool) -> dict | None:
    """The manifest's ``scores``: the temperature fitted at training time (None for older checkpoints). A QAT
    checkpoint's was fitted on the quantized model's logits, which are the chip's; a float one's on the float
    logits, close to the post-training-quantized chip's."""
    if not ckpt.calibration:
        return None
    return dict(ckpt.calibration, logits="quantized (QAT) model" if was_qat else "float model")


def convert_ttfs_checkpoint(checkpoint: Path, profile, out_dir: Path, emit, step) -> ConversionResult:
    """TTFS: twin + windows -> grid form (``quantize_ttfs``) -> chip IR (``IntegerTTFS.chip_graph``) -> bundle.

    No ``host.onnx``: the host part (clip encoding, clipping to ``[0, input_max]``, ``q0 = round(x K /
    input_max)``, the fixed timing spike pattern, the division of the readout by its scale) is a few array
    operations described by ``frontend`` and ``graph.meta`` in the bundle. No NIR: NIR has no fire-once
    neuron, timing input or voltage readout (skipped with a note in the manifest). No netx file: netx is a
    single-input layer chain and every TTFS layer has two inputs (its feed and the timing input)."""
    from ptsnn.train.ttfs_checkpoint import load_integer

    step("loading TTFS checkpoint (weights_only) and quantizing onto the time grid")
    grid, _, ckpt = load_integer(checkpoint)
    graph = grid.chip_graph()
    graph.meta.update(classes=ckpt.classes, frontend=ckpt.frontend, config=ckpt.config.to_dict(),
                      data_options=dict((ckpt.metrics or {}).get("data_options") or {}))  # report --data synthetic-eye
    skipped = [f for f in emit if f in ("nir", "onnx", "netx")]
    ctx = BundleContext(graph, profile, out_dir, source=checkpoint, quantization=f"ttfs grid K={grid.k}",
                        classes=ckpt.classes, frontend=ckpt.frontend, versions=ckpt.versions,
                        emit=tuple(f for f in emit if f not in skipped))
    ctx.products["notes"] = {f: _TTFS_SKIPPED[f] for f in skipped}
    return write_bundle(ctx, step)


_TTFS_SKIPPED = {
    "nir": "skipped: NIR has no fire-once neuron, timing input or voltage readout",
    "onnx": "skipped: the TTFS host part (clip encoding, input quantization, timing pattern) is in frontend/meta",
    "netx": "skipped: every TTFS layer has two inputs (feed + timing); netx expresses single-input chains only",
}


def convert_nir_graph(path: str | Path, profile, out_dir: str | Path, emit=EMIT_FORMATS, dt: float = 1e-3,
                      convention: str = "nir", progress=None) -> ConversionResult:
    """A NIR graph from another framework -> chip IR (discretised with ``dt``) -> the same bundle."""
    from ptsnn.convert.nir_import import import_nir

    step = progress or (lambda msg: None)
    step(f"importing NIR (dt = {dt} s)")
    graph = import_nir(path, dt=dt, convention=convention)
    ctx = BundleContext(graph, profile, Path(out_dir), source=Path(path), quantization=f"nir import, dt={dt}",
                        classes=[], frontend={}, versions={}, emit=tuple(f for f in emit if f != "onnx"))
    return write_bundle(ctx, step)


def write_bundle(ctx: BundleContext, step, scores: dict | None = None) -> ConversionResult:
    """Design rules, core allocation and every registered writer; the bundle appears only when complete
    (built in a temporary folder that any error, Ctrl-C or SIGTERM removes). ``scores``: the manifest's score
    temperature record (``_scores``)."""
    graph, profile = ctx.graph, ctx.profile
    step(f"design rules and core allocation for {profile.name}")
    ctx.allocation = design_rules.allocate_cores(graph, profile)
    ctx.violations = design_rules.check(graph, profile, max_synaptic_input=ctx.peaks, allocation=ctx.allocation,
                                        state_overflow=ctx.overflows)
    design_rules.enforce(ctx.violations, profile.name)
    out_dir = Path(ctx.directory)
    with signals_as_exceptions(), atomic_output(out_dir, directory=True) as tmp:
        ctx.directory = tmp
        for writer in WRITERS.values():
            if writer.applies(ctx):
                step(f"writing {writer.name}")
                writer.write(ctx)
        netx_layers = ctx.products.get("netx_layers", [])
        manifest = dict(
            format="ptsnn-bundle", format_version=BUNDLE_FORMAT_VERSION,
            versions=ctx.versions | _versions(),
            source=dict(file=ctx.source.name, sha256=sha256_file(ctx.source), quantization=ctx.quantization),
            profile=dict(name=profile.name, sha256=hashlib.sha256(profile.model_dump_json().encode()).hexdigest()),
            classes=ctx.classes, frontend=ctx.frontend,
            model_kind=graph.meta.get("model_kind", "ptssnn"),
            notes=ctx.products.get("notes", {}),
            partition=dict(host=_host_part(graph),
                           chip=[n.name for n in [*graph.populations, *graph.accumulators]]),
            netx=dict(file="netx/chip_prefix.net" if netx_layers else None, layers=netx_layers,
                      input_message_bits=graph.inputs[0].message_bits),
            timing=dict(flush_steps=graph.flush_steps, steps_per_frame=graph.inputs[0].steps_per_frame),
            layers=ctx.products["layers"],
            scores=scores,
            files={str(p.relative_to(tmp)): sha256_file(p) for p in sorted(tmp.rglob("*")) if p.is_file()},
        )
        atomic_write_text(tmp / "manifest.json", json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return ConversionResult(out_dir, manifest, ctx.products["report"], ctx.violations)


def _host_part(graph) -> list[str]:
    if graph.meta.get("model_kind") == "ttfs":
        return ["clip encoding (frontend)", "clip to [0, input_max] and q0 = round(x K / input_max)",
                "timing spike pattern (fixed)", "readout voltage >> 6, divided by its scale"]
    return ["frontend", "layernorm+tanh+quantize (graded payload)", "readout division"]


def _versions() -> dict:
    from importlib import metadata

    out = {}
    for dist in ("lava-nc", "lava-dl", "nir", "onnx"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out
