"""Restartable runs with real signals: SIGKILL mid-epoch, SIGTERM, and ``ckpt_path=auto``.

One run directory, one command (three epochs of four batches), started three times:

1. killed with SIGKILL in the middle of epoch 1;
2. restarted: it must resume at epoch 1 (only the interrupted epoch lost), then gets SIGTERM in
   the middle of epoch 2 and must leave a mid-epoch ``last.ckpt`` and exit 143;
3. restarted: it must continue inside epoch 2 and finish, counting all three epochs.

``helpers.run_probes.Beacon`` holds each process at the chosen batch until the signal is sent,
so no step depends on timing.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
import torch
from helpers.cli_runs import TINY, read_until, run_cli, start_cli
from helpers.synthetic_data import write_folder_dataset

from deepinsight.errors import DeepInsightError
from deepinsight.resume import completed_results, resolve_ckpt_path

BATCHES_PER_EPOCH = 4  # 16 + 16 training images, batch 8


def command(data_root: Path, run_dir: Path, hold: tuple[int, int] | None) -> list[str]:
    args = [
        *TINY,
        f"data.root={data_root}",
        "trainer.max_epochs=3",
        "ckpt_path=auto",
        "+callbacks.beacon._target_=helpers.run_probes.Beacon",
        f"hydra.run.dir={run_dir}",
    ]
    if hold:
        args += [
            f"+callbacks.beacon.hold_epoch={hold[0]}",
            f"+callbacks.beacon.hold_batch={hold[1]}",
        ]
    return args


def beacons(lines: list[str]) -> list[str]:
    return [line.split(" ", 1)[1].strip() for line in lines if line.startswith("BEACON ")]


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def restarts(tmp_path_factory):
    base = tmp_path_factory.mktemp("restart")
    data = write_folder_dataset(base / "data", {"train": 16, "valid": 4, "test": 4})
    run_dir = base / "run"
    last = run_dir / "checkpoints" / "last.ckpt"
    seen: dict = {}

    # 1. SIGKILL in the middle of epoch 1.
    proc = start_cli(command(data, run_dir, hold=(1, 1)), cwd=base)
    seen["first"] = beacons(read_until(proc, "HOLD "))
    seen["before_kill"] = load(last)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=120)
    seen["kill_code"] = proc.returncode

    # 2. Same command: resumes; SIGTERM in the middle of epoch 2.
    proc = start_cli(command(data, run_dir, hold=(2, 1)), cwd=base)
    seen["second"] = beacons(read_until(proc, "HOLD "))
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(input="", timeout=300)  # closes stdin: the held batch ends
    seen["term_code"], seen["term_output"] = proc.returncode, out
    seen["after_term"] = load(last)
    seen["term_results"] = json.loads((run_dir / "results.json").read_text())

    # 3. Same command again, to the end.
    done = run_cli(command(data, run_dir, hold=None), cwd=base, timeout=600)
    assert done.returncode == 0, done.stdout[-4000:]
    seen["third"] = beacons(done.stdout.splitlines())
    seen["results"] = json.loads((run_dir / "results.json").read_text())
    return seen


@pytest.mark.slow
def test_auto_starts_fresh_without_a_checkpoint(restarts):
    assert restarts["first"][0] == "epoch=0 batch=0"


@pytest.mark.slow
def test_sigkill_mid_epoch_loses_at_most_that_epoch(restarts):
    assert restarts["kill_code"] == -signal.SIGKILL
    # When killed, last.ckpt held the end of epoch 0 ...
    assert restarts["before_kill"]["epoch"] == 0
    assert restarts["before_kill"]["global_step"] == BATCHES_PER_EPOCH
    # ... and the rerun continued from there: epoch 1 from its first batch.
    assert restarts["second"][0] == "epoch=1 batch=0"


@pytest.mark.slow
def test_sigterm_saves_last_ckpt_mid_epoch_and_exits_143(restarts):
    assert restarts["term_code"] == 143, restarts["term_output"][-3000:]
    # Two batches into epoch 2 (the held one included): a checkpoint from inside the epoch.
    assert restarts["after_term"]["epoch"] == 2
    assert restarts["after_term"]["global_step"] == 2 * BATCHES_PER_EPOCH + 2
    assert restarts["term_results"]["status"] == "failed"
    assert "SIGTERM" in restarts["term_results"]["error"]


@pytest.mark.slow
def test_resumed_run_finishes_and_counts_every_epoch(restarts):
    # It went on inside epoch 2, where SIGTERM stopped it, not at a new epoch.
    assert restarts["third"][0].startswith("epoch=2 ")
    assert restarts["third"][-1] == f"epoch=2 batch={BATCHES_PER_EPOCH - 1}"
    results = restarts["results"]
    assert results["status"] == "completed"
    assert results["epochs_trained"] == 3


def test_auto_picks_the_newest_of_last_and_slurm_checkpoints(tmp_path):
    assert resolve_ckpt_path("auto", tmp_path) is None  # nothing yet: start fresh
    last = tmp_path / "checkpoints" / "last.ckpt"
    last.parent.mkdir()
    last.write_bytes(b"x")
    assert resolve_ckpt_path("auto", tmp_path) == str(last)
    # Lightning's SLURM auto-requeue writes hpc_ckpt_N.ckpt into the run directory.
    hpc = tmp_path / "hpc_ckpt_1.ckpt"
    hpc.write_bytes(b"x")
    os.utime(last, (1, 1))
    assert resolve_ckpt_path("auto", tmp_path) == str(hpc)
    os.utime(hpc, (0, 0))
    assert resolve_ckpt_path("auto", tmp_path) == str(last)
    assert resolve_ckpt_path(None, tmp_path) is None
    assert resolve_ckpt_path(str(hpc), tmp_path) == str(hpc)
    with pytest.raises(DeepInsightError, match="does not exist"):
        resolve_ckpt_path(str(tmp_path / "nope.ckpt"), tmp_path)


@pytest.mark.parametrize(
    ("content", "skipped"),
    [
        (None, False),
        ('{"status": "failed", "error": "x"}', False),
        ('{"status": "compl', False),  # torn write: run it again
        ('{"status": "completed", "seed": 1}', True),
    ],
)
def test_only_a_completed_results_json_counts_as_done(tmp_path, content, skipped):
    if content is not None:
        (tmp_path / "results.json").write_text(content)
    assert (completed_results(tmp_path) is not None) is skipped
