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


def test_one_line_per_epoch_with_or_without_validation(caplog):
    import logging

    lines = EpochLines(enabled=True)
    trainer = SimpleNamespace(**vars(fake_trainer(**{"train/loss_epoch": 0.5})))
    trainer.sanity_checking, trainer.is_global_zero = False, True
    with caplog.at_level(logging.INFO, logger="deepinsight.train"):
        lines.on_train_epoch_start(trainer, None)  # an epoch the demo does not validate
        lines.on_train_epoch_end(trainer, None)
        lines.on_train_epoch_start(trainer, None)  # a validated epoch: its line comes once
        lines.on_validation_end(trainer, None)
        lines.on_train_epoch_end(trainer, None)
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == [
        "epoch 3/7 train/loss 0.5000",
        "epoch 3/7 train/loss 0.5000",
    ]
