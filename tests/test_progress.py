"""The per-epoch log line: on when stdout is not a terminal, with the metrics that exist."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from deepinsight.progress import EpochLines


def fake_trainer(**metrics: float) -> SimpleNamespace:
    return SimpleNamespace(
        callback_metrics={k: torch.tensor(v) for k, v in metrics.items()},
        max_epochs=7,
        current_epoch=2,
    )


def test_line_shows_epoch_losses_and_val_auroc():
    line = EpochLines(enabled=True).format_line(
        fake_trainer(**{"train/loss_epoch": 0.5, "train/loss_step": 9.0, "val/auroc": 0.94125})
    )
    assert line.startswith("epoch 3/7 train/loss 0.5000 val/auroc 0.9413 (")
    assert "val/loss" not in line  # not logged, so not shown


def test_default_follows_whether_stdout_is_a_terminal(monkeypatch):
    monkeypatch.setattr("sys.stdout.isatty", lambda: True, raising=False)
    assert EpochLines().enabled is False
    monkeypatch.setattr("sys.stdout.isatty", lambda: False, raising=False)
    assert EpochLines().enabled is True
