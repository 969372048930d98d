"""The reliability diagram: fraction of fakes against mean P(fake), per score bin.

A calibrated detector's points lie on the diagonal. Bins are the equal-width bins of the ECE
(``deepinsight.calibration.N_BINS``), so the figure shows what the number in results.json sums.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from deepinsight.calibration import N_BINS, expected_calibration_error

RELIABILITY_FILENAME = "reliability.png"


def reliability_bins(labels: Any, scores: Any, n_bins: int = N_BINS):
    """Per non-empty bin: (mean score, fraction fake, count)."""
    y = np.asarray(labels, dtype=np.float64).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    # torchmetrics' bins: (lo, hi], with 0 in the first bin.
    which = np.clip(np.ceil(s * n_bins).astype(int) - 1, 0, n_bins - 1)
    count = np.bincount(which, minlength=n_bins)
    keep = count > 0
    mean_score = np.bincount(which, weights=s, minlength=n_bins)[keep] / count[keep]
    fraction_fake = np.bincount(which, weights=y, minlength=n_bins)[keep] / count[keep]
    return mean_score, fraction_fake, count[keep]


def save_reliability_diagram(
    labels: Any,
    scores: Any,
    path: str | Path,
    title: str = "Reliability (test)",
    unscaled_scores: Any | None = None,
) -> Path:
    """Draw the diagram of ``scores`` (and of ``unscaled_scores``, dashed, if given)."""
    fig = Figure(figsize=(5.5, 5), layout="constrained")
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
    series = [("after temperature scaling" if unscaled_scores is not None else "", scores, "-")]
    if unscaled_scores is not None:
        series.append(("before scaling", unscaled_scores, ":"))
    for name, values, style in series:
        mean_score, fraction_fake, _ = reliability_bins(labels, values)
        ece = expected_calibration_error(labels, values)
        label = f"{name + ', ' if name else ''}ECE {ece:.4f}"
        ax.plot(mean_score, fraction_fake, style, marker="o", label=label)
    ax.set(xlabel="Mean P(fake) in bin", ylabel="Fraction fake in bin", xlim=(0, 1), ylim=(0, 1))
    ax.set_title(title)
    ax.legend(loc="upper left")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path
