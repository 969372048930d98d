"""The prepared GPU suite runs end to end on the CPU at tiny sizes (its --dry-run)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run_dry_suite(out: Path, cache: Path) -> None:
    done = subprocess.run(
        [sys.executable, "benchmarks/gpu_suite.py", "--dry-run", "--models", "custom_cnn",
         "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=600,
        env={**os.environ, "DEEPINSIGHT_CACHE": str(cache)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.slow
def test_gpu_suite_dry_run_writes_every_figure(tmp_path):
    out = tmp_path / "suite.json"
    run_dry_suite(out, tmp_path / "cache")
    results = json.loads(out.read_text())
    steps = results["steps"]
    assert set(steps) == {"pytest_gpu", "loader", "inference", "data_wait_rgb",
                          "data_wait_augmented", "train_throughput", "batch_scaling",
                          "end_to_end", "profile_custom_cnn"}  # fmt: skip
    assert not [name for name, step in steps.items() if "error" in step or "skipped" in step]
    assert steps["pytest_gpu"]["result"]["returncode"] == 0
    loader = steps["loader"]["result"]["images_per_s"]
    assert loader["imagefolder"] > 0 and loader["decoded_cache_u8"] > 0
    for variant in ("rgb", "augmented"):
        assert 0 <= steps[f"data_wait_{variant}"]["result"]["wait_fraction"] <= 1
    rows = steps["train_throughput"]["result"]
    assert {(r["channels_last"], r["compile"]) for r in rows} == {(False, False), (True, False)}
    assert all(r["lightning_images_per_s"] > 0 and r["plain_images_per_s"] > 0 for r in rows)
    scaled = steps["batch_scaling"]["result"]
    assert [(r["model"], r["batch_size"]) for r in scaled] == [("custom_cnn", 8)]
    projection = results["sweep_projection"]
    assert "projection" in projection["kind"]
    assert projection["eager"]["total_minutes"] > 0
    assert set(projection["eager"]["minutes_per_variant"]) == {"custom_cnn_rgb"}
    # The real command ran end to end and its run directory is complete.
    e2e = steps["end_to_end"]["result"]
    assert e2e["run_directory_complete"] and e2e["missing_files"] == []
    assert set(e2e["timings"]) == {"data", "fit", "test", "outputs"}
    assert e2e["train_images_per_s"] > 0 and e2e["val_images_per_s"] > 0
    assert 0 <= e2e["data_wait_fraction"] <= 1
    assert e2e["sweep_projection"]["total_minutes"] > 0
    profiled = steps["profile_custom_cnn"]["result"]
    assert profiled["step_ms"] > 0 and profiled["top_ops"]
    assert (tmp_path / profiled["trace"]).is_file()

    # A second call with the same --out keeps what the first measured and measures nothing.
    run_dry_suite(out, tmp_path / "cache")
    kept = json.loads(out.read_text())["steps"]
    assert set(kept) == set(steps)
    assert all(step.get("from_earlier_call") for step in kept.values())
    assert kept["end_to_end"]["result"] == e2e
