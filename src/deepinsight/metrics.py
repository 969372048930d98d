"""Classification metrics, from torchmetrics, in two forms.

* :class:`SplitMetrics`: the per-epoch metrics for one split, updated batch by batch and logged
  by the LightningModule (AUROC, AP, accuracy, fake-class precision/recall/F1, macro
  precision/recall/F1, confusion matrix).
* :func:`summarize_predictions`: the final numbers of ``results.json``, from the full set of
  test scores in float64. They are scikit-learn's (torchmetrics computes in float32, about 1e-8
  off), so they equal what anyone recomputes from ``test_predictions.csv``.

Everywhere an image is predicted fake iff ``score >= threshold``.
"""

from __future__ import annotations

from typing import Any

import torch
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    precision_recall_fscore_support,
    roc_auc_score,
)
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.classification import (
    BinaryAccuracy,
    BinaryAUROC,
    BinaryAveragePrecision,
    BinaryConfusionMatrix,
    BinaryF1Score,
    BinaryPrecision,
    BinaryPrecisionRecallCurve,
    BinaryRecall,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
)
from torchmetrics.functional.classification import binary_confusion_matrix

from deepinsight import CLASS_NAMES, LABEL_FAKE, LABEL_REAL

THRESHOLD_RULE = "max_f1_valid"


def hard_predictions(scores: torch.Tensor, threshold: float) -> torch.Tensor:
    """The project-wide decision rule: fake (1) iff score >= threshold."""
    return (scores >= threshold).long()


class SplitMetrics(nn.Module):
    """Per-epoch metrics of one split; score metrics see P(fake), label metrics see 0/1."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        # No per-batch input checks: each one (torch.unique of the targets, a range check of the
        # scores) is a GPU-to-CPU sync that stalls the training step, and the inputs are ours by
        # construction (sigmoid scores, 0/1 labels from the datasets). Checked on CUDA by
        # tests/test_overfit_and_gpu.py under torch.cuda.set_sync_debug_mode("error").
        fast = {"validate_args": False}
        self.scores = MetricCollection(
            {"auroc": BinaryAUROC(**fast), "ap": BinaryAveragePrecision(**fast)}, prefix=prefix
        )
        self.labels = MetricCollection(
            {
                "accuracy": BinaryAccuracy(**fast),
                "precision": BinaryPrecision(**fast),
                "recall": BinaryRecall(**fast),
                "f1": BinaryF1Score(**fast),
                "macro_precision": MulticlassPrecision(num_classes=2, average="macro", **fast),
                "macro_recall": MulticlassRecall(num_classes=2, average="macro", **fast),
                "macro_f1": MulticlassF1Score(num_classes=2, average="macro", **fast),
            },
            prefix=prefix,
        )
        self.confusion = BinaryConfusionMatrix(**fast)

    def update(self, scores: torch.Tensor, targets: torch.Tensor, threshold: float = 0.5) -> None:
        targets = targets.long()
        preds = hard_predictions(scores, threshold)
        self.scores.update(scores, targets)
        self.labels.update(preds, targets)
        self.confusion.update(preds, targets)

    def confusion_cells(self, prefix: str) -> dict[str, torch.Tensor]:
        """The confusion matrix as four loggable scalars; resets it for the next epoch."""
        (tn, fp), (fn, tp) = self.confusion.compute().float()
        self.confusion.reset()
        return {
            f"{prefix}cm_tn": tn,
            f"{prefix}cm_fp": fp,
            f"{prefix}cm_fn": fn,
            f"{prefix}cm_tp": tp,
        }


def f1_maximising_threshold(curve: BinaryPrecisionRecallCurve) -> float:
    """The score threshold with the highest F1 (fake = positive) on the data the curve saw.

    Ties go to the highest threshold (fewest images flagged as fake). Falls back to 0.5 when
    the data holds no fake image.
    """
    precision, recall, thresholds = curve.compute()
    thresholds = torch.atleast_1d(thresholds)
    f1 = 2 * precision * recall / (precision + recall).clamp_min(1e-12)
    # The last precision/recall pair has no threshold (recall 0); exclude it.
    f1 = f1[: len(thresholds)]
    if f1.numel() == 0 or float(f1.max()) == 0.0:
        # No fake image was seen (or none can be found): nothing to tune, keep the default.
        return 0.5
    best = torch.nonzero(f1 == f1.max()).flatten().max()
    return float(thresholds[best])


def _per_class(targets: torch.Tensor, preds: torch.Tensor) -> dict[str, dict[str, Any]]:
    """Precision/recall/F1/support per class: scikit-learn's, with its zero_division=0 rule.

    scikit-learn computes them in float64, so results.json equals what anyone recomputes from
    ``test_predictions.csv`` to the last digit (torchmetrics' own ratios are float32).
    """
    precision, recall, f1, support = precision_recall_fscore_support(
        targets.numpy(), preds.numpy(), labels=[LABEL_REAL, LABEL_FAKE], zero_division=0
    )
    return {
        name: {
            "precision": float(precision[label]),
            "recall": float(recall[label]),
            "f1": float(f1[label]),
            "support": int(support[label]),
        }
        for label, name in enumerate(CLASS_NAMES)
    }


def _ranking_metric(fn, targets: torch.Tensor, scores: torch.Tensor) -> float | None:
    """AUROC/AP are undefined with one class present: None (JSON null), never NaN."""
    if targets.unique().numel() < 2:
        return None
    return float(fn(targets.numpy(), scores.numpy()))


def summarize_predictions(
    targets: torch.Tensor, scores: torch.Tensor, threshold: float = 0.5
) -> dict[str, Any]:
    """The ``test`` block of results.json for one set of predictions (see docs/contracts.md)."""
    targets = torch.as_tensor(targets).long()
    scores = torch.as_tensor(scores, dtype=torch.float64)
    preds = hard_predictions(scores, threshold)
    matrix = binary_confusion_matrix(preds, targets)
    per_class = _per_class(targets, preds)
    return {
        "auroc": _ranking_metric(roc_auc_score, targets, scores),
        "ap": _ranking_metric(average_precision_score, targets, scores),
        "accuracy": float(accuracy_score(targets.numpy(), preds.numpy())),
        "precision": per_class["fake"]["precision"],
        "recall": per_class["fake"]["recall"],
        "f1": per_class["fake"]["f1"],
        "macro_precision": sum(c["precision"] for c in per_class.values()) / 2,
        "macro_recall": sum(c["recall"] for c in per_class.values()) / 2,
        "macro_f1": sum(c["f1"] for c in per_class.values()) / 2,
        "threshold": float(threshold),
        "n": int(targets.numel()),
        "per_class": per_class,
        "confusion_matrix": matrix.tolist(),
    }
