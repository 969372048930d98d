"""Figures of the robustness grid: one curve per perturbation, the JPEG x blur AUROC heatmap,
and the same curves overlaid for several runs (the report's view of a sweep).

Drawn with matplotlib's object API, like deepinsight.analysis.plots: no global backend switch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from deepinsight.evaluation.perturbations import GRID_KIND, PERTURBATIONS
from deepinsight.evaluation.robustness import parse_grid_level

HEATMAP_FILENAME = "robustness_jpeg_blur_heatmap.png"
METRIC_NAMES = {"auroc": "AUROC", "ap": "AP", "accuracy": "accuracy"}
_DPI = 120


def curve_filename(kind: str) -> str:
    return f"robustness_{kind}.png"


def _points(rows: Sequence[Mapping[str, Any]], kind: str, metric: str) -> tuple[list, list]:
    """(positions, values) of one curve, in the order of the kind's levels (mildest first)."""
    by_level = {float(r["level"]): r[metric] for r in rows if r["perturbation"] == kind}
    levels = [lv for lv in PERTURBATIONS[kind].levels if float(lv) in by_level]
    values = [np.nan if by_level[float(lv)] is None else by_level[float(lv)] for lv in levels]
    return levels, values


def save_robustness_curves(
    series: Mapping[str, Sequence[Mapping[str, Any]]],
    kind: str,
    path: Path,
    metrics: Sequence[str] = ("auroc",),
    title: str | None = None,
) -> Path | None:
    """Metric against level for ``kind``, one line per (series, metric); None if no points.

    The x axis runs from the mildest level to the strongest, evenly spaced: the levels are the
    grid's choices, not a continuous scale.
    """
    spec = PERTURBATIONS[kind]
    fig = Figure(figsize=(6, 4.5), layout="constrained")
    ax = fig.subplots()
    drawn = 0
    for name, rows in series.items():
        for metric in metrics:
            levels, values = _points(rows, kind, metric)
            if not levels:
                continue
            positions = [spec.levels.index(lv) for lv in levels]
            label = name if len(metrics) == 1 else f"{name} {METRIC_NAMES[metric]}".strip()
            ax.plot(positions, values, marker="o", label=label)
            drawn += 1
    if not drawn:
        return None
    ax.set_xticks(range(len(spec.levels)), [f"{lv:g}" for lv in spec.levels])
    ax.set_xlabel(spec.label)
    ax.set_ylabel(" / ".join(METRIC_NAMES[m] for m in metrics))
    ax.set_ylim(0.0, 1.02)
    ax.axhline(0.5, color="grey", linestyle=":", linewidth=1)
    ax.grid(alpha=0.3)
    ax.set_title(title or f"Robustness to {spec.label}")
    ax.legend(loc="lower left", fontsize="small")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=_DPI)
    return path


def grid_matrix(rows: Sequence[Mapping[str, Any]], metric: str = "auroc") -> np.ndarray:
    """The JPEG x blur grid as a (blur sigma, JPEG quality) matrix in the grid's level order."""
    qualities = list(PERTURBATIONS["jpeg"].levels)
    sigmas = list(PERTURBATIONS["blur"].levels)
    matrix = np.full((len(sigmas), len(qualities)), np.nan)
    for row in rows:
        if row["perturbation"] != GRID_KIND or row[metric] is None:
            continue
        quality, sigma = parse_grid_level(str(row["level"]))
        matrix[sigmas.index(sigma), qualities.index(quality)] = row[metric]
    return matrix


def save_grid_heatmap(
    rows: Sequence[Mapping[str, Any]], path: Path, title: str = "AUROC under JPEG x blur"
) -> Path:
    matrix = grid_matrix(rows)
    fig = Figure(figsize=(6, 4.8), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(matrix, vmin=0.5, vmax=1.0, cmap="viridis")
    qualities, sigmas = PERTURBATIONS["jpeg"].levels, PERTURBATIONS["blur"].levels
    ax.set_xticks(range(len(qualities)), [f"{q:g}" for q in qualities])
    ax.set_yticks(range(len(sigmas)), [f"{s:g}" for s in sigmas])
    ax.set_xlabel("JPEG quality")
    ax.set_ylabel("Gaussian blur sigma (px), applied first")
    for (i, j), value in np.ndenumerate(matrix):
        if not np.isnan(value):
            ax.text(j, i, f"{value:.3f}", ha="center", va="center", fontsize=8, color="white")
    fig.colorbar(image, ax=ax, label="AUROC")
    ax.set_title(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=_DPI)
    return path


def write_robustness_figures(
    rows: Sequence[Mapping[str, Any]], out_dir: Path, name: str = ""
) -> list[Path]:
    """One run's figures: a curve per perturbation (AUROC, AP, accuracy) and the heatmap."""
    figures = []
    for kind in PERTURBATIONS:
        figure = save_robustness_curves(
            {name: rows}, kind, out_dir / curve_filename(kind), ("auroc", "ap", "accuracy")
        )
        if figure is not None:
            figures.append(figure)
    figures.append(save_grid_heatmap(rows, out_dir / HEATMAP_FILENAME))
    return figures
