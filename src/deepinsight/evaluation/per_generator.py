"""One row per generator (or platform): the table the cross-generator papers report.

A benchmark layout (``deepinsight.data.benchmark_layouts``) tags every image with its
generator. ``evaluate`` then writes ``per_generator.csv`` and ``per_generator.md`` beside the
dataset's ``results.json`` (which also holds the rows, under ``per_generator``), and prints the
table. Columns, and the papers' names for them:

* ``ap``: average precision, scikit-learn's ``average_precision_score`` (fake = positive);
  ForenSynths/CNNDetection's and UniversalFakeDetect's "AP".
* ``accuracy``: accuracy at score 0.5; CNNDetection's "acc" and GenImage's per-generator
  accuracy. ``real_accuracy`` / ``fake_accuracy``: the same on real or fake images only
  (CNNDetection's ``r_acc`` / ``f_acc``).
* ``accuracy_at_threshold``: accuracy at the model's stored decision threshold.
* ``auroc``: ROC AUC, threshold-free like AP.

The ``mean`` row is the unweighted mean of the rows, each generator counting once whatever its
size: how those papers average. Brackets are percentile-bootstrap 95% CIs over the images of
that generator (``deepinsight.uncertainty.bootstrap_ci``, the run's own CI method).
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from deepinsight.metrics import summarize_predictions
from deepinsight.run_outputs import markdown_table
from deepinsight.uncertainty import bootstrap_ci

PER_GENERATOR = "per_generator"
MEAN_ROW = "mean"
COLUMNS = (
    "generator", "n", "n_real", "n_fake", "auroc", "auroc_ci95", "ap", "ap_ci95", "accuracy",
    "accuracy_ci95", "accuracy_at_threshold", "accuracy_at_threshold_ci95", "real_accuracy",
    "fake_accuracy",
)  # fmt: skip
METRICS = ("auroc", "ap", "accuracy", "accuracy_at_threshold", "real_accuracy", "fake_accuracy")


def per_generator_rows(
    groups: Sequence[str],
    labels: np.ndarray,
    scores: np.ndarray,
    threshold: float,
    n_bootstrap: int,
    seed: int,
) -> list[dict[str, Any]]:
    """A row per generator, in name order, then the mean row."""
    groups_array = np.asarray(groups)
    rows = []
    for name in sorted(set(groups)):
        mask = groups_array == name
        rows.append(_row(name, labels[mask], scores[mask], threshold, n_bootstrap, seed))
    rows.append(mean_row(rows))
    return rows


def _row(name, y, s, threshold, n_bootstrap, seed) -> dict[str, Any]:
    # The project's own summary (equal to scikit-learn's), at 0.5 and at the stored threshold.
    at_half, at_threshold = (summarize_predictions(y, s, t) for t in (0.5, threshold))
    ci_half = bootstrap_ci(y, s, 0.5, n_bootstrap, seed)["ci95"]
    ci_threshold = bootstrap_ci(y, s, threshold, n_bootstrap, seed)["ci95"]
    n_fake = int(y.sum())
    n_real = len(y) - n_fake
    per_class = at_half["per_class"]
    return {
        "generator": name,
        "n": int(len(y)),
        "n_real": n_real,
        "n_fake": n_fake,
        "auroc": at_half["auroc"],
        "auroc_ci95": ci_half["auroc"],
        "ap": at_half["ap"],
        "ap_ci95": ci_half["ap"],
        "accuracy": at_half["accuracy"],
        "accuracy_ci95": ci_half["accuracy"],
        "accuracy_at_threshold": at_threshold["accuracy"],
        "accuracy_at_threshold_ci95": ci_threshold["accuracy"],
        # Recall of each class at 0.5: CNNDetection's r_acc / f_acc.
        "real_accuracy": per_class["real"]["recall"] if n_real else None,
        "fake_accuracy": per_class["fake"]["recall"] if n_fake else None,
    }


def mean_row(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The unweighted mean over generators of each metric (over those where it is defined)."""
    row: dict[str, Any] = dict.fromkeys(COLUMNS)
    row["generator"] = MEAN_ROW
    for count in ("n", "n_real", "n_fake"):
        row[count] = int(sum(r[count] for r in rows))
    for metric in METRICS:
        values = [r[metric] for r in rows if r[metric] is not None]
        row[metric] = float(np.mean(values)) if values else None
    return row


def write_per_generator(out_dir: Path, rows: Sequence[Mapping[str, Any]], title: str) -> str:
    """per_generator.csv (every column) and per_generator.md; returns the markdown."""
    with (out_dir / f"{PER_GENERATOR}.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(COLUMNS))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _csv_cell(v) for k, v in row.items()})
    header = ["generator", "n", "AUROC", "AP", "acc@0.5", "acc@threshold", "real acc", "fake acc"]
    cells = []
    for row in rows:
        line = [row["generator"], row["n"]]
        for metric in ("auroc", "ap", "accuracy", "accuracy_at_threshold"):
            line.append(_with_ci(row[metric], row.get(f"{metric}_ci95")))
        cells.append([*line, _number(row["real_accuracy"]), _number(row["fake_accuracy"])])
    lines = [
        f"# Per generator: {title}",
        "",
        "AP and accuracy at 0.5 are ForenSynths'/CNNDetection's columns (GenImage reports the "
        "accuracy); real/fake acc are their r_acc/f_acc. Brackets: bootstrap 95% CI over that "
        "generator's images. `mean`: the unweighted mean over generators.",
        "",
        *markdown_table(header, cells),
    ]
    text = "\n".join(lines) + "\n"
    (out_dir / f"{PER_GENERATOR}.md").write_text(text, encoding="utf-8")
    return text


def _number(value: Any) -> str:
    return "—" if value is None else f"{value:.4f}"


def _with_ci(value: Any, interval: Any) -> str:
    if value is None:
        return "—"
    return f"{value:.4f}" + (f" [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else "")


def _csv_cell(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return f"[{value[0]:.6f}, {value[1]:.6f}]"
    return "" if value is None else value
