"""One job of a run or a sweep: a start line, a done line, and a failure that never stops a sweep.

This is the wrapper around :func:`deepinsight.train.train` that ``@hydra.main`` calls. A job
that fails leaves ``results.json`` with ``"status": "failed"``; inside a multirun the sweep goes
on with the next job, and on its own a user error ends with one ``error:`` line and exit code 2.
With ``skip_completed=true`` a job whose directory already holds a completed ``results.json``
is not run again. A SIGTERM (a scheduler's stop) is recorded and ends the process with 143.
Under DDP only global rank 0 reports and records; the other ranks just train.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig

from deepinsight.distributed import is_rank_zero
from deepinsight.errors import EXIT_USER_ERROR, DeepInsightError
from deepinsight.resume import EXIT_SIGTERM, STOPPED_BY_SIGTERM, completed_results
from deepinsight.run_directory import write_failure
from deepinsight.tracking.loggers import finish_wandb

log = logging.getLogger("deepinsight.train")


def run_keys(cfg: DictConfig) -> dict[str, Any]:
    """The flat keys every run is identified and grouped by (results.json and W&B)."""
    return {
        "model": cfg.model.net.name,
        "data": cfg.data.variant,
        "experiment": cfg.get("experiment_name"),
        "seed": cfg.seed,
    }


# Config options renamed, with their new names; selecting an old one still works, with a warning.
DEPRECATED_CHOICES = {
    ("sweep", "seed"): "sweep=paper",
    ("experiment", "seed_study"): "experiment=paper",
}


def warn_deprecated_choices() -> None:
    """One warning per renamed option the run selected (kept as aliases for one release)."""
    try:
        choices = HydraConfig.get().runtime.choices
    except ValueError:
        return
    for (group, old), new in DEPRECATED_CHOICES.items():
        if choices.get(group) == old:
            log.warning("%s=%s is deprecated and will be removed: use %s", group, old, new)


def is_multirun() -> bool:
    try:
        return HydraConfig.get().mode == RunMode.MULTIRUN
    except ValueError:
        return False


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _record_failure(run_dir: Path, cfg: DictConfig, err: BaseException) -> None:
    try:
        keys = run_keys(cfg)
    except Exception:  # the config itself may be what failed
        keys = {}
    write_failure(run_dir, keys, err)


def run_job(
    cfg: DictConfig, train: Callable[[DictConfig], dict[str, Any]]
) -> dict[str, Any] | None:
    """Run ``train(cfg)`` as one job; record a failure so a multirun carries on."""
    if not is_rank_zero():
        # A DDP rank > 0: an error ends this rank, and Lightning then stops the others.
        train(cfg)
        return None
    run_dir = Path(cfg.paths.output_dir)
    warn_deprecated_choices()
    multirun = is_multirun()
    job = f"job {HydraConfig.get().job.num} " if multirun else ""
    if cfg.get("skip_completed") and (done := completed_results(run_dir)) is not None:
        log.info("%sskipped: %s already holds a completed results.json", job, run_dir)
        return done
    log.info(
        "%sstart: model=%s data=%s seed=%s dir=%s",
        job,
        cfg.model.net.name,
        cfg.data.variant,
        cfg.seed,
        run_dir,
    )
    started = time.monotonic()
    try:
        results = train(cfg)
    except SIGTERMException:
        # Lightning turned the signal into this once the batch ended (last.ckpt is saved).
        # Record it and end the whole process, a sweep too, as SIGTERM asks.
        _record_failure(run_dir, cfg, RuntimeError(STOPPED_BY_SIGTERM))
        finish_wandb(exit_code=EXIT_SIGTERM)
        log.error("%sstopped by SIGTERM after %.0f s", job, time.monotonic() - started)
        raise SystemExit(EXIT_SIGTERM) from None
    except (Exception, KeyboardInterrupt) as err:
        _record_failure(run_dir, cfg, err)
        finish_wandb(exit_code=1)
        if isinstance(err, KeyboardInterrupt):
            raise
        if multirun:
            log.error(
                "%sfailed after %.0f s: %s: %s",
                job,
                time.monotonic() - started,
                type(err).__name__,
                err,
                exc_info=not isinstance(err, DeepInsightError),
            )
            return None
        if isinstance(err, DeepInsightError):
            print(f"error: {err}", file=sys.stderr)
            raise SystemExit(EXIT_USER_ERROR) from None
        raise
    finish_wandb()
    test = results.get("test", {})
    shown = " ".join(f"{key}={_fmt(test.get(key))}" for key in ("auroc", "ap", "f1", "accuracy"))
    log.info("%sdone in %.0f s: %s", job, time.monotonic() - started, shown)
    return results
