"""The run-directory contract: results.json, test_predictions.csv, classification_report.txt.

Other tools (the report, the tests) read these files; see
docs/contracts.md before changing anything here.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import classification_report

from deepinsight import CLASS_NAMES
from deepinsight.errors import DeepInsightError

SCHEMA_VERSION = 1
RESULTS_FILE = "results.json"
PREDICTIONS_FILE = "test_predictions.csv"
REPORT_FILE = "classification_report.txt"
PREDICTION_COLUMNS = ("path", "label", "score")


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """A GitHub markdown table's lines: header, separator, one line per row."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write JSON atomically: readers never see a half-written file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    tmp.replace(path)


def write_results(run_dir: Path, results: dict[str, Any]) -> Path:
    path = Path(run_dir) / RESULTS_FILE
    write_json(path, {"schema_version": SCHEMA_VERSION, **results})
    return path


def write_predictions(
    run_dir: Path, paths: Sequence[Path], labels: Sequence[int], scores: Sequence[float]
) -> Path:
    """One row per test image; scores are written with full float precision (repr)."""
    path = Path(run_dir) / PREDICTIONS_FILE
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(PREDICTION_COLUMNS)
        for image, label, score in zip(paths, labels, scores):
            writer.writerow([str(Path(image).resolve()), int(label), repr(float(score))])
    return path


def read_predictions(run_dir: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Paths, labels (1 = fake) and scores (P(fake)) from a run's test_predictions.csv."""
    path = Path(run_dir) / PREDICTIONS_FILE
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        labels = np.array([int(float(row["label"])) for row in rows], dtype=np.int64)
        scores = np.array([float(row["score"]) for row in rows], dtype=np.float64)
    except FileNotFoundError:
        raise DeepInsightError(f"{path} is missing") from None
    except (KeyError, ValueError, TypeError) as err:
        raise DeepInsightError(f"{path} is not 'path,label,score' ({err})") from None
    return [row["path"] for row in rows], labels, scores


def write_classification_report(
    run_dir: Path, labels: np.ndarray, scores: np.ndarray, summary: dict[str, Any], title: str
) -> Path:
    """scikit-learn's report (the seed's table layout) with ROC AUC and AP on top."""
    preds = (np.asarray(scores) >= summary["threshold"]).astype(int)
    table = classification_report(
        labels, preds, labels=[0, 1], target_names=list(CLASS_NAMES), digits=4, zero_division=0
    )
    text = (
        f"{title}\n"
        f"ROC AUC Score: {summary['auroc']}\n"
        f"AP Score: {summary['ap']}\n"
        f"Threshold: {summary['threshold']} (fake iff score >= threshold)\n\n"
        f"{table}"
    )
    path = Path(run_dir) / REPORT_FILE
    path.write_text(text)
    return path


def format_metrics_table(summary: dict[str, Any], keys: Sequence[str]) -> str:
    """A small two-column text table for the console."""
    width = max(len(k) for k in keys)
    lines = [f"{'metric':<{width}}  value", f"{'-' * width}  ------"]
    for key in keys:
        value = summary[key]
        shown = f"{value:.4f}" if isinstance(value, float) and math.isfinite(value) else str(value)
        lines.append(f"{key:<{width}}  {shown}")
    return "\n".join(lines)
