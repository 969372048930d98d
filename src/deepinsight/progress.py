"""Readable logs when nobody is watching: one line per epoch instead of a progress bar.

A live bar is right on a terminal. In CI, ``nohup`` or a SLURM log, the same bar becomes
thousands of carriage-return fragments, so there the bar is off (``trainer.enable_progress_bar``
follows :func:`stdout_is_terminal`) and :class:`EpochLines` prints a summary per epoch.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from lightning.pytorch.callbacks import Callback

log = logging.getLogger("deepinsight.train")

# Shown when logged, in this order; val/auroc is what model selection watches.
EPOCH_KEYS = ("train/loss", "val/loss", "val/auroc", "val/ap", "val/f1")


def stdout_is_terminal() -> bool:
    """True when a person is watching standard output live (a TTY)."""
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):  # replaced or closed stdout
        return False


class EpochLines(Callback):
    """Log ``epoch 3/7 train/loss 0.512 val/loss 0.431 val/auroc 0.9412 (96 s)`` per epoch.

    Args:
        enabled: ``None`` (default) logs only when stdout is not a terminal, where the progress
            bar is off; ``True``/``False`` force it.
    """

    def __init__(self, enabled: bool | None = None) -> None:
        self.enabled = (not stdout_is_terminal()) if enabled is None else bool(enabled)
        self._started = time.monotonic()

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        self._started = time.monotonic()

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self._validated = False

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        # After validation, so val/auroc belongs to this epoch; skipped during the sanity check.
        if not self.enabled or trainer.sanity_checking or not trainer.is_global_zero:
            return
        self._validated = True
        log.info(self.format_line(trainer))

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        # An epoch without validation (check_val_every_n_epoch > 1, as on the demo) still gets
        # its line; Lightning validates before this hook, so a validated epoch has had it.
        if self.enabled and trainer.is_global_zero and not getattr(self, "_validated", False):
            log.info(self.format_line(trainer))

    def format_line(self, trainer: Any) -> str:
        metrics = trainer.callback_metrics
        shown = []
        for key in EPOCH_KEYS:
            value = metrics.get(f"{key}_epoch", metrics.get(key))
            if value is not None:
                shown.append(f"{key} {float(value):.4f}")
        total = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else "?"
        elapsed = time.monotonic() - self._started
        return f"epoch {trainer.current_epoch + 1}/{total} {' '.join(shown)} ({elapsed:.0f} s)"
