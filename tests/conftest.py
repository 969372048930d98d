"""Shared fixtures: tiny synthetic datasets and in-process Hydra composition."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from helpers.synthetic_data import write_folder_dataset

# Never touch the network or the user's W&B/cache settings from the test suite.
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
# Demo datasets, image-check records and decoded caches go to a throw-away folder, never into
# the user's ~/.cache/deepinsight (subprocesses inherit it).
os.environ["DEEPINSIGHT_CACHE"] = tempfile.mkdtemp(prefix="deepinsight-tests-")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """A learnable 32 px folder-layout dataset shared by the training tests (do not modify)."""
    return write_folder_dataset(
        tmp_path_factory.mktemp("tiny"), {"train": 24, "valid": 12, "test": 12}
    )


@pytest.fixture
def compose(tmp_path) -> Callable[..., object]:
    """Compose the training config in-process, with Hydra's runtime set up as ``main`` does."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from deepinsight.config import config_dir

    def _compose(overrides: list[str], run_dir: Path | None = None):
        run_dir = run_dir or tmp_path / "run"
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
            cfg = hydra_compose(
                "train",
                overrides=[*overrides, f"hydra.run.dir={run_dir}"],
                return_hydra_config=True,
            )
        with open_dict(cfg):
            cfg.hydra.runtime.output_dir = str(run_dir)
        HydraConfig.instance().set_config(cfg)
        # hydra.main hands the task its config without the hydra node; do the same.
        with open_dict(cfg):
            del cfg["hydra"]
        return cfg

    yield _compose
    GlobalHydra.instance().clear()


@pytest.fixture
def one_torch_thread():
    """Run each test with one torch thread (modules opt in with ``pytestmark``).

    The tests push batches of 1 to 8 tiny images: per-op work is so small that a second thread
    only adds synchronisation, and on a shared 2-core machine its spin-waiting made these tests
    five times slower (measured: 116 s against 22 s).
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# A tiny CLI training run: custom CNN, 32 px, 2 epochs, no tracker, no embedding analysis.
TINY_TRAIN_OVERRIDES = [
    "model=custom_cnn", "data=rgb", "data.image_size=32", "data.batch_size=8",
    "trainer=cpu", "trainer.max_epochs=2", "logger=none", "analysis.enabled=false",
]  # fmt: skip


@pytest.fixture(scope="session")
def tiny_trained_run(tiny_dataset, tmp_path_factory) -> Path:
    """One finished training run on ``tiny_dataset``, shared by the tests that only read it
    (predict and evaluate reproduce its outputs). Do not modify its files."""
    import subprocess
    import sys

    from helpers.inference_fixtures import ONE_THREAD_ENV

    base = tmp_path_factory.mktemp("trained")
    run_dir = base / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "deepinsight.train", *TINY_TRAIN_OVERRIDES,
         f"data.root={tiny_dataset}", f"hydra.run.dir={run_dir}"],
        cwd=base, capture_output=True, text=True, timeout=600, env=ONE_THREAD_ENV,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run_dir


def pytest_sessionfinish(session, exitstatus) -> None:
    """Remove the throw-away cache folder made above."""
    import shutil

    shutil.rmtree(os.environ["DEEPINSIGHT_CACHE"], ignore_errors=True)
