"""Figures for test results: ROC and precision-recall curves, confusion matrices, feature PCA.

Curves and scores come from scikit-learn, so every number in a legend equals the one in
``results.json``. Figures are built with matplotlib's object API (``Figure``, not ``pyplot``):
nothing opens a window, no global backend is switched under the caller (a notebook keeps its
own), and a figure is freed as soon as it is saved.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from sklearn.decomposition import PCA
from sklearn.metrics import (
    ConfusionMatrixDisplay,
    average_precision_score,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

from deepinsight import CLASS_NAMES, LABEL_FAKE, LABEL_REAL
from deepinsight.errors import DeepInsightError

# One test curve of one run: (legend name, labels with 1 = fake, scores = P(fake)).
Curve = tuple[str, Sequence[int] | np.ndarray, Sequence[float] | np.ndarray]

ROC_CURVE_FILENAME = "roc_curve.png"
PR_CURVE_FILENAME = "pr_curve.png"
CONFUSION_MATRIX_FILENAME = "confusion_matrix.png"

_DPI = 120


def _binary_inputs(labels, scores, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Labels and scores as arrays, or one clear error if a curve cannot be drawn from them."""
    y = np.asarray(labels).astype(int).ravel()
    s = np.asarray(scores, dtype=float).ravel()
    if y.shape != s.shape:
        raise DeepInsightError(f"{what}: {y.size} labels but {s.size} scores")
    if not set(np.unique(y)) <= {LABEL_REAL, LABEL_FAKE}:
        raise DeepInsightError(f"{what}: labels must be 0 (real) or 1 (fake)")
    if np.unique(y).size < 2:
        raise DeepInsightError(f"{what}: needs both real and fake images, got only one class")
    return y, s


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=_DPI)
    return path


def _roc_axes(title: str):
    fig = Figure(figsize=(5.5, 5), layout="constrained")
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="_chance")
    ax.set(xlabel="False positive rate (real called fake)", ylabel="True positive rate (fake)")
    ax.set(xlim=(0, 1), ylim=(0, 1.01), title=title)
    return fig, ax


def _pr_axes(title: str):
    fig = Figure(figsize=(5.5, 5), layout="constrained")
    ax = fig.subplots()
    ax.set(xlabel="Recall (fake)", ylabel="Precision (fake)", xlim=(0, 1), ylim=(0, 1.01))
    ax.set_title(title)
    return fig, ax


def _legend_labels(ax) -> list[str]:
    # Labels starting with "_" (the chance diagonal) are hidden by matplotlib's legend too.
    return [line.get_label() for line in ax.get_lines() if not line.get_label().startswith("_")]


def save_roc_curves(
    curves: Sequence[Curve], path: str | Path, title: str = "ROC curves"
) -> list[str]:
    """Draw one ROC curve per run in one figure; returns the legend labels (one per curve).

    Each legend entry names the run and its AUROC (``roc_auc_score``).
    """
    if not curves:
        raise DeepInsightError("no curves to draw: every run lacks test predictions")
    fig, ax = _roc_axes(title)
    for name, labels, scores in curves:
        y, s = _binary_inputs(labels, scores, f"ROC curve of '{name}'")
        fpr, tpr, _ = roc_curve(y, s)
        ax.plot(fpr, tpr, linewidth=1.5, label=f"{name} (AUROC = {roc_auc_score(y, s):.4f})")
    ax.legend(loc="lower right", fontsize="small")
    _save(fig, path)
    return _legend_labels(ax)


def save_pr_curves(
    curves: Sequence[Curve], path: str | Path, title: str = "Precision-recall curves"
) -> list[str]:
    """Draw one precision-recall curve per run (fake = positive); returns the legend labels.

    Each legend entry names the run and its average precision (``average_precision_score``).
    """
    if not curves:
        raise DeepInsightError("no curves to draw: every run lacks test predictions")
    fig, ax = _pr_axes(title)
    for name, labels, scores in curves:
        y, s = _binary_inputs(labels, scores, f"PR curve of '{name}'")
        precision, recall, _ = precision_recall_curve(y, s)
        # A step plot is the curve AP summarises (AP is a step-wise sum, not a trapezoid).
        ax.step(
            recall,
            precision,
            where="post",
            linewidth=1.5,
            label=f"{name} (AP = {average_precision_score(y, s):.4f})",
        )
    ax.legend(loc="lower left", fontsize="small")
    _save(fig, path)
    return _legend_labels(ax)


