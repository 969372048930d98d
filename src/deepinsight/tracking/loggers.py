"""Experiment trackers: building the configured Lightning loggers and feeding W&B its extras.

W&B never needs the network here: its mode comes from ``deepinsight.config.wandb_mode``
(offline unless the user has set W&B up online), it falls back to offline when the server does
not answer (``wandb_safety``), and its files stay inside the run directory.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from hydra.utils import instantiate
from lightning.pytorch.loggers import Logger, WandbLogger
from omegaconf import DictConfig, OmegaConf

from deepinsight import CLASS_NAMES
from deepinsight.tracking.wandb_safety import safe_wandb_mode

log = logging.getLogger(__name__)


def build_loggers(logger_cfg: DictConfig | None) -> list[Logger]:
    """Instantiate every logger under ``cfg.logger`` (``logger=none`` gives an empty list)."""
    loggers: list[Logger] = []
    for name, one in (logger_cfg or {}).items():
        if not one or "_target_" not in one:
            continue
        if name == "wandb":
            mode = safe_wandb_mode(one.get("mode"), one.get("save_dir"))
            if mode == "disabled":
                continue
            loggers.append(instantiate(one, mode=mode))
            continue
        loggers.append(instantiate(one))
    return loggers


def wandb_run(loggers: Sequence[Logger]):
    """The live W&B run, or None when W&B is not among the loggers."""
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            return logger.experiment
    return None


def log_run_config(loggers: Sequence[Logger], cfg: DictConfig, run_keys: Mapping[str, Any]) -> None:
    """Log the resolved config, plus flat keys (model, data, experiment, seed) to group runs by."""
    resolved = OmegaConf.to_container(cfg, resolve=True)
    for logger in loggers:
        logger.log_hyperparams({**run_keys, "config": resolved})


def log_test_artifacts(
    loggers: Sequence[Logger],
    summary: Mapping[str, Any],
    labels: np.ndarray,
    scores: np.ndarray,
    images: Sequence[Path] = (),
) -> None:
    """Send the final test metrics, ROC/PR curves, confusion matrix and figures to W&B."""
    run = wandb_run(loggers)
    if run is None:
        return
    import wandb

    preds = (scores >= summary["threshold"]).astype(int)
    probas = np.stack([1.0 - scores, scores], axis=1)
    payload: dict[str, Any] = {
        "test/roc": wandb.plot.roc_curve(labels, probas, labels=list(CLASS_NAMES)),
        "test/pr": wandb.plot.pr_curve(labels, probas, labels=list(CLASS_NAMES)),
        "test/confusion": wandb.plot.confusion_matrix(
            y_true=labels.tolist(), preds=preds.tolist(), class_names=list(CLASS_NAMES)
        ),
    }
    for image in images:
        payload[f"test/{Path(image).stem}"] = wandb.Image(str(image))
    run.log(payload)
    for key, value in summary.items():
        if isinstance(value, (int, float)):
            run.summary[f"test/{key}"] = value


def finish_wandb(exit_code: int = 0) -> None:
    """Close the W&B run so the next job of a multirun starts a fresh one."""
    try:
        import wandb
    except ImportError:
        return
    if wandb.run is not None:
        wandb.finish(exit_code=exit_code)
        # finish() can return before the service has flushed the .wandb file; teardown waits
        # for it, so the run on disk is complete when the job (or the process) ends.
        wandb.teardown()
