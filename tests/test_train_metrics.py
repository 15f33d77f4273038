"""WA / UA / macro-F1 / confusion matrix against hand-computed values, absent classes, empty sets."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from rich.console import Console

from ptsnn.train.metrics import (chance_levels, compute_metrics, confusion_matrix, confusion_table,
                                 metrics_from_confusion)


def test_hand_computed_three_classes():
    y_true = [0, 0, 0, 1, 1, 2]
    y_pred = [0, 0, 1, 1, 2, 2]
    m = compute_metrics(y_true, y_pred, ["a", "b", "c"])
    assert m.confusion == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert m.wa == pytest.approx(4 / 6)
    assert m.recall == pytest.approx([2 / 3, 1 / 2, 1.0])
    assert m.ua == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    assert m.precision == pytest.approx([1.0, 1 / 2, 1 / 2])
    # F1 = 2 tp / (2 tp + fp + fn): a 4/5, b 2/4, c 2/3
    assert m.f1 == pytest.approx([0.8, 0.5, 2 / 3])
    assert m.macro_f1 == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert m.count == 6 and m.support == [3, 2, 1]


def test_wa_and_ua_differ_on_imbalanced_data():
    # always predicting the majority class: WA = 0.9, UA = 1/2, F1(minority) = 0
    y_true = [0] * 9 + [1]
    m = compute_metrics(y_true, [0] * 10, 2)
    assert m.wa == pytest.approx(0.9)
    assert m.ua == pytest.approx(0.5)
    assert m.f1[1] == 0.0
    assert m.macro_f1 == pytest.approx((2 * 9 / (9 + 10) + 0.0) / 2)


def test_class_without_samples_is_left_out_of_ua_and_f1():
    # 4 classes, class 3 neither true nor predicted: its recall/F1 are None and do not count
    m = compute_metrics([0, 1, 2, 2], [0, 1, 2, 1], 4)
    assert m.recall[3] is None and m.f1[3] is None and m.precision[3] is None
    assert m.ua == pytest.approx((1 + 1 + 0.5) / 3)
    assert m.macro_f1 == pytest.approx((1.0 + 2 / 3 + 2 / 3) / 3)
    assert m.confusion[3] == [0, 0, 0, 0]


def test_predicted_but_absent_class_counts_zero_f1_not_recall():
    # class 2 has no samples but is predicted once: no recall, precision 0, F1 0 (false alarms count)
    m = compute_metrics([0, 0, 1, 1], [0, 2, 1, 1], 3)
    assert m.recall[2] is None
    assert m.precision[2] == 0.0 and m.f1[2] == 0.0
    assert m.ua == pytest.approx((0.5 + 1.0) / 2)
    assert m.macro_f1 == pytest.approx((2 / 3 + 1.0 + 0.0) / 3)


def test_matches_sklearn_on_random_predictions():
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    for _ in range(20):
        k = int(rng.integers(2, 7))
        t = rng.integers(0, k, size=int(rng.integers(5, 60)))
        p = np.where(rng.random(t.size) < 0.5, t, rng.integers(0, k, size=t.size))
        m = compute_metrics(t, p, k)
        assert m.wa == pytest.approx(sk.accuracy_score(t, p))
        assert m.ua == pytest.approx(sk.balanced_accuracy_score(t, p))
        assert m.macro_f1 == pytest.approx(sk.f1_score(t, p, average="macro"))
        assert np.array_equal(np.array(m.confusion), sk.confusion_matrix(t, p, labels=list(range(k))))


def test_empty_set_gives_nan_not_an_error():
    m = compute_metrics([], [], ["a", "b"])
    assert math.isnan(m.wa) and math.isnan(m.ua) and math.isnan(m.macro_f1)
    assert m.confusion == [[0, 0], [0, 0]] and m.count == 0


def test_confusion_matrix_checks_inputs():
    with pytest.raises(ValueError):
        confusion_matrix([0, 1], [0], 2)
    with pytest.raises(ValueError):
        confusion_matrix([0, 3], [0, 1], 3)
    with pytest.raises(ValueError):
        metrics_from_confusion(np.zeros((2, 2)), ["a", "b", "c"])


def test_round_trip_through_dict():
    m = compute_metrics([0, 1, 1], [0, 1, 0], ["x", "y"])
    again = type(m).from_dict(m.to_dict())
    assert again == m


def test_chance_levels():
    # majority training class is 0; it is 1/4 of the evaluated set; 2 classes present there
    c = chance_levels([0, 0, 0, 1], [0, 1, 1, 1], 3)
    assert c["wa"] == pytest.approx(0.25)
    assert c["ua"] == pytest.approx(0.5)
    assert math.isnan(chance_levels([0], [], 2)["ua"])


def test_confusion_table_renders_counts_and_scores():
    m = compute_metrics([0, 0, 1, 2], [0, 1, 1, 1], ["angry", "happy", "sad"])
    buf = io.StringIO()
    Console(file=buf, width=120, color_system=None).print(confusion_table(m, "valid"))
    text = buf.getvalue()
    assert "angry" in text and "sad" in text and "valid" in text
    assert "WA 50.0 %" in text and "UA 50.0 %" in text
    rows = {line.split()[1]: line for line in text.splitlines() if line.startswith("│ ")}
    # row 'sad': 0 0 1 (predicted happy), recall 0.0, n 1
    assert rows["sad"].replace("│", " ").split()[1:] == ["0", "1", "0", "0.0", "1"]
    assert rows["angry"].replace("│", " ").split()[1:] == ["1", "1", "0", "50.0", "2"]
