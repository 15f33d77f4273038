"""The conversion pipeline and its deployment bundle.

checkpoint --load (weights_only)--> model --quantize--> chip IR --calibrate--> design rules + cores
--writers--> bundle/ (atomic: built in a temporary folder, moved into place only when complete)

Bundle layout (every file listed with its sha256 in ``manifest.json``)::

    manifest.json            versions, source checkpoint hash, profile, partition, layer table, files
    chip_graph.json/.h5      the whole chip IR (what netx cannot express included)
    netx/chip_prefix.net     the netx-expressible chain (if --emit netx)
    host.onnx                host feature path (if --emit onnx)
    model.nir                spiking graph as NIR (if --emit nir)
    conversion_report.json/.md
    run_loihi2.py            Loihi2HwCfg run script (loihi2 targets; needs Intel's lava-loihi)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ptsnn.convert import design_rules
from ptsnn.convert.calibration import max_synaptic_input, quantization_error
from ptsnn.convert.from_model import chip_graph_from_model
from ptsnn.chip.ir import ChipGraph
from ptsnn.convert.netx_writer import write_netx_chain
from ptsnn.errors import InputError

BUNDLE_FORMAT_VERSION = 1
EMIT_FORMATS = ("netx", "nir", "onnx")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass
class ConversionResult:
    out_dir: Path
    manifest: dict
    report: dict
    violations: list = field(default_factory=list)


def load_calibration(spec: str | Path | None, model, frontend_spec: dict) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``--calib``: an .npz (``features`` [B, T, F], optional ``lengths``), a folder of per-utterance .npy
    features ``[T, F]``, or ``synthetic`` (a few utterances of the built-in corpus through the checkpoint's
    fbank front end)."""
    if spec is None:
        return None
    dim = model.cfg.input_dim
    if str(spec) == "synthetic":
        from ptsnn.data.synthetic import SyntheticCorpusConfig, generate_utterance
        from ptsnn.frontend import build_frontend

        if frontend_spec.get("kind") != "fbank":
            raise InputError("--calib synthetic needs a checkpoint trained on the fbank front end; pass features")
        fe = build_frontend(frontend_spec)
        cfg = SyntheticCorpusConfig()
        feats = [fe(generate_utterance(cfg, spk, label, 0)).numpy() for spk in (0, 1) for label in cfg.classes]
    else:
        path = Path(spec)
        if path.is_dir():
            files = sorted(path.glob("*.npy"))
            if not files:
                raise InputError(f"--calib {path}: no .npy feature files")
            feats = [np.load(f, allow_pickle=False) for f in files[:64]]
        elif path.suffix == ".npz" and path.is_file():
            with np.load(path, allow_pickle=False) as z:
                if "features" not in z:
                    raise InputError(f"--calib {path}: no 'features' array")
                arr = z["features"]
                lengths = z["lengths"] if "lengths" in z else np.full(arr.shape[0], arr.shape[1])
            if arr.ndim != 3 or arr.shape[2] != dim:
                raise InputError(f"--calib {path}: features shape {arr.shape}, expected [B, T, {dim}]")
            return torch.as_tensor(arr, dtype=torch.float32), torch.as_tensor(lengths, dtype=torch.long)
        else:
            raise InputError(f"--calib {spec}: expected an .npz file, a folder of .npy files or 'synthetic'")
    for f in feats:
        if f.ndim != 2 or f.shape[1] != dim or not np.isfinite(f).all():
            raise InputError(f"--calib: feature array of shape {f.shape} (expected [T, {dim}], finite)")
    lengths = torch.tensor([len(f) for f in feats])
    batch = torch.zeros(len(feats), int(lengths.max()), dim)
    for i, f in enumerate(feats):
        batch[i, : len(f)] = torch.as_tensor(f)
    return batch, lengths


