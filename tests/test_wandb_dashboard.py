"""The W&B comparison report, built offline from a synthetic sweep; robustness overlays."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from deepinsight import report
from deepinsight.evaluation.robustness import CSV_COLUMNS, conditions, write_robustness_csv
from deepinsight.report.wandb_dashboard import (
    SPEC_FILENAME,
    build_wandb_report,
    publish,
)

RUNS = [
    ("0", "densenet121", "rgb", 0.97, [0.957, 0.984]),
    ("1", "densenet121", "rgb+blurjpeg", 0.9, None),
]


@pytest.fixture(autouse=True)
def offline_wandb(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_ENTITY", raising=False)


def _write_run(run_dir: Path, model: str, data: str, auroc: float, ci) -> None:
    run_dir.mkdir(parents=True)
    rng = np.random.default_rng(len(data))
    labels = np.repeat([0, 1], 20)
    scores = 1 / (1 + np.exp(-(rng.normal(size=40) + 2 * (2 * labels - 1))))
    with (run_dir / "test_predictions.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "score"])
        writer.writerows(
            (f"/t/{i}.jpg", int(y), float(s)) for i, (y, s) in enumerate(zip(labels, scores))
        )
    test = {k: 0.9 for k in ("accuracy", "precision", "recall", "f1")}
    test |= {
        "macro_precision": 0.9,
        "macro_recall": 0.9,
        "macro_f1": 0.9,
        "auroc": auroc,
        "ap": 0.95,
    }
    if ci:
        test["ci95"] = {"auroc": ci, "ap": [0.93, 0.97]}
    results = {"schema_version": 1, "status": "completed", "model": model, "data": data, "seed": 1}
    (run_dir / "results.json").write_text(json.dumps({**results, "test": test}))
    (run_dir / "config.yaml").write_text(
        f"seed: 1\nmodel:\n  net:\n    name: {model}\ndata:\n  variant: {data}\n"
        "logger:\n  wandb:\n    project: di-test\n    group: sweep-a\n"
    )
    rows = [
        {
            "perturbation": kind,
            "level": level,
            "auroc": auroc - 0.01 * i,
            "ap": 0.9,
            "accuracy": 0.8,
            "n": 40,
        }
        for i, (kind, level, _) in enumerate(conditions())
    ]
    write_robustness_csv(rows, run_dir / "robustness.csv")


def test_report_writes_spec_and_overlays_and_builds_the_wandb_report(tmp_path, capsys):
    for job, model, data, auroc, ci in RUNS:
        _write_run(tmp_path / job, model, data, auroc, ci)
    with pytest.raises(SystemExit) as exit_info:
        report.main([str(tmp_path), "wandb=false"])
    assert exit_info.value.code == 0
    assert "deepinsight.report.wandb_dashboard" in capsys.readouterr().out
    for kind in ("jpeg", "blur", "resize", "noise"):
        assert (tmp_path / f"robustness_overlay_{kind}.png").stat().st_size > 0
    assert "robustness_overlay_jpeg.png" in (tmp_path / "comparison.md").read_text()

    spec = json.loads((tmp_path / SPEC_FILENAME).read_text())
    assert spec["project"] == "di-test" and spec["group"] == "sweep-a"
    assert spec["metrics"] == {"auroc": "test/auroc", "ap": "test/ap"}
    assert spec["curve_keys"] == ["roc_curves", "pr_curves"]
    assert "robustness_overlay_jpeg" in spec["robustness_keys"]
    assert "0.9700 [0.957, 0.984]" in spec["comparison_markdown"]
    assert "rgb+blurjpeg" in spec["comparison_markdown"]

    # With an entity, rendering the runsets looks their project up online: not in a test.
    named = build_wandb_report(spec, entity="someone")
    assert named.entity == "someone" and named.project == "di-test"
    built = build_wandb_report(spec)
    grids = [b for b in built.blocks if type(b).__name__ == "PanelGrid"]
    bars = [p for p in grids[0].panels if type(p).__name__ == "BarPlot"]
    assert [p.metrics for p in bars] == [["test/auroc"], ["test/ap"]]
    assert all(p.groupby_rangefunc == "stddev" for p in bars)
    media = [p.media_keys for g in grids[1:] for p in g.panels]
    assert media[0] == ["roc_curves", "pr_curves"] and "robustness_overlay_noise" in media[1]
    assert "JobType = 'train'" in str(grids[0].runsets[0].filters)
    viewspec = built._to_model().model_dump_json(by_alias=True, exclude_none=True)
    assert "test/auroc" in viewspec and "robustness_overlay_blur" in viewspec


def test_publish_refuses_a_file_that_is_not_a_spec(tmp_path):
    from deepinsight.errors import DeepInsightError

    bad = tmp_path / "x.json"
    bad.write_text("{}")
    with pytest.raises(DeepInsightError, match="not a DeepInsight W&B report spec"):
        publish(bad)
    assert CSV_COLUMNS[0] == "perturbation"
