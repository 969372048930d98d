"""A real (tiny) training run through the CLI: the run-directory contract, W&B, resume, seeds."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.wandb_offline import read_offline_run
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

from deepinsight.train import train

pytestmark = pytest.mark.slow

TINY = [
    "model=custom_cnn",
    "data=rgb",
    "data.image_size=32",
    "data.batch_size=8",
    "trainer=cpu",
    "analysis.max_samples=32",
]


@pytest.fixture(scope="module")
def cli_run(tiny_dataset, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("cli") / "run"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "deepinsight.train",
            *TINY,
            f"data.root={tiny_dataset}",
            "trainer.max_epochs=2",
            f"hydra.run.dir={run_dir}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**__import__("os").environ, "WANDB_MODE": "offline"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Run directory:" in proc.stdout and "auroc" in proc.stdout
    (run_dir / "console.txt").write_text(proc.stdout + proc.stderr)
    return run_dir


def test_non_terminal_log_has_one_line_per_epoch_and_no_bar(cli_run):
    # The subprocess's stdout is a pipe, as under CI, nohup or SLURM.
    console = (cli_run / "console.txt").read_text()
    assert "\r" not in console, "a progress bar leaked into a non-terminal log"
    epoch_lines = [line for line in console.splitlines() if " - epoch " in line]
    assert [line.split(" - epoch ")[1].split()[0] for line in epoch_lines] == ["1/2", "2/2"]
    assert all("val/auroc" in line and "train/loss" in line for line in epoch_lines)


def read_predictions(run_dir: Path):
    with (run_dir / "test_predictions.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    return (
        rows,
        np.array([int(r["label"]) for r in rows]),
        np.array([float(r["score"]) for r in rows]),
    )


def test_run_directory_contract(cli_run, tiny_dataset):
    for name in (
        "config.yaml",
        "results.json",
        "test_predictions.csv",
        "classification_report.txt",
        "checkpoints/best.ckpt",
        "checkpoints/last.ckpt",
    ):
        assert (cli_run / name).is_file(), name
    results = json.loads((cli_run / "results.json").read_text())
    assert results["schema_version"] == 1 and results["status"] == "completed"
    assert (results["model"], results["data"], results["dataset"]) == (
        "custom_cnn",
        "rgb",
        "folders",
    )
    assert results["seed"] == 42 and results["epochs_trained"] == 2
    assert Path(results["best_checkpoint"]) == (cli_run / "checkpoints" / "best.ckpt").resolve()
    test = results["test"]
    expected = {
        "auroc",
        "ap",
        "accuracy",
        "precision",
        "recall",
        "f1",
        "macro_precision",
        "macro_recall",
        "macro_f1",
        "threshold",
        "n",
        "per_class",
        "confusion_matrix",
    }
    assert expected <= set(test)
    assert set(test["per_class"]) == {"real", "fake"}
    assert set(test["per_class"]["fake"]) == {"precision", "recall", "f1", "support"}
    assert 0.0 < results["decision_threshold"]["value"] < 1.0
    assert (
        results["test_at_decision_threshold"]["threshold"] == results["decision_threshold"]["value"]
    )
    rows, labels, _ = read_predictions(cli_run)
    assert test["n"] == len(rows) == 24
    assert all(Path(r["path"]).is_absolute() and Path(r["path"]).is_file() for r in rows)
    # label 1 = fake, matching the folder the file sits in
    assert all(int(r["label"]) == (Path(r["path"]).parent.name == "fake") for r in rows)
    report = (cli_run / "classification_report.txt").read_text()
    assert "ROC AUC Score" in report and "macro avg" in report and "fake" in report


def test_results_equal_sklearn_on_predictions(cli_run):
    results = json.loads((cli_run / "results.json").read_text())
    _, labels, scores = read_predictions(cli_run)
    for block in ("test", "test_at_decision_threshold"):
        got = results[block]
        preds = (scores >= got["threshold"]).astype(int)
        assert got["auroc"] == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
        assert got["ap"] == pytest.approx(average_precision_score(labels, scores), abs=1e-12)
        assert got["accuracy"] == pytest.approx(accuracy_score(labels, preds), abs=1e-12)
        assert got["precision"] == pytest.approx(precision_score(labels, preds, zero_division=0))
        assert got["recall"] == pytest.approx(recall_score(labels, preds), abs=1e-12)
        assert got["f1"] == pytest.approx(f1_score(labels, preds), abs=1e-12)
        assert got["macro_f1"] == pytest.approx(f1_score(labels, preds, average="macro"), abs=1e-12)


def test_checkpoint_carries_preprocessing_and_threshold(cli_run):
    ckpt = torch.load(cli_run / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)
    info = ckpt["deepinsight"]
    assert info["model"]["name"] == "custom_cnn" and info["model"]["in_chans"] == 3
    assert info["preprocessing"] == {
        "image_size": 32,
        "channels": 3,
        "resize": "bilinear_antialias",
        "scale": "unit",
        # A folder tree of synthetic images: whole images, not aligned faces.
        "crops": "whole_images",
    }
    results = json.loads((cli_run / "results.json").read_text())
    assert info["threshold"] == results["decision_threshold"]["value"]
    assert any(k.startswith("net.") for k in ckpt["state_dict"])


def test_wandb_offline_run_holds_the_test_metrics(cli_run):
    run = read_offline_run(cli_run)
    assert run.path.is_relative_to(cli_run / "wandb")
    results = json.loads((cli_run / "results.json").read_text())
    for key in ("auroc", "ap", "f1", "accuracy"):
        assert run.summary[f"test/{key}"] == pytest.approx(results["test"][key], abs=1e-6)
    assert (run.config["model"], run.config["data"], run.config["seed"]) == (
        "custom_cnn",
        "rgb",
        42,
    )
    assert run.config["config"]["trainer"]["max_epochs"] == 2  # the resolved config
    assert any("val/auroc" in row for row in run.history)  # per-epoch metrics
    logged = {key for row in run.history for key in row}
    assert {"test/roc_table/_type", "test/confusion_table/_type"} & logged or any(
        k.startswith("test/roc") for k in run.summary
    )


def test_resume_from_last_checkpoint_continues(cli_run, compose, tiny_dataset, tmp_path):
    last = cli_run / "checkpoints" / "last.ckpt"
    cfg = compose(
        [
            *TINY,
            f"data.root={tiny_dataset}",
            "trainer.max_epochs=3",
            f"ckpt_path={last}",
            "logger=none",
            "analysis.enabled=false",
        ],
        run_dir=tmp_path / "resumed",
    )
    results = train(cfg)
    assert results["epochs_trained"] == 3
    resumed = torch.load(tmp_path / "resumed" / "checkpoints" / "last.ckpt", weights_only=True)
    assert resumed["epoch"] == 2  # zero-based: the third epoch


def test_missing_resume_checkpoint_is_a_user_error(compose, tiny_dataset, tmp_path):
    from deepinsight.errors import DeepInsightError

    cfg = compose(
        [*TINY, f"data.root={tiny_dataset}", f"ckpt_path={tmp_path / 'nope.ckpt'}", "logger=none"]
    )
    with pytest.raises(DeepInsightError, match="nope.ckpt"):
        train(cfg)


def test_same_seed_gives_same_metrics(compose, tiny_dataset, tmp_path):
    def once(seed: int, name: str):
        cfg = compose(
            [
                *TINY,
                f"data.root={tiny_dataset}",
                "trainer.max_epochs=1",
                f"seed={seed}",
                "logger=none",
                "analysis.enabled=false",
                "data=augmented",
            ],
            run_dir=tmp_path / name,
        )
        return train(cfg)["test"]

    first, second, other = once(7, "a"), once(7, "b"), once(8, "c")
    assert first == second
    assert first["auroc"] != other["auroc"] or first["ap"] != other["ap"]
