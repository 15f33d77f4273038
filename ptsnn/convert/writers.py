"""The converter's writers, as a registry (hls4ml's ``writer`` pattern): name -> object with one interface.

Every writer reads one :class:`BundleContext` (the chip IR, the profile, the model if there is one, what earlier
writers produced) and writes its files into the bundle folder under construction. ``--emit`` chooses among the
optional writers; the others always run (chip IR, conversion report) or run when their condition holds (the
Loihi 2 run script for loihi2 targets). The manifest, which hashes every file, is written last by
``ptsnn.convert.bundle``. Adding an output format: a class here with ``name``, ``optional``, ``applies`` and
``write``, and one entry in :data:`WRITERS`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ptsnn.chip.ir import ChipGraph
from ptsnn.fileio import atomic_write_text


@dataclass
class BundleContext:
    graph: ChipGraph
    profile: object  # ptsnn.hw_profiles.HardwareProfile
    directory: Path  # the bundle folder being written (a temporary folder until the bundle is complete)
    source: Path
    quantization: str
    classes: list
    frontend: dict
    versions: dict
    emit: tuple[str, ...]
    model: object | None = None  # the quantized PTSSNN, when converting a checkpoint
    errors: dict | None = None  # calibration: float-vs-quantized error per population
    peaks: dict | None = None  # calibration: largest |a_in| per population
    overflows: dict | None = None  # calibration: first 24-bit register overflow per population
    allocation: list = field(default_factory=list)
    violations: list = field(default_factory=list)
    products: dict = field(default_factory=dict)  # what writers hand to later writers (netx_layers, nir, ...)


class ChipIRWriter:
    name, optional = "chip_ir", False

    def applies(self, ctx: BundleContext) -> bool:
        return True

    def write(self, ctx: BundleContext) -> None:
        from ptsnn.chip.serialize import write_chip_graph

        write_chip_graph(ctx.graph, ctx.directory)


class NetxWriter:
    name, optional = "netx", True

    def applies(self, ctx: BundleContext) -> bool:
        return self.name in ctx.emit

    def write(self, ctx: BundleContext) -> None:
        from ptsnn.convert.netx_writer import write_netx_chain

        written = write_netx_chain(ctx.graph, ctx.directory / "netx" / "chip_prefix.net")
        ctx.products["netx_layers"] = written[1] if written else []


class OnnxHostWriter:
    name, optional = "onnx", True

    def applies(self, ctx: BundleContext) -> bool:
        return self.name in ctx.emit and ctx.model is not None

    def write(self, ctx: BundleContext) -> None:
        from ptsnn.convert.host_part import write_host_onnx

        # fbank or the SSL model embedded and checked in onnxruntime; features in otherwise (host_part.py)
        ctx.products["host_onnx"] = write_host_onnx(ctx.model, ctx.directory / "host.onnx", ctx.frontend)


class NirWriter:
    name, optional = "nir", True

    def applies(self, ctx: BundleContext) -> bool:
        return self.name in ctx.emit

    def write(self, ctx: BundleContext) -> None:
        from ptsnn.convert.nir_export import export_nir

        report = export_nir(ctx.graph, ctx.directory / "model.nir")
        report.path = "model.nir"  # relative: the bundle is built in a temporary folder
        from ptsnn.convert.nir_consumer import export_consumer_nir
        from ptsnn.errors import InputError

        try:  # delay-free shape that norse and snnTorch load and run (convert/nir_consumer.py)
            consumer = export_consumer_nir(ctx.graph, ctx.directory / "model.consumer.nir")
            consumer["path"] = "model.consumer.nir"
        except InputError as exc:
            consumer = dict(path=None, reason=str(exc))
        report.notes.append(f"consumer shape (norse/snnTorch): {json.dumps(consumer, sort_keys=True)}")
        ctx.products["nir"] = report


class Loihi2ScriptWriter:
    name, optional = "loihi2_script", False

    def applies(self, ctx: BundleContext) -> bool:
        return ctx.profile.profile.lava_target == "loihi2"

    def write(self, ctx: BundleContext) -> None:
        from ptsnn.convert.loihi2_script import write_run_script

        write_run_script(ctx.directory)  # Loihi2HwCfg run script for users with lava-loihi and a Loihi 2 system


class ConversionReportWriter:
    name, optional = "conversion_report", False

    def applies(self, ctx: BundleContext) -> bool:
        return True

    def write(self, ctx: BundleContext) -> None:
        from ptsnn.convert import design_rules
        from ptsnn.convert.report import layer_table, plain_report, report_markdown

        rows = layer_table(ctx.graph, ctx.allocation, ctx.errors, ctx.products.get("netx_layers", []))
        report = dict(profile=ctx.profile.name, checkpoint=ctx.source.name, quantization=ctx.quantization,
                      layers=rows, calibration=ctx.errors["readout"] if ctx.errors else None,
                      max_synaptic_input=ctx.peaks, total_cores=sum(a.cores for a in ctx.allocation),
                      nir=plain_report(ctx.products.get("nir")), host_onnx=ctx.products.get("host_onnx"),
                      violations=design_rules.violations_table(ctx.violations))
        atomic_write_text(ctx.directory / "conversion_report.json", json.dumps(report, indent=1, sort_keys=True) + "\n")
        atomic_write_text(ctx.directory / "conversion_report.md", report_markdown(report))
        ctx.products["report"] = report
        ctx.products["layers"] = rows


# in the order they run (later writers may read what earlier ones produced)
WRITERS: dict[str, object] = {w.name: w for w in (ChipIRWriter(), NetxWriter(), OnnxHostWriter(), NirWriter(),
                                                   Loihi2ScriptWriter(), ConversionReportWriter())}
EMIT_FORMATS: tuple[str, ...] = tuple(name for name, w in WRITERS.items() if w.optional)
