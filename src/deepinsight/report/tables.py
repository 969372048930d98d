"""The report's tables: one row per run, mean ± std per variant, and the seed's numbers."""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from deepinsight.report.runs import METRICS, RunResult

CSV_COLUMNS = ("run", "model", "data", "seed", *METRICS, "status")
VARIANT_COLUMNS = (
    "model",
    "data",
    "n_runs",
    "seeds",
    *(f"{m}_{s}" for m in METRICS for s in ("mean", "std")),
)


def run_rows(runs: Sequence[RunResult]) -> list[dict[str, Any]]:
    """The comparison table as dicts keyed by CSV_COLUMNS (metrics blank for unfinished runs)."""
    return [
        {
            "run": r.run,
            "model": r.model,
            "data": r.data,
            "seed": r.seed,
            **r.metrics,
            "status": r.status,
        }
        for r in runs
    ]


def summarise_variants(runs: Sequence[RunResult]) -> list[dict[str, Any]]:
    """Mean and sample std (ddof=1; None for a single run) per (model, data), best AUROC first.

    A metric undefined for any of a variant's runs (one-class test set) has no mean either.
    """
    groups: dict[tuple, list[RunResult]] = defaultdict(list)
    for run in runs:
        if run.completed:
            groups[(run.model, run.data)].append(run)
    rows = []
    for (model, data), members in groups.items():
        members = sorted(members, key=lambda r: (r.seed is None, r.seed or 0))
        row: dict[str, Any] = {
            "model": model,
            "data": data,
            "n_runs": len(members),
            "seeds": " ".join(str(r.seed) for r in members),
        }
        for metric in METRICS:
            found = [r.metrics[metric] for r in members]
            if any(value is None for value in found):
                row[f"{metric}_mean"] = row[f"{metric}_std"] = None
                continue
            values = np.array(found, dtype=float)
            row[f"{metric}_mean"] = float(values.mean())
            row[f"{metric}_std"] = float(values.std(ddof=1)) if len(values) > 1 else None
        rows.append(row)
    return sorted(rows, key=lambda row: (row["auroc_mean"] is None, -(row["auroc_mean"] or 0)))


def load_seed_reference() -> list[dict[str, str]]:
    """The seed study's published test numbers, shipped as package data."""
    source = resources.files("deepinsight.reference").joinpath("seed_results.csv")
    with source.open("r", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def write_csv(path: Path, columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> Path:
    """Write ``rows`` under ``columns``; None becomes an empty cell."""
    # csv writes floats with repr, so every number reads back exactly as results.json holds it.
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path
