"""The robustness grid: every test image re-scored under every perturbation level.

Each image is decoded once, then perturbed at every condition of the grid and preprocessed as
the checkpoint says (``build_eval_transform(detector.preprocessing)``), so the only thing that
changes between two rows of ``robustness.csv`` is the perturbation. Conditions that reduce to
the same operations (JPEG 100 with blur 0 is JPEG 100) are scored once.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepinsight.data.image_io import DEFAULT_MAX_PIXELS, ImageLoadError, load_image
from deepinsight.data.layouts import Sample
from deepinsight.data.transforms import build_eval_transform
from deepinsight.evaluation.perturbations import GRID_KIND, PERTURBATIONS, perturb
from deepinsight.metrics import summarize_predictions

log = logging.getLogger(__name__)

ROBUSTNESS_CSV = "robustness.csv"
CSV_COLUMNS = ("perturbation", "level", "auroc", "ap", "accuracy", "n")
# Levels at which an operation leaves the image untouched (JPEG 100 is a real encode: not here).
IDENTITY_LEVELS = {"blur": 0.0, "resize": 1.0, "noise": 0.0}

Steps = tuple[tuple[str, float], ...]


def _format_level(value: float) -> str:
    return f"{value:g}"


def grid_level(quality: float, sigma: float) -> str:
    """The ``level`` of one JPEG x blur cell in robustness.csv: ``<quality>x<sigma>``."""
    return f"{_format_level(quality)}x{_format_level(sigma)}"


def parse_grid_level(level: str) -> tuple[float, float]:
    quality, _, sigma = level.partition("x")
    return float(quality), float(sigma)


def conditions() -> list[tuple[str, str, Steps]]:
    """(perturbation, level, steps) for every row: the four 1-D curves, then the 2-D grid."""
    rows = [
        (kind, _format_level(level), ((kind, float(level)),))
        for kind, spec in PERTURBATIONS.items()
        for level in spec.levels
    ]
    rows += [
        (GRID_KIND, grid_level(quality, sigma), (("blur", float(sigma)), ("jpeg", float(quality))))
        for sigma in PERTURBATIONS["blur"].levels
        for quality in PERTURBATIONS["jpeg"].levels
    ]
    return rows


def canonical(steps: Steps) -> Steps:
    """``steps`` without identity operations: equal keys mean identical perturbed pixels."""
    return tuple((k, v) for k, v in steps if IDENTITY_LEVELS.get(k) != v)


def _chunks(samples: Sequence[Sample], size: int) -> Iterator[tuple[int, Sequence[Sample]]]:
    for start in range(0, len(samples), size):
        yield start, samples[start : start + size]


def score_grid(
    detector: Any,
    samples: Sequence[Sample],
    seed: int = 0,
    batch_size: int = 64,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> tuple[dict[Steps, np.ndarray], np.ndarray]:
    """Scores (P(fake)) per distinct condition, and the labels of the images that decoded.

    Unreadable files are skipped with a warning naming them, as in training.
    """
    transform = build_eval_transform(detector.preprocessing)
    distinct = sorted({canonical(steps) for _, _, steps in conditions()})
    scores: dict[Steps, list[np.ndarray]] = {key: [] for key in distinct}
    labels: list[int] = []
    for start, chunk in _chunks(list(samples), batch_size):
        images, indices = [], []
        for offset, sample in enumerate(chunk):
            try:
                images.append(load_image(sample.path, max_pixels=max_pixels))
            except ImageLoadError as err:
                log.warning("robustness: skipping %s: %s", sample.path, err)
                continue
            indices.append(start + offset)
            labels.append(int(sample.label))
        if not images:
            continue
        for key in distinct:
            batch = torch.stack(
                [
                    transform(perturb(image, list(key), seed, index))
                    for image, index in zip(images, indices, strict=True)
                ]
            )
            scores[key].append(np.asarray(detector.score(batch), dtype=np.float64))
    merged = {k: np.concatenate(v) if v else np.empty(0) for k, v in scores.items()}
    return merged, np.asarray(labels, dtype=np.int64)


def robustness_rows(
    scores: Mapping[Steps, np.ndarray], labels: np.ndarray, threshold: float
) -> list[dict[str, Any]]:
    """One row per condition: AUROC, AP (None with one class) and accuracy at ``threshold``."""
    rows = []
    for kind, level, steps in conditions():
        summary = summarize_predictions(
            torch.as_tensor(labels), torch.as_tensor(scores[canonical(steps)]), threshold
        )
        rows.append(
            {
                "perturbation": kind,
                "level": level,
                "auroc": summary["auroc"],
                "ap": summary["ap"],
                "accuracy": summary["accuracy"],
                "n": summary["n"],
            }
        )
    return rows


def evaluate_robustness(
    detector: Any,
    samples: Sequence[Sample],
    seed: int = 0,
    batch_size: int = 64,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> list[dict[str, Any]]:
    """The whole grid for one detector on ``samples``: the rows of robustness.csv."""
    scores, labels = score_grid(detector, samples, seed, batch_size, max_pixels)
    return robustness_rows(scores, labels, detector.threshold)


def write_robustness_csv(rows: Sequence[Mapping[str, Any]], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(row[k]) for k in CSV_COLUMNS})
    return path


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    return round(value, 6) if isinstance(value, float) else value


def read_robustness_csv(path: Path) -> list[dict[str, Any]]:
    """The rows of a robustness.csv, numbers as floats (None where a metric was undefined)."""
    with Path(path).open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        for key in ("auroc", "ap", "accuracy"):
            row[key] = float(row[key]) if row[key] not in ("", None) else None
        row["n"] = int(row["n"])
    return rows
