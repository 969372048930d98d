"""roc_curves.png and pr_curves.png: every completed run's test curve in one figure each; and
robustness_overlay_<kind>.png: each run's AUROC per perturbation, for runs with robustness.csv."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from deepinsight.analysis.plots import save_pr_curves, save_roc_curves
from deepinsight.errors import DeepInsightError
from deepinsight.report.runs import RunResult
from deepinsight.run_outputs import read_predictions

ROC_CURVES = "roc_curves.png"
PR_CURVES = "pr_curves.png"


def write_robustness_overlays(runs: Sequence[RunResult], output: Path) -> list[Path]:
    """AUROC against level for every perturbation, one line per run with a robustness.csv
    (written by ``evaluate robustness=true`` or ``deepinsight.evaluation.robustness_runs``)."""
    from deepinsight.evaluation.perturbations import PERTURBATIONS
    from deepinsight.evaluation.robustness import ROBUSTNESS_CSV, read_robustness_csv
    from deepinsight.evaluation.robustness_plots import save_robustness_curves

    series = {
        f"{run.run}: {run.model}/{run.data}": read_robustness_csv(run.run_dir / ROBUSTNESS_CSV)
        for run in runs
        if run.completed and (run.run_dir / ROBUSTNESS_CSV).is_file()
    }
    if not series:
        return []
    figures = [
        save_robustness_curves(series, kind, output / f"robustness_overlay_{kind}.png")
        for kind in PERTURBATIONS
    ]
    return [f for f in figures if f is not None]


def write_curves(runs: Sequence[RunResult], output: Path) -> list[Path]:
    """Both figures, with every completed run whose test predictions can draw a curve."""
    curves = []
    for run in runs:
        if not run.completed:
            continue
        try:
            _, labels, scores = read_predictions(run.run_dir)
        except DeepInsightError as err:
            print(f"warning: no curve for {run.run}: {err}", file=sys.stderr)
            continue
        if np.unique(labels).size < 2:
            print(f"warning: no curve for {run.run}: its test set holds one class", file=sys.stderr)
            continue
        curves.append((f"{run.run}: {run.model}/{run.data}", labels, scores))
    if not curves:
        return []
    roc, pr = output / ROC_CURVES, output / PR_CURVES
    save_roc_curves(curves, roc, title="ROC curves (test)")
    save_pr_curves(curves, pr, title="Precision-recall curves (test)")
    return [roc, pr]