def layer_table(graph: ChipGraph, allocation, errors: dict | None, netx_layers: list[str]) -> list[dict]:
    alloc = {a.layer: a for a in allocation}
    rows = [dict(layer=i.name, type="input", neurons=i.size, synapses=0, weight_range="", exponent=None,
                 max_delay=0, cores=0, where="host", message_bits=i.message_bits) for i in graph.inputs]
    for node in [*graph.populations, *graph.accumulators]:
        edges = graph.incoming(node.name)
        w_min = min(int(e.weight.min()) for e in edges)
        w_max = max(int(e.weight.max()) for e in edges)
        kind = getattr(node, "role", "accumulator")
        row = dict(layer=node.name, type=kind, neurons=node.size, synapses=sum(e.count() for e in edges),
                   weight_range=f"{w_min}..{w_max}", exponent=node.scale_exponent,
                   max_delay=max(int(e.delay.max(initial=0)) for e in edges),
                   cores=alloc[node.name].cores if node.name in alloc else 0,
                   where="netx" if node.name in netx_layers else "lava")
        if errors and node.name in errors["populations"]:
            e = errors["populations"][node.name]
            row.update(smape=round(e["smape_counts"], 2), saturated_pct=round(e["saturated_pct"], 2),
                       silent_pct=round(e["silent_pct"], 2), rate=round(e["rate_quantized"], 4))
        rows.append(row)
    return rows


def convert_checkpoint(checkpoint: str | Path, profile, out_dir: str | Path, emit=EMIT_FORMATS,
                       calib: str | Path | None = None, progress=None) -> ConversionResult:
    """Run the whole conversion. Raises PtsnnError subclasses for user problems; leaves nothing behind then."""
    from ptsnn.train.checkpoint import load_model

    step = progress or (lambda msg: None)
    checkpoint, out_dir = Path(checkpoint), Path(out_dir)
    step("loading checkpoint (weights_only)")
    model, ckpt = load_model(checkpoint)
    was_qat = model.quantized
    if not was_qat:
        step("quantizing (power-of-two scale per population)")
        model.quantize()
    graph = chip_graph_from_model(model, meta=dict(classes=ckpt.classes, frontend=ckpt.frontend,
                                                   config=ckpt.config.to_dict()))
    errors, peaks = None, None
    data = load_calibration(calib, model, ckpt.frontend)
    if data is not None:
        step("measuring float-vs-quantized error on calibration data")
        errors = quantization_error(model, *data)
        peaks = max_synaptic_input(graph, errors.pop("payload"))
        errors.pop("steps")
    return write_bundle(graph, profile, out_dir, emit, source=checkpoint, quantization="qat" if was_qat else "post-training",
                        versions=ckpt.versions, classes=ckpt.classes, frontend=ckpt.frontend, errors=errors,
                        peaks=peaks, model=model, step=step)


def convert_nir_graph(path: str | Path, profile, out_dir: str | Path, emit=EMIT_FORMATS, dt: float = 1e-3,
                      convention: str = "nir", progress=None) -> ConversionResult:
    """A NIR graph from another framework -> chip IR (discretised with ``dt``) -> the same bundle."""
    from ptsnn.convert.nir_import import import_nir

    step = progress or (lambda msg: None)
    step(f"importing NIR (dt = {dt} s)")
    graph = import_nir(path, dt=dt, convention=convention)
    return write_bundle(graph, profile, Path(out_dir), tuple(f for f in emit if f != "onnx"), source=Path(path),
                        quantization=f"nir import, dt={dt}", versions={}, classes=[], frontend={}, errors=None,
                        peaks=None, model=None, step=step)


