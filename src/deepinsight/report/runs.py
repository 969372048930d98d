"""Collecting runs: one row per run directory, read only through the run-directory contract.

A run directory holds ``results.json`` (and ``config.yaml``, written when the job starts); see
docs/contracts.md. Completed runs carry their test metrics; failed, unfinished and unreadable
runs are rows too, so a report never hides a job that went wrong.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from deepinsight.errors import DeepInsightError

METRICS = ("accuracy", "precision", "recall", "f1", "auroc", "ap")
# The seed's comparison table reports macro averages for precision, recall and F1.
RESULTS_KEY = {
    "accuracy": "accuracy",
    "precision": "macro_precision",
    "recall": "macro_recall",
    "f1": "macro_f1",
    "auroc": "auroc",
    "ap": "ap",
}
# Metrics whose bootstrap 95% CI results.json holds (test.ci95, keyed like RESULTS_KEY).
CI_METRICS = ("accuracy", "f1", "auroc", "ap")
# Undefined when the test set holds one class: results.json has null for them (never NaN).
UNDEFINED_ON_ONE_CLASS = ("auroc", "ap")
COMPLETED = "completed"
# Where a run's resolved config.yaml names its model, data variant and seed.
CONFIG_IDENTITY = ("model.net.name", "data.variant", "seed")


@dataclass(frozen=True)
class RunResult:
    """One run's row: where it lives, what it was, and its test metrics if it completed.

    ``metrics`` maps every name in METRICS to a number, or to None for a metric that is
    undefined on the run's test set (UNDEFINED_ON_ONE_CLASS). ``ci`` maps names in CI_METRICS
    to their bootstrap 95% interval ``(low, high)``, for runs whose results.json has one.
    """

    run: str
    run_dir: Path
    model: str | None
    data: str | None
    seed: int | None
    status: str
    metrics: dict[str, float | None] = field(default_factory=dict)
    error: str | None = None
    ci: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def completed(self) -> bool:
        return self.status == COMPLETED


def _contract_files(dirs: Sequence[Path], name: str) -> set[Path]:
    """Every ``name`` under ``dirs`` once, skipping W&B's and Hydra's own copies of files."""
    return {
        path.resolve()
        for directory in dirs
        for path in directory.rglob(name)
        if not {"wandb", ".hydra"} & set(path.relative_to(directory).parts)
    }


def find_results(dirs: Sequence[Path]) -> list[Path]:
    """Every run's results.json under ``dirs``; one clear error when there is none."""
    found = _contract_files(dirs, "results.json")
    if not found:
        listed = " ".join(str(d) for d in dirs)
        raise DeepInsightError(f"no results.json found under {listed}; is it a run directory?")
    return sorted(found)


def find_unfinished(dirs: Sequence[Path]) -> list[Path]:
    """Run directories (config.yaml written at start) without results.json: killed jobs."""
    started = {path.parent for path in _contract_files(dirs, "config.yaml")}
    finished = {path.parent for path in _contract_files(dirs, "results.json")}
    return sorted(started - finished)


def read_config(run_dir: Path):
    """The run's resolved config.yaml, or None when it is missing or unreadable."""
    from omegaconf import OmegaConf

    try:
        return OmegaConf.load(run_dir / "config.yaml")
    except (OSError, ValueError, yaml.YAMLError):
        return None


def _run_name(run_dir: Path, base: Path) -> str:
    relative = os.path.relpath(run_dir, base)
    return run_dir.name if relative == "." else Path(relative).as_posix()


def _metric_is_valid(test: dict, metric: str) -> bool:
    key = RESULTS_KEY[metric]
    if metric in UNDEFINED_ON_ONE_CLASS and key in test and test[key] is None:
        return True  # a one-class test set: the run completed, the metric has no value
    return isinstance(test.get(key), (int, float))


def load_run(results_path: Path, base: Path) -> RunResult:
    """Read one results.json: a completed, failed or ``invalid`` row.

    ``invalid`` means the file breaks the contract: unreadable, not a JSON object, or a
    completed run without a number for a metric that is always defined. A null AUROC or AP
    (a one-class test set) is part of the contract: that run is completed, with no value there.
    """
    run_dir = results_path.parent
    name = _run_name(run_dir, base)
    try:
        results = json.loads(results_path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        return RunResult(name, run_dir, None, None, None, "invalid", error=f"unreadable: {err}")
    if not isinstance(results, dict):
        return RunResult(name, run_dir, None, None, None, "invalid", error="not a JSON object")
    identity = (results.get("model"), results.get("data"), results.get("seed"))
    status = str(results.get("status", "unknown"))
    if status != COMPLETED:
        return RunResult(name, run_dir, *identity, status, error=results.get("error"))
    test = results.get("test") or {}
    missing = [RESULTS_KEY[m] for m in METRICS if not _metric_is_valid(test, m)]
    if missing:
        error = f"results.json lacks test.{', test.'.join(missing)}"
        return RunResult(name, run_dir, *identity, "invalid", error=error)
    metrics = {metric: test[key] for metric, key in RESULTS_KEY.items()}
    return RunResult(name, run_dir, *identity, COMPLETED, metrics=metrics, ci=_intervals(test))


def _intervals(test: dict) -> dict[str, tuple[float, float]]:
    """The test block's ci95 intervals for CI_METRICS (older results.json files have none)."""
    found = test.get("ci95") if isinstance(test.get("ci95"), dict) else {}
    intervals = {}
    for metric in CI_METRICS:
        value = found.get(RESULTS_KEY[metric])
        if isinstance(value, list) and len(value) == 2:
            intervals[metric] = (float(value[0]), float(value[1]))
    return intervals


def unfinished_run(run_dir: Path, base: Path) -> RunResult:
    """A row for a job that started (it wrote config.yaml) but never wrote results.json."""
    from omegaconf import OmegaConf

    config = read_config(run_dir)
    model, data, seed = (
        (None, None, None)
        if config is None
        else (OmegaConf.select(config, key, default=None) for key in CONFIG_IDENTITY)
    )
    error = "no results.json: the job was killed or is still running"
    return RunResult(
        _run_name(run_dir, base), run_dir, model, data, seed, "unfinished", error=error
    )


def _by_auroc(run: RunResult) -> tuple[float, str]:
    # Highest AUROC first; an undefined AUROC (one-class test set) sorts last.
    auroc = run.metrics.get("auroc")
    return (-auroc if auroc is not None else float("inf"), run.run)


def collect_runs(dirs: Sequence[Path]) -> list[RunResult]:
    """All runs under ``dirs``: completed ones by AUROC (best first), then the rest by name."""
    resolved = [d.resolve() for d in dirs]
    # Names are relative to the folder holding every DIR: the DIR itself when there is one.
    base = Path(os.path.commonpath(resolved))
    runs = [load_run(path, base) for path in find_results(resolved)]
    runs += [unfinished_run(run_dir, base) for run_dir in find_unfinished(resolved)]
    completed = sorted((r for r in runs if r.completed), key=_by_auroc)
    others = sorted((r for r in runs if not r.completed), key=lambda r: r.run)
    return completed + others
