"""Many utterances through a bundle in batches of bounded size, one :class:`RunRow` per utterance.

Per batch: read each file through the host part (a file that cannot be read becomes an error row, the
others go on), run the readable ones on the backend together (one ``run(bundle, payloads)``), turn the
readout into logits and calibrated scores, and drop the spikes unless asked to keep them. Only one batch's
payloads and spikes are alive at a time, so memory is bounded by ``batch_size`` whatever the number of files.
A backend failure (e.g. a Lava run that dies) marks that batch's rows and the run goes on with the next batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from ptsnn.deploy import readout
from ptsnn.deploy.backends import Backend, chip_steps
from ptsnn.deploy.bundle_io import Bundle, load_input, logits_from_readout
from ptsnn.deploy.inputs import RunItem
from ptsnn.deploy.run import calibrated_softmax
from ptsnn.errors import PtsnnError

DEFAULT_BATCH_SIZE = 16


@dataclass
class RunRow:
    """One utterance's result (or its error). ``payload``/``spikes`` are kept only when asked for."""

    file: str
    label: str | None = None  # predicted
    true_label: str | None = None  # from a manifest
    scores: dict[str, float] | None = None  # softmax(logits / temperature)
    logits: list[float] | None = None
    steps: int | None = None  # chip steps, flush included
    spike_counts: dict[str, int] | None = None  # per population, over the window
    error: str | None = None
    exit_code: int = 0  # the PtsnnError's exit code (2: input, 3: backend)
    payload: np.ndarray | None = field(default=None, repr=False)
    spikes: dict[str, np.ndarray] | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def top_score(self) -> float | None:
        return max(self.scores.values()) if self.scores else None


def _load(item: RunItem, bundle: Bundle, host) -> tuple[np.ndarray | None, str | None, int]:
    if item.error is not None:
        return None, item.error, item.exit_code
    try:
        return load_input(item.path, bundle, host), None, 0
    except PtsnnError as exc:
        return None, str(exc), exc.exit_code
    except Exception as exc:  # noqa: BLE001  (numpy/onnxruntime on a hostile file: that file's row, not the batch)
        text = " ".join(str(exc).split())[:200] or type(exc).__name__
        return None, f"{item.path}: cannot be used ({type(exc).__name__}: {text})", 2


def _batches(items: list[RunItem], size: int) -> Iterator[list[RunItem]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def run_items(bundle: Bundle, items: Iterable[RunItem], backend: Backend, host, temperature: float, *,
              batch_size: int = DEFAULT_BATCH_SIZE, keep_spikes: bool = False,
              progress: Callable[[int, int], None] | None = None) -> Iterator[RunRow]:
    """Yield one row per item, in order, batch by batch (``progress(done, total)`` after each batch)."""
    items = list(items)
    done = 0
    for chunk in _batches(items, max(1, int(batch_size))):
        rows, payloads, slots = [], [], []
        for item in chunk:
            payload, error, code = _load(item, bundle, host)
            rows.append(RunRow(str(item.path), true_label=item.true_label, error=error, exit_code=code))
            if payload is not None:
                payloads.append(payload)
                slots.append(len(rows) - 1)
        if payloads:
            try:
                run = backend.run(bundle, payloads)
            except PtsnnError as exc:
                for i in slots:
                    rows[i].error, rows[i].exit_code = str(exc), exc.exit_code
            else:
                steps = chip_steps(bundle, payloads)
                totals = readout.totals_fast(bundle.graph, run, steps)  # accumulator, or NIR output spikes
                for j, i in enumerate(slots):
                    _fill(rows[i], bundle, totals[j], int(steps[j]), {k: v[j, : steps[j]] for k, v in run.spikes.items()},
                          temperature)
                    if keep_spikes:
                        rows[i].payload = payloads[j]
                    else:
                        rows[i].spikes = None
                del run
        done += len(chunk)
        if progress:
            progress(done, len(items))
        yield from rows


def _fill(row: RunRow, bundle: Bundle, total: np.ndarray, steps: int, spikes: dict[str, np.ndarray],
          temperature: float) -> None:
    logits = logits_from_readout(bundle, total, np.asarray(steps))
    probs = calibrated_softmax(logits, temperature)
    row.label = bundle.classes[int(np.argmax(logits))]
    row.scores = {c: float(p) for c, p in zip(bundle.classes, probs)}
    row.logits = [float(v) for v in logits]
    row.steps = steps
    row.spike_counts = {k: int(np.count_nonzero(v)) for k, v in spikes.items()}
    row.spikes = spikes
