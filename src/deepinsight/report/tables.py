"""The report's tables: one row per run, mean ± std per variant, and the seed's numbers."""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from deepinsight.report.runs import CI_METRICS, METRICS, RunResult

CI_COLUMNS = tuple(f"{m}_ci95_{end}" for m in CI_METRICS for end in ("low", "high"))
CSV_COLUMNS = ("run", "model", "data", "seed", *METRICS, "status", *CI_COLUMNS)
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
            **{f"{m}_ci95_low": low for m, (low, _) in r.ci.items()},
            **{f"{m}_ci95_high": high for m, (_, high) in r.ci.items()},
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


def lead_over_spread(variants: Sequence[dict[str, Any]], metric: str = "auroc") -> str | None:
    """Whether the best variant's lead over the second in ``metric`` exceeds the seed spread.

    The spread is the larger of the two variants' std over seeds; a lead smaller than it could
    come from the choice of seeds alone. None when fewer than two variants have the metric.
    """
    ranked = [v for v in variants if v.get(f"{metric}_mean") is not None]
    if len(ranked) < 2:
        return None
    best, second = ranked[0], ranked[1]
    name = f"{best['model']}/{best['data']}"
    other = f"{second['model']}/{second['data']}"
    lead = best[f"{metric}_mean"] - second[f"{metric}_mean"]
    stds = [best[f"{metric}_std"], second[f"{metric}_std"]]
    head = f"Best variant {name} leads {other} by {lead:.4f} {metric.upper()}"
    if any(std is None for std in stds):
        return f"{head}; one of them has a single seed, so the seed-to-seed spread is unknown."
    spread = max(stds)
    verdict = "larger" if lead > spread else "not larger"
    return f"{head}, {verdict} than the seed-to-seed spread (largest std of the two: {spread:.4f})."


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