def save_roc_curve(labels, scores, path: str | Path, title: str = "ROC curve (test)") -> Path:
    """Save the ROC curve of one run's test predictions (label 1 = fake, score = P(fake))."""
    save_roc_curves([("test", labels, scores)], path, title=title)
    return Path(path)


def save_pr_curve(
    labels, scores, path: str | Path, title: str = "Precision-recall curve (test)"
) -> Path:
    """Save the precision-recall curve of one run's test predictions (fake = positive)."""
    save_pr_curves([("test", labels, scores)], path, title=title)
    return Path(path)


def save_confusion_matrix(
    matrix,
    path: str | Path,
    class_names: Sequence[str] = CLASS_NAMES,
    title: str = "Confusion matrix (test)",
) -> Path:
    """Save a confusion matrix (rows = true label, columns = predicted, as scikit-learn)."""
    counts = np.asarray(matrix)
    if counts.shape != (len(class_names), len(class_names)):
        raise DeepInsightError(
            f"confusion matrix must be {len(class_names)}x{len(class_names)}, got {counts.shape}"
        )
    fig = Figure(figsize=(4.5, 4), layout="constrained")
    ax = fig.subplots()
    display = ConfusionMatrixDisplay(confusion_matrix=counts, display_labels=list(class_names))
    display.plot(ax=ax, cmap="Blues", colorbar=False, values_format="d")
    ax.set_title(title)
    return _save(fig, path)


def save_embedding_pca(
    features, labels, path: str | Path, title: str = "Test features, PCA"
) -> dict:
    """Scatter the first two principal components of ``features``, coloured real/fake.

    The seed study used this plot to show that learned features separate real from fake.
    Returns ``{"explained_variance_ratio": [pc1, pc2]}``.
    """
    x = np.asarray(features, dtype=float)
    y = np.asarray(labels).astype(int).ravel()
    if x.ndim != 2 or x.shape[0] != y.size:
        raise DeepInsightError(f"features must be (n, d) with n = {y.size} labels, got {x.shape}")
    if x.shape[0] < 2 or x.shape[1] < 2:
        raise DeepInsightError(f"PCA needs at least 2 samples and 2 features, got {x.shape}")
    pca = PCA(n_components=2, random_state=0)
    points = pca.fit_transform(x)

    fig = Figure(figsize=(5.5, 5), layout="constrained")
    ax = fig.subplots()
    for label, colour in ((LABEL_REAL, "tab:blue"), (LABEL_FAKE, "tab:red")):
        mask = y == label
        ax.scatter(
            points[mask, 0],
            points[mask, 1],
            s=6,
            alpha=0.6,
            color=colour,
            label=f"{CLASS_NAMES[label]} ({int(mask.sum())})",
        )
    ratios = [float(r) for r in pca.explained_variance_ratio_]
    ax.set(xlabel=f"PC1 ({ratios[0]:.1%} of variance)", ylabel=f"PC2 ({ratios[1]:.1%})")
    ax.set_title(title)
    ax.legend(loc="best", markerscale=2)
    _save(fig, path)
    return {"explained_variance_ratio": ratios}


def write_test_plots(
    run_dir: str | Path, labels, scores, confusion_matrix, title: str
) -> list[Path]:
    """Write a run's test figures (ROC, precision-recall, confusion matrix) into ``run_dir``.

    ``labels``/``scores`` are the test predictions (1 = fake, P(fake)); ``confusion_matrix`` is
    results.json's ``test.confusion_matrix``; ``title`` (e.g. the experiment name) heads each plot.
    Returns the paths written, ready to log to W&B.
    """
    run_dir = Path(run_dir)
    return [
        save_roc_curve(labels, scores, run_dir / ROC_CURVE_FILENAME, title=f"{title}: ROC (test)"),
        save_pr_curve(labels, scores, run_dir / PR_CURVE_FILENAME, title=f"{title}: PR (test)"),
        save_confusion_matrix(
            confusion_matrix,
            run_dir / CONFUSION_MATRIX_FILENAME,
            title=f"{title}: confusion matrix (test)",
        ),
    ]
