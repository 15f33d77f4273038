"""Classification metrics of speech emotion recognition: WA, UA, macro-F1 and the confusion matrix; the
eye-emotion report (WAR/UAR, per-class and per-lighting accuracy) is built from the same pieces.

* **WA** (weighted accuracy): plain accuracy, ``correct / total``; frequent classes weigh more.
* **UA** (unweighted accuracy): mean per-class recall over the classes that *have samples* in the evaluated
  set (sklearn's ``balanced_accuracy_score``). A class absent from the set has no recall; counting it as 0
  would punish the model for the split, counting it as 1 would reward it, so it is left out.
* **macro-F1**: mean per-class F1 over the classes that occur in the labels *or* in the predictions
  (sklearn's default label set). A class that is predicted but never true has precision 0 and F1 0 (the
  false alarms count); a class neither true nor predicted is left out.

The confusion matrix is ``[true, predicted]`` counts over *all* classes (absent ones give zero rows).
An empty evaluation set gives NaN scores, never a division error.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


def confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int], num_classes: int) -> np.ndarray:
    """``[num_classes, num_classes]`` int64 counts, rows = true class, columns = predicted class."""
    t = np.asarray(y_true, dtype=np.int64).reshape(-1)
    p = np.asarray(y_pred, dtype=np.int64).reshape(-1)
    if t.shape != p.shape:
        raise ValueError(f"{t.size} labels but {p.size} predictions")
    if t.size and (t.min() < 0 or p.min() < 0 or t.max() >= num_classes or p.max() >= num_classes):
        raise ValueError(f"class index outside 0..{num_classes - 1}")
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (t, p), 1)
    return cm


@dataclass
class ClassificationMetrics:
    """Scores of one evaluation; all fields are plain Python types (JSON- and checkpoint-safe)."""

    wa: float
    ua: float
    macro_f1: float
    confusion: list[list[int]]
    classes: list[str]
    recall: list[float | None] = field(default_factory=list)  # per class; None: no samples of that class
    precision: list[float | None] = field(default_factory=list)  # per class; None: never predicted
    f1: list[float | None] = field(default_factory=list)  # per class; None: neither true nor predicted
    count: int = 0

    @property
    def support(self) -> list[int]:
        return [int(sum(row)) for row in self.confusion]

    def to_dict(self) -> dict:
        return {"wa": self.wa, "ua": self.ua, "macro_f1": self.macro_f1, "count": self.count,
                "classes": list(self.classes), "confusion": [list(r) for r in self.confusion],
                "recall": list(self.recall), "precision": list(self.precision), "f1": list(self.f1)}

    @classmethod
    def from_dict(cls, d: dict) -> "ClassificationMetrics":
        return cls(wa=d["wa"], ua=d["ua"], macro_f1=d["macro_f1"], confusion=d["confusion"], classes=d["classes"],
                   recall=d.get("recall", []), precision=d.get("precision", []), f1=d.get("f1", []),
                   count=d.get("count", int(np.sum(d["confusion"]))))


def metrics_from_confusion(cm: np.ndarray, classes: Sequence[str] | None = None) -> ClassificationMetrics:
    cm = np.asarray(cm, dtype=np.int64)
    k = cm.shape[0]
    names = list(classes) if classes is not None else [str(i) for i in range(k)]
    if cm.shape != (k, k) or len(names) != k:
        raise ValueError(f"confusion matrix {cm.shape} does not match {len(names)} classes")
    total = int(cm.sum())
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(1).astype(np.float64)  # true counts
    predicted = cm.sum(0).astype(np.float64)
    recall = [float(tp[i] / support[i]) if support[i] else None for i in range(k)]
    precision = [float(tp[i] / predicted[i]) if predicted[i] else None for i in range(k)]
    f1: list[float | None] = []
    for i in range(k):
        if not support[i] and not predicted[i]:
            f1.append(None)
        else:  # 2 tp / (2 tp + fp + fn); 0 when tp = 0
            f1.append(float(2 * tp[i] / (support[i] + predicted[i])))
    present_recall = [r for r in recall if r is not None]
    present_f1 = [f for f in f1 if f is not None]
    return ClassificationMetrics(
        wa=float(tp.sum() / total) if total else math.nan,
        ua=float(np.mean(present_recall)) if present_recall else math.nan,
        macro_f1=float(np.mean(present_f1)) if present_f1 else math.nan,
        confusion=cm.tolist(), classes=names, recall=recall, precision=precision, f1=f1, count=total,
    )


def compute_metrics(y_true: Sequence[int], y_pred: Sequence[int], classes: Sequence[str] | int) -> ClassificationMetrics:
    """WA, UA, macro-F1 and the confusion matrix of integer predictions (``classes``: names or a count)."""
    names = [str(i) for i in range(classes)] if isinstance(classes, int) else list(classes)
    return metrics_from_confusion(confusion_matrix(y_true, y_pred, len(names)), names)


def metrics_by_group(y_true: Sequence[int], y_pred: Sequence[int], groups: Sequence[str],
                     classes: Sequence[str] | int, order: Sequence[str] | None = None) -> dict[str, ClassificationMetrics]:
    """The metrics of each group of samples (e.g. each lighting condition of an eye data set), in ``order``
    (groups absent from the samples are left out) or sorted."""
    t, p, g = np.asarray(y_true), np.asarray(y_pred), np.asarray(groups).astype(str)
    if not (t.shape == p.shape == g.shape):
        raise ValueError(f"{t.size} labels, {p.size} predictions, {g.size} group names")
    names = [x for x in order if x in set(g)] if order is not None else sorted(set(g))
    return {name: compute_metrics(t[g == name], p[g == name], classes) for name in names}


def eye_emotion_metrics(y_true: Sequence[int], y_pred: Sequence[int], classes: Sequence[str],
                        lighting: Sequence[str], lighting_order: Sequence[str] | None = None) -> dict:
    """What the SEE authors report (Zhang et al. 2023): WAR (= WA, accuracy), UAR (= UA, mean per-class
    recall), per-class accuracy (recall of each class) and accuracy per lighting condition; plus the
    confusion matrix. Plain JSON types."""
    overall = compute_metrics(y_true, y_pred, classes)
    by_lighting = metrics_by_group(y_true, y_pred, lighting, classes, lighting_order)
    return {
        "war": overall.wa, "uar": overall.ua, "count": overall.count,
        "per_class_accuracy": dict(zip(overall.classes, overall.recall)),
        "per_lighting": {name: {"war": m.wa, "uar": m.ua, "count": m.count} for name, m in by_lighting.items()},
        "classes": list(overall.classes), "confusion": overall.confusion,
    }


def chance_levels(train_labels: Sequence[int], eval_labels: Sequence[int], num_classes: int) -> dict[str, float]:
    """What guessing scores on ``eval_labels``: WA of always predicting the most frequent *training* class,
    UA of any constant (or uniformly random) prediction = 1 / classes present in the evaluated set."""
    ev = np.asarray(eval_labels, dtype=np.int64)
    if ev.size == 0:
        return {"wa": math.nan, "ua": math.nan}
    tr = np.asarray(train_labels, dtype=np.int64)
    majority = int(np.bincount(tr, minlength=num_classes).argmax()) if tr.size else int(np.bincount(ev).argmax())
    return {"wa": float(np.mean(ev == majority)), "ua": 1.0 / len(np.unique(ev))}


def _pct(x: float | None) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}"


def confusion_table(m: ClassificationMetrics, title: str | None = None):
    """A rich Table: counts ``[true, predicted]`` with per-class recall/support and the summary scores in the
    caption. The diagonal is bold green; absent classes show '-' recall."""
    from rich.table import Table

    caption = f"WA {_pct(m.wa)} %  UA {_pct(m.ua)} %  macro-F1 {_pct(m.macro_f1)} %  (n={m.count})"
    table = Table(title=title, caption=caption, title_justify="left", caption_justify="left",
                  min_width=max(len(title or ""), len(caption)) + 2)
    table.add_column("true \\ pred", no_wrap=True)
    for name in m.classes:
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("recall %", justify="right", no_wrap=True)
    table.add_column("n", justify="right", no_wrap=True)
    for i, name in enumerate(m.classes):
        row = m.confusion[i]
        cells = [f"[bold green]{v}[/]" if i == j else (str(v) if v else "[dim]0[/]") for j, v in enumerate(row)]
        recall = m.recall[i] if i < len(m.recall) else None
        table.add_row(name, *cells, _pct(recall), str(sum(row)))
    return table
