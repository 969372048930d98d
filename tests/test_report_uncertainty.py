"""The report shows bootstrap CIs per run and says whether the best lead beats the seed spread."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from deepinsight import report
from deepinsight.metrics import summarize_predictions
from deepinsight.report.tables import lead_over_spread
from deepinsight.uncertainty import with_confidence_intervals


@pytest.fixture(autouse=True)
def offline_wandb(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    for var in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(var, str(tmp_path / "wandb-home"))


def write_run(run_dir: Path, model: str, seed: int, separation: float) -> dict:
    rng = np.random.default_rng(seed)
    labels = np.repeat([0, 1], 50)
    scores = 1 / (1 + np.exp(-(rng.normal(size=100) + separation * (2 * labels - 1))))
    test = with_confidence_intervals(
        summarize_predictions(labels, scores), labels, scores, n_bootstrap=200
    )
    run_dir.mkdir(parents=True)
    results = {"schema_version": 1, "status": "completed", "model": model, "data": "rgb",
               "seed": seed, "test": test}  # fmt: skip
    (run_dir / "results.json").write_text(json.dumps(results))
    return test


def test_runs_table_shows_value_and_interval_and_csv_holds_the_bounds(tmp_path):
    tests = {
        "0": write_run(tmp_path / "0", "densenet121", 1, 1.5),
        "1": write_run(tmp_path / "1", "densenet121", 2, 1.4),
        "2": write_run(tmp_path / "2", "custom_cnn", 1, 0.3),
        "3": write_run(tmp_path / "3", "custom_cnn", 2, 0.35),
    }
    with pytest.raises(SystemExit) as exit_info:
        report.main([str(tmp_path), "wandb=false"])
    assert exit_info.value.code == 0
    markdown = (tmp_path / "comparison.md").read_text()
    low, high = tests["0"]["ci95"]["auroc"]
    assert f"{tests['0']['auroc']:.4f} [{low:.3f}, {high:.3f}]" in markdown
    macro_low, _ = tests["0"]["ci95"]["macro_f1"]  # the table's F1 is the macro F1
    assert f"{tests['0']['macro_f1']:.4f} [{macro_low:.3f}," in markdown
    assert "Best variant densenet121/rgb leads custom_cnn/rgb by" in markdown
    assert "AUROC, larger than the seed-to-seed spread" in markdown
    with (tmp_path / "comparison.csv").open(newline="") as handle:
        rows = {row["run"]: row for row in csv.DictReader(handle)}
    assert float(rows["0"]["auroc_ci95_low"]) == low
    assert float(rows["0"]["auroc_ci95_high"]) == high


def variant(model: str, mean: float, std: float | None) -> dict:
    return {"model": model, "data": "rgb", "auroc_mean": mean, "auroc_std": std}


def test_lead_over_spread_verdicts():
    clear = lead_over_spread([variant("a", 0.95, 0.01), variant("b", 0.90, 0.02)])
    assert clear is not None and "by 0.0500 AUROC, larger than" in clear
    noisy = lead_over_spread([variant("a", 0.95, 0.04), variant("b", 0.93, 0.01)])
    assert noisy is not None and "not larger than the seed-to-seed spread" in noisy
    single = lead_over_spread([variant("a", 0.95, None), variant("b", 0.93, 0.01)])
    assert single is not None and "single seed" in single
    assert lead_over_spread([variant("a", 0.95, 0.01)]) is None
