"""Restartable runs and sweeps: ``ckpt_path=auto``, ``skip_completed`` and a checkpoint on SIGTERM.

A run is restarted by running the same command again into the same run directory (a fixed
``hydra.run.dir``, or the same ``hydra.sweep.dir`` for a multirun):

* ``ckpt_path=auto`` continues from the newest checkpoint the run left: ``checkpoints/last.ckpt``
  (written after every validated epoch, and on SIGTERM) or Lightning's ``hpc_ckpt_N.ckpt`` (written
  when SLURM signals an auto-requeue). Without either it starts fresh.
* ``skip_completed=true`` leaves a job alone when its ``results.json`` says ``completed``.
* :class:`CheckpointOnSigterm` turns a scheduler's SIGTERM into a ``last.ckpt`` before the
  process exits: Lightning catches the signal, finishes the current batch and raises
  ``SIGTERMException``; this callback saves on that exception.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.exceptions import SIGTERMException

from deepinsight.errors import DeepInsightError

log = logging.getLogger(__name__)

AUTO = "auto"
# 128 + SIGTERM: how a shell reports a process ended by SIGTERM, so schedulers see it as such.
EXIT_SIGTERM = 143
STOPPED_BY_SIGTERM = "stopped by SIGTERM; run the same command with ckpt_path=auto to continue"
STOPPED_BY_SIGTERM = "stopped by SIGTERM; rerun the same command with ckpt_path=auto to continue"


def checkpoints_to_resume(run_dir: Path) -> list[Path]:
    """The checkpoints a restart could continue from, newest last."""
    found = [p for p in (run_dir / "checkpoints" / "last.ckpt",) if p.is_file()]
    found += sorted(run_dir.glob("hpc_ckpt_*.ckpt"))
    return sorted(found, key=lambda p: p.stat().st_mtime)


def resolve_ckpt_path(ckpt_path: str | None, run_dir: Path) -> str | None:
    """The checkpoint ``trainer.fit`` should resume from; ``auto`` picks the run's newest one."""
    if ckpt_path in (None, "", "null"):
        return None
    if ckpt_path == AUTO:
        found = checkpoints_to_resume(Path(run_dir))
        if not found:
            log.info("ckpt_path=auto: no checkpoint in %s yet, starting fresh", run_dir)
            return None
        log.info("ckpt_path=auto: resuming from %s", found[-1])
        return str(found[-1])
    if not Path(ckpt_path).is_file():
        raise DeepInsightError(f"ckpt_path '{ckpt_path}' does not exist (or use ckpt_path=auto)")
    return str(ckpt_path)


def completed_results(run_dir: Path) -> dict[str, Any] | None:
    """The run's results.json if it records a completed run, else None (missing, failed, torn)."""
    try:
        results = json.loads((Path(run_dir) / "results.json").read_text())
    except (OSError, ValueError):
        return None
    return results if isinstance(results, dict) and results.get("status") == "completed" else None


class CheckpointOnSigterm(L.Callback):
    """On SIGTERM during ``fit``, save the training state as ``last.ckpt`` before exiting.

    The checkpoint is taken mid-epoch; resuming from it finishes that epoch's remaining batches
    (Lightning warns that the loader restarts its order). The SIGKILL case needs no callback:
    ``last.ckpt`` from the last validated epoch is already there.
    """

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        if not isinstance(exception, SIGTERMException) or trainer.state.fn != TrainerFn.FITTING:
            return
        checkpoint = trainer.checkpoint_callback
        if not isinstance(checkpoint, ModelCheckpoint) or checkpoint.dirpath is None:
            return
        path = Path(checkpoint.dirpath) / f"{checkpoint.CHECKPOINT_NAME_LAST}.ckpt"
        trainer.save_checkpoint(path)
        if trainer.is_global_zero:
            log.warning("SIGTERM: saved %s; rerun with ckpt_path=auto to continue", path)
