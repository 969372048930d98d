"""Every logger option the README shows works after the README's install (fast_dev_run, tiny)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.cli_runs import FAST_DEV_RUN
from omegaconf import OmegaConf

from deepinsight.config import config_dir

pytestmark = pytest.mark.slow

LOGGERS = ("wandb", "csv", "tensorboard", "none")
# What each tracker leaves in the run directory, as glob patterns.
TRACKER_FILES = {
    "wandb": "wandb/offline-run-*/run-*.wandb",
    "csv": "csv/hparams.yaml",
    "tensorboard": "tensorboard/events.out.tfevents.*",
}


def test_logger_options_match_the_config_group():
    options = sorted(p.stem for p in (Path(config_dir()) / "logger").glob("*.yaml"))
    assert options == sorted(LOGGERS)


def test_every_logger_option_runs(tiny_dataset, tmp_path):
    sweep = tmp_path / "sweep"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "deepinsight.train",
            "-m",
            f"logger={','.join(LOGGERS)}",
            *FAST_DEV_RUN,
            f"data.root={tiny_dataset}",
            f"hydra.sweep.dir={sweep}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]

    seen = []
    for results in sorted(sweep.glob("*/results.json")):
        run_dir = results.parent
        assert json.loads(results.read_text())["status"] == "completed", run_dir
        trackers = list(OmegaConf.load(run_dir / "config.yaml").logger or {})
        name = trackers[0] if trackers else "none"
        seen.append(name)
        for tracker, pattern in TRACKER_FILES.items():
            written = list(run_dir.glob(pattern))
            assert bool(written) == (tracker == name), (name, pattern, written)
    assert sorted(seen) == sorted(LOGGERS)
