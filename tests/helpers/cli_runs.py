"""Running ``python -m deepinsight.train`` as a real process from a test, and talking to it.

The scaling tests need real processes (DDP ranks, launchers, signals), so they go through the
CLI. Everything here keeps such runs tiny and offline, and puts ``tests/`` on the child's
PYTHONPATH so ``helpers.run_probes`` callbacks can be added with ``+callbacks.x._target_=...``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parents[1]

# A model and data small enough that a CPU epoch takes well under a second.
TINY = [
    "model=custom_cnn",
    "data.image_size=32",
    "data.batch_size=8",
    "data.num_workers=0",  # worker start-up would dwarf decoding a few 32 px images
    "trainer=cpu",
    "analysis.enabled=false",
    "logger=csv",
]

# One fast_dev_run batch of the tiny model, keeping the embedding analysis (capped) in the path.
FAST_DEV_RUN = [
    "trainer.fast_dev_run=true",
    "model=custom_cnn",
    "trainer=cpu",
    "data.image_size=32",
    "data.batch_size=8",
    "data.num_workers=0",
    "analysis.max_samples=16",
]


def cli_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a CLI run: offline W&B, one torch thread, test helpers importable."""
    path = os.pathsep.join(p for p in (str(TESTS_DIR), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path, "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1"}
    env.update(extra or {})
    return env


def train_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "deepinsight.train", *args]


def run_cli(
    args: list[str], cwd: Path, env: Mapping[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess:
    """Run the training CLI to the end; stdout and stderr together in ``.stdout``."""
    return subprocess.run(
        train_command(*args),
        cwd=cwd,
        env=cli_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )


def start_cli(args: list[str], cwd: Path, env: Mapping[str, str] | None = None) -> subprocess.Popen:
    """Start the training CLI with a pipe to its stdin (see ``run_probes.Beacon``)."""
    return subprocess.Popen(
        train_command(*args),
        cwd=cwd,
        env=cli_env(env),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def read_until(proc: subprocess.Popen, prefix: str) -> list[str]:
    """Read the process's output line by line up to the first line starting with ``prefix``."""
    seen: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        seen.append(line)
        if line.startswith(prefix):
            return seen
    proc.wait()
    tail = "".join(seen[-40:])
    raise AssertionError(f"process ended (code {proc.returncode}) before '{prefix}':\n{tail}")
