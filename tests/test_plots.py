"""Figures: valid PNGs, one legend entry per run with scikit-learn's numbers, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import average_precision_score, roc_auc_score

from deepinsight.analysis.plots import (
    save_confusion_matrix,
    save_embedding_pca,
    save_pr_curves,
    save_roc_curves,
    write_test_plots,
)
from deepinsight.errors import DeepInsightError


def _predictions(separation: float, n: int = 200, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = np.repeat([0, 1], n // 2)
    scores = 1 / (1 + np.exp(-(rng.normal(size=n) + separation * (2 * labels - 1))))
    return labels, scores


def _assert_png(path) -> None:
    with Image.open(path) as image:
        image.verify()
        assert image.format == "PNG"


def test_roc_and_pr_figures_have_one_legend_entry_per_run_with_sklearn_scores(tmp_path):
    curves = [(f"run{i}", *_predictions(sep, seed=i)) for i, sep in enumerate((0.5, 1.5, 3.0))]

    roc_labels = save_roc_curves(curves, tmp_path / "roc.png")
    pr_labels = save_pr_curves(curves, tmp_path / "pr.png")

    assert len(roc_labels) == len(pr_labels) == 3
    for (name, labels, scores), roc_label, pr_label in zip(
        curves, roc_labels, pr_labels, strict=True
    ):
        assert roc_label == f"{name} (AUROC = {roc_auc_score(labels, scores):.4f})"
        assert pr_label == f"{name} (AP = {average_precision_score(labels, scores):.4f})"
    _assert_png(tmp_path / "roc.png")
    _assert_png(tmp_path / "pr.png")


def test_curves_need_both_classes(tmp_path):
    with pytest.raises(DeepInsightError, match="only one class"):
        save_roc_curves([("r", [1, 1, 1], [0.2, 0.5, 0.9])], tmp_path / "roc.png")
    with pytest.raises(DeepInsightError, match="2 labels but 3 scores"):
        save_pr_curves([("r", [0, 1], [0.2, 0.5, 0.9])], tmp_path / "pr.png")


def test_confusion_matrix_rejects_wrong_shape(tmp_path):
    path = save_confusion_matrix([[5, 1], [2, 7]], tmp_path / "cm.png")
    _assert_png(path)
    with pytest.raises(DeepInsightError, match="2x2"):
        save_confusion_matrix([[5, 1, 0]], tmp_path / "bad.png")


def test_embedding_pca_returns_two_descending_variance_ratios(tmp_path):
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 50)
    features = rng.normal(size=(100, 8)) + 4.0 * labels[:, None]

    result = save_embedding_pca(features, labels, tmp_path / "pca.png")

    ratios = result["explained_variance_ratio"]
    assert len(ratios) == 2
    assert ratios[0] >= ratios[1] > 0
    # The class offset dominates, so PC1 carries most of the variance.
    assert ratios[0] > 0.5
    _assert_png(tmp_path / "pca.png")


def test_write_test_plots_writes_three_pngs_and_leaves_no_pyplot_figure_open(tmp_path):
    import matplotlib.pyplot as plt

    labels, scores = _predictions(2.0)
    paths = write_test_plots(tmp_path / "run", labels, scores, [[90, 10], [8, 92]], "demo")

    assert [p.name for p in paths] == ["roc_curve.png", "pr_curve.png", "confusion_matrix.png"]
    for path in paths:
        _assert_png(path)
    assert plt.get_fignums() == []
