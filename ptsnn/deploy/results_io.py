"""Machine-readable results of ``ptsnn run``: JSON Lines (one object per utterance) or CSV (one row each).

Every row has the same fields, errors included (an error row has ``error`` set and the result fields null or
empty), so a script never has to guess whether a file was skipped:

``file, label, true_label, scores {class: p}, logits [..], steps, spike_counts {population: n},
temperature, calibrated, backend, error``

CSV flattens the dicts into ``score:<class>``, ``logit:<class>`` and ``spikes:<population>`` columns.
"""

from __future__ import annotations

import csv
import io
import json

from ptsnn.deploy.batch import RunRow

FORMATS = ("json", "csv")


def row_dict(row: RunRow, temperature: float, calibrated: bool, backend: str) -> dict:
    return dict(file=row.file, label=row.label, true_label=row.true_label, scores=row.scores, logits=row.logits,
                steps=row.steps, spike_counts=row.spike_counts, temperature=temperature, calibrated=calibrated,
                backend=backend, error=row.error)


class ResultWriter:
    """Formats rows one at a time (``line(row)``), for streaming to stdout or collecting for an atomic file."""

    def __init__(self, fmt: str, classes: list[str], populations: list[str], temperature: float,
                 calibrated: bool, backend: str):
        if fmt not in FORMATS:
            raise ValueError(f"format {fmt!r}")
        self.fmt, self.classes, self.populations = fmt, list(classes), list(populations)
        self.meta = (temperature, calibrated, backend)

    def header(self) -> str:
        if self.fmt == "json":
            return ""
        return self._csv_line(["file", "label", "true_label", "error", "steps", "temperature", "calibrated", "backend",
                               *[f"score:{c}" for c in self.classes], *[f"logit:{c}" for c in self.classes],
                               *[f"spikes:{p}" for p in self.populations]])

    def line(self, row: RunRow) -> str:
        if self.fmt == "json":
            return json.dumps(row_dict(row, *self.meta), allow_nan=False) + "\n"
        t, calibrated, backend = self.meta
        blank = [""] * len(self.classes)
        return self._csv_line([
            row.file, row.label or "", row.true_label or "", row.error or "", "" if row.steps is None else row.steps,
            repr(t), str(calibrated).lower(), backend,
            *([repr(row.scores[c]) for c in self.classes] if row.scores else blank),
            *([repr(v) for v in row.logits] if row.logits else blank),
            *([row.spike_counts.get(p, "") for p in self.populations] if row.spike_counts else [""] * len(self.populations)),
        ])

    @staticmethod
    def _csv_line(values) -> str:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow(values)
        return buf.getvalue()
