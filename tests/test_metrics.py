"""DeepInsight's numbers equal scikit-learn's on the same predictions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    precision_score,
    recall_score,
    roc_auc_score,
)
from torchmetrics.classification import BinaryPrecisionRecallCurve

from deepinsight.metrics import SplitMetrics, f1_maximising_threshold, summarize_predictions


def random_predictions(seed: int, n: int = 301):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    scores = np.clip(rng.normal(0.35 + 0.3 * labels, 0.2), 0, 1)
    return labels, scores


@pytest.mark.parametrize("threshold", [0.5, 0.37, 0.8])
@pytest.mark.parametrize("seed", [0, 1])
def test_summary_equals_sklearn(seed, threshold):
    labels, scores = random_predictions(seed)
    preds = (scores >= threshold).astype(int)
    got = summarize_predictions(labels, scores, threshold)
    assert got["auroc"] == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert got["ap"] == pytest.approx(average_precision_score(labels, scores), abs=1e-12)
    # The threshold metrics are scikit-learn's to the last bit, not just close.
    assert got["accuracy"] == accuracy_score(labels, preds)
    assert got["precision"] == precision_score(labels, preds)
    assert got["recall"] == recall_score(labels, preds)
    assert got["f1"] == f1_score(labels, preds)
    for key, average in (("macro_precision", 0), ("macro_recall", 1), ("macro_f1", 2)):
        assert got[key] == precision_recall_fscore_support(labels, preds, average="macro")[average]
    p, r, f, support = precision_recall_fscore_support(labels, preds, labels=[0, 1])
    for i, name in enumerate(("real", "fake")):
        assert got["per_class"][name]["precision"] == p[i]
        assert got["per_class"][name]["recall"] == r[i]
        assert got["per_class"][name]["f1"] == f[i]
        assert got["per_class"][name]["support"] == support[i]
    assert got["confusion_matrix"] == confusion_matrix(labels, preds, labels=[0, 1]).tolist()
    assert got["n"] == len(labels) and got["threshold"] == threshold


def test_zero_division_follows_sklearn():
    labels = np.array([0, 1, 0, 1])
    scores = np.array([0.1, 0.2, 0.3, 0.4])  # nothing reaches 0.5: no fake predicted
    got = summarize_predictions(labels, scores, 0.5)
    assert got["precision"] == precision_score(labels, scores >= 0.5, zero_division=0) == 0.0
    assert got["per_class"]["real"]["recall"] == 1.0


def test_one_class_leaves_ranking_metrics_undefined():
    got = summarize_predictions(np.array([1, 1, 1]), np.array([0.2, 0.7, 0.9]), 0.5)
    assert got["auroc"] is None and got["ap"] is None
    assert got["recall"] == pytest.approx(2 / 3)


def test_epoch_metrics_match_sklearn_over_batches():
    labels, scores = random_predictions(3, n=200)
    metrics = SplitMetrics("val/")
    for start in range(0, 200, 64):  # batch by batch, as in an epoch
        metrics.update(
            torch.tensor(scores[start : start + 64], dtype=torch.float32),
            torch.tensor(labels[start : start + 64]),
        )
    values = {**metrics.scores.compute(), **metrics.labels.compute()}
    preds = (scores >= 0.5).astype(int)
    assert float(values["val/auroc"]) == pytest.approx(roc_auc_score(labels, scores), abs=1e-5)
    assert float(values["val/f1"]) == pytest.approx(f1_score(labels, preds), abs=1e-5)
    macro = f1_score(labels, preds, average="macro")
    assert float(values["val/macro_f1"]) == pytest.approx(macro, abs=1e-5)
    cells = metrics.confusion_cells("val/")
    (tn, fp), (fn, tp) = confusion_matrix(labels, preds)
    assert [int(cells[f"val/cm_{k}"]) for k in ("tn", "fp", "fn", "tp")] == [tn, fp, fn, tp]


def test_threshold_maximises_f1():
    labels, scores = random_predictions(5, n=150)
    curve = BinaryPrecisionRecallCurve()
    curve.update(torch.tensor(scores), torch.tensor(labels))
    chosen = f1_maximising_threshold(curve)
    best = max(f1_score(labels, scores >= t) for t in np.unique(scores))
    assert f1_score(labels, scores >= chosen) == pytest.approx(best, abs=1e-9)
    assert chosen in set(scores.tolist())
