"""The seed's four-variant multirun on the demo data (tiny), then the comparison report."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.wandb_offline import read_offline_run
from PIL import Image

pytestmark = pytest.mark.slow

# The demo dataset at tiny size.
TINY_DEMO = ["data.demo.n_train=48", "data.demo.n_valid=24", "data.demo.n_test=24"]


def run_cli(args: list[str], cache: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "offline", "DEEPINSIGHT_CACHE": str(cache)}
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=900, env=env
    )


@pytest.fixture(scope="module")
def demo_cache(tmp_path_factory) -> Path:
    """One cache for the file's commands: the tiny demo is built once, not per command."""
    return tmp_path_factory.mktemp("demo_cache")


@pytest.fixture(scope="module")
def seed_sweep(tmp_path_factory, demo_cache) -> Path:
    base = tmp_path_factory.mktemp("sweep")
    sweep_dir = base / "multirun"
    proc = run_cli(
        [
            "-m",
            "deepinsight.train",
            "-m",
            "sweep=paper",
            *TINY_DEMO,
            "data.image_size=64",
            "data.batch_size=16",
            "trainer.max_epochs=1",
            "analysis.max_samples=24",
            f"hydra.sweep.dir={sweep_dir}",
        ],
        demo_cache,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    # One line per job when it starts and one when it ends, with its key metrics.
    log = proc.stdout + proc.stderr
    for job in range(4):
        assert f"job {job} start" in log and f"job {job} done" in log
    return sweep_dir


def test_each_job_writes_the_run_contract(seed_sweep):
    variants = set()
    for job in range(4):
        run = seed_sweep / str(job)
        results = json.loads((run / "results.json").read_text())
        assert results["status"] == "completed" and results["dataset"] == "demo"
        variants.add((results["model"], results["data"], results["experiment"]))
        for name in (
            "test_predictions.csv",
            "checkpoints/best.ckpt",
            "roc_curve.png",
            "pr_curve.png",
            "confusion_matrix.png",
            "embeddings_pca.png",
        ):
            assert (run / name).is_file(), (job, name)
        probe = results["embedding_probe"]
        assert 0.0 <= probe["accuracy"] <= 1.0 and probe["n_test"] <= 24
    assert variants == {
        ("densenet121", "rgb", "densenet121_rgb"),
        ("densenet121", "augmented", "densenet121_augmented"),
        ("densenet121", "grayscale", "densenet121_grayscale"),
        ("custom_cnn", "rgb", "custom_cnn_rgb"),
    }


def test_jobs_share_a_wandb_group_and_carry_grouping_keys(seed_sweep):
    groups = set()
    for job in range(4):
        run = read_offline_run(seed_sweep / str(job))
        results = json.loads((seed_sweep / str(job) / "results.json").read_text())
        groups.add(run.group)
        for key in ("model", "data", "experiment", "seed"):
            assert run.config[key] == results[key]
        assert run.summary["test/auroc"] == pytest.approx(results["test"]["auroc"], abs=1e-6)
    assert len(groups) == 1 and groups.pop() == seed_sweep.name


def test_report_matches_results_and_draws_every_run(seed_sweep):
    proc = run_cli(["-m", "deepinsight.report", str(seed_sweep)], seed_sweep / "cache")
    assert proc.returncode == 0, proc.stderr[-3000:]
    with (seed_sweep / "comparison.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 4
    assert list(rows[0])[:10] == [
        "run",
        "model",
        "data",
        "seed",
        "accuracy",
        "precision",
        "recall",
        "f1",
        "auroc",
        "ap",
    ]
    for row in rows:
        test = json.loads((seed_sweep / row["run"] / "results.json").read_text())["test"]
        assert float(row["accuracy"]) == test["accuracy"]
        assert float(row["precision"]) == test["macro_precision"]
        assert float(row["recall"]) == test["macro_recall"]
        assert float(row["f1"]) == test["macro_f1"]
        assert float(row["auroc"]) == test["auroc"] and float(row["ap"]) == test["ap"]
    aurocs = [float(r["auroc"]) for r in rows]
    assert aurocs == sorted(aurocs, reverse=True)
    for name in ("roc_curves.png", "pr_curves.png"):
        with Image.open(seed_sweep / name) as image:
            assert image.format == "PNG" and image.width > 200
    assert (
        "Seed" in (seed_sweep / "comparison.md").read_text()
        or "seed" in (seed_sweep / "comparison.md").read_text()
    )


def test_a_failed_job_is_recorded_and_the_sweep_goes_on(tmp_path, demo_cache):
    sweep_dir = tmp_path / "multirun"
    # lr=-1 makes Adam refuse to start: job 0 fails, and job 1 must still run after it.
    proc = run_cli(
        [
            "-m",
            "deepinsight.train",
            "-m",
            "model=custom_cnn",
            "model.optimizer.lr=-1,0.001",
            *TINY_DEMO,
            "data.image_size=32",
            "trainer.max_epochs=1",
            "logger=none",
            "analysis.enabled=false",
            f"hydra.sweep.dir={sweep_dir}",
        ],
        demo_cache,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    statuses = [
        json.loads((sweep_dir / str(j) / "results.json").read_text())["status"] for j in range(2)
    ]
    assert statuses == ["failed", "completed"]
    failed = json.loads((sweep_dir / "0" / "results.json").read_text())
    assert "learning rate" in failed["error"].lower()
    report = run_cli(["-m", "deepinsight.report", str(sweep_dir)], demo_cache)
    assert report.returncode == 0, report.stderr[-3000:]
    with (sweep_dir / "comparison.csv").open() as handle:
        rows = {r["run"]: r for r in csv.DictReader(handle)}
    assert rows["0"]["status"] == "failed" and rows["1"]["status"] == "completed"
