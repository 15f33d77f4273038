"""Report: per-layer spikes, synaptic operations, membrane updates, cores, energy and latency of a chip graph's
runs, for every hardware profile; the host part apart; JSON + Markdown + one self-contained HTML page + PNGs.

Reads the chip IR and the profiles only (``hw_profiles/*.toml`` hold every hardware number). See docs/report.md.

>>> from ptsnn.report import report_bundle, build_report
>>> report = report_bundle(bundle, payloads, names, ["loihi2", "cmos45nm"], estimate="paper")  # doctest: +SKIP
>>> report.write("out", ("json", "md", "html"))  # doctest: +SKIP
"""

from ptsnn.report.build import ESTIMATES, FORMATS, SCHEMA_VERSION, Report, build_report, report_bundle
from ptsnn.report.collect import ActivityCollector, collect_from_backend, collect_from_chip, collect_from_runs
from ptsnn.report.energy import native_energy, paper_estimate
from ptsnn.report.host import host_report
from ptsnn.report.metrics import (
    ActivationSparsity,
    ConnectionSparsity,
    Footprint,
    MembraneUpdates,
    ParameterCount,
    SynapticOperations,
    compute_metrics,
)

__all__ = [
    "ESTIMATES",
    "FORMATS",
    "SCHEMA_VERSION",
    "ActivationSparsity",
    "ActivityCollector",
    "ConnectionSparsity",
    "Footprint",
    "MembraneUpdates",
    "ParameterCount",
    "Report",
    "SynapticOperations",
    "build_report",
    "collect_from_backend",
    "collect_from_chip",
    "collect_from_runs",
    "compute_metrics",
    "host_report",
    "native_energy",
    "paper_estimate",
    "report_bundle",
]