def write_bundle(graph: ChipGraph, profile, out_dir: Path, emit, *, source: Path, quantization: str, versions: dict,
                 classes: list, frontend: dict, errors: dict | None, peaks: dict | None, model, step) -> ConversionResult:
    """Design rules, core allocation and every writer; the bundle appears only when complete."""
    step(f"design rules and core allocation for {profile.name}")
    allocation = design_rules.allocate_cores(graph, profile)
    violations = design_rules.check(graph, profile, max_synaptic_input=peaks, allocation=allocation)
    design_rules.enforce(violations, profile.name)

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        step("writing chip IR")
        graph.to_dir(tmp)
        netx_layers: list[str] = []
        nir_report = None
        if "netx" in emit:
            step("writing netx HDF5 (netx-expressible chain)")
            written = write_netx_chain(graph, tmp / "netx" / "chip_prefix.net")
            netx_layers = written[1] if written else []
        if "onnx" in emit and model is not None:
            step("writing ONNX host part")
            from ptsnn.convert.onnx_host import export_host_onnx
            from ptsnn.frontend import build_frontend

            fe = build_frontend(frontend) if frontend.get("kind") == "fbank" else None
            export_host_onnx(model, tmp / "host.onnx", frontend=fe)
        if "nir" in emit:
            step("writing NIR")
            from ptsnn.convert.nir_export import export_nir

            nir_report = export_nir(graph, tmp / "model.nir")
            nir_report.path = "model.nir"  # relative: the bundle is built in a temporary folder
        if profile.profile.lava_target == "loihi2":
            from ptsnn.convert.loihi2_script import write_run_script

            write_run_script(tmp)  # Loihi2HwCfg run script for users with lava-loihi and a Loihi 2 system
        rows = layer_table(graph, allocation, errors, netx_layers)
        report = dict(profile=profile.name, checkpoint=source.name, quantization=quantization,
                      layers=rows, calibration=errors["readout"] if errors else None,
                      max_synaptic_input=peaks, total_cores=sum(a.cores for a in allocation),
                      nir=_plain_report(nir_report), violations=design_rules.violations_table(violations))
        (tmp / "conversion_report.json").write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")
        (tmp / "conversion_report.md").write_text(report_markdown(report))
        manifest = dict(
            format="ptsnn-bundle", format_version=BUNDLE_FORMAT_VERSION,
            versions=versions | _versions(),
            source=dict(file=source.name, sha256=sha256_file(source), quantization=quantization),
            profile=dict(name=profile.name, sha256=hashlib.sha256(profile.model_dump_json().encode()).hexdigest()),
            classes=classes, frontend=frontend,
            partition=dict(host=["frontend", "layernorm+tanh+quantize (graded payload)", "readout division"],
                           chip=[n.name for n in [*graph.populations, *graph.accumulators]]),
            netx=dict(file="netx/chip_prefix.net" if netx_layers else None, layers=netx_layers,
                      input_message_bits=graph.inputs[0].message_bits),
            timing=dict(flush_steps=graph.flush_steps, steps_per_frame=graph.inputs[0].steps_per_frame),
            layers=rows,
            files={str(p.relative_to(tmp)): sha256_file(p) for p in sorted(tmp.rglob("*")) if p.is_file()},
        )
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        _replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ConversionResult(out_dir, manifest, report, violations)


def _plain_report(rep):
    if rep is None:
        return None
    if hasattr(rep, "__dataclass_fields__"):
        from dataclasses import asdict

        return json.loads(json.dumps(asdict(rep), default=str))
    return json.loads(json.dumps(rep, default=str))


def _versions() -> dict:
    from importlib import metadata

    out = {}
    for dist in ("lava-nc", "lava-dl", "nir", "onnx"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def _replace_dir(tmp: Path, out_dir: Path) -> None:
    if out_dir.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old.", dir=out_dir.parent))
        os.replace(out_dir, old / "bundle")
        os.replace(tmp, out_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out_dir)


def report_markdown(report: dict) -> str:
    lines = [f"# Conversion report: {report['checkpoint']} -> {report['profile']}", "",
             f"Quantization: {report['quantization']}; cores: {report['total_cores']}", ""]
    cols = ["layer", "type", "neurons", "synapses", "weight_range", "exponent", "max_delay", "cores", "where",
            "smape", "saturated_pct", "silent_pct"]
    lines.append("| " + " | ".join(cols) + " |")
    lines.append("|" + "---|" * len(cols))
    for row in report["layers"]:
        lines.append("| " + " | ".join("" if row.get(c) is None else str(row.get(c)) for c in cols) + " |")
    if report.get("calibration"):
        c = report["calibration"]
        lines += ["", f"Readout: logit SMAPE {c['smape_logits']:.2f} %, float/quantized prediction agreement "
                      f"{c['prediction_agreement_pct']:.1f} %"]
    else:
        lines += ["", "No calibration data (--calib): error and 24-bit overflow estimate not measured."]
    if report.get("nir"):
        lines += ["", f"NIR: {json.dumps(report['nir'], sort_keys=True)}"]
    return "\n".join(lines) + "\n"
