"""Test-only callbacks that let a test watch (and hold) a training process from the outside.

They are added to a CLI run with ``+callbacks.NAME._target_=helpers.run_probes.CLASS`` (the
test puts ``tests/`` on the subprocess's PYTHONPATH).

* :class:`RankRecorder` writes what each DDP rank saw (validation logits per epoch, the threshold
  and temperature it chose, test images, checkpoint writes) to ``OUT/rank<N>.json``, so a test
  can check the ranks against each other.
* :class:`Beacon` prints one line per training batch and can stop at a chosen batch until the
  test closes the process's stdin: the test sends its signal at a known point, with no sleeps.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import lightning as L
import torch


class RankRecorder(L.Callback):
    """Record this rank's view of the run in ``out_dir/rank<global rank>.json`` at test end."""

    def __init__(self, out_dir: str) -> None:
        self.out_dir = Path(out_dir)
        self.record: dict[str, Any] = {"val_epochs": [], "test_index": [], "checkpoint_writes": 0}
        self._val: list[tuple[torch.Tensor, ...]] = []
        self._temperature_used = 1.0

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        io = trainer.strategy.checkpoint_io
        write = io.save_checkpoint

        def counted(*args: Any, **kwargs: Any) -> None:
            self.record["checkpoint_writes"] += 1
            write(*args, **kwargs)

        io.save_checkpoint = counted  # counts the files this rank actually writes

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._val = []
        # The scores this epoch's metrics see use the temperature fitted the epoch before.
        self._temperature_used = float(pl_module.temperature)

    def on_validation_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        if trainer.sanity_checking:
            return
        images, labels, index = batch
        with torch.no_grad():
            logits = pl_module(images).float()
        self._val.append((index.cpu(), labels.cpu(), logits.cpu()))

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not self._val:
            return
        index, labels, logits = (torch.cat(parts).tolist() for parts in zip(*self._val))
        self.record["val_epochs"].append(
            {
                "epoch": trainer.current_epoch,
                "index": index,
                "label": labels,
                "logit": logits,
                "threshold": float(pl_module.decision_threshold),
                "temperature": float(pl_module.temperature),
                "temperature_used": self._temperature_used,
                "val_auroc": float(trainer.callback_metrics["val/auroc"]),
            }
        )

    def on_test_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        self.record["test_index"] += batch[2].tolist()

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.record.update(global_rank=trainer.global_rank, world_size=trainer.world_size)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        path = self.out_dir / f"rank{trainer.global_rank}.json"
        path.write_text(json.dumps(self.record))


class Beacon(L.Callback):
    """Print ``BEACON epoch=E batch=B`` after every training batch; hold at one if asked.

    With ``hold_epoch``/``hold_batch`` set, it prints ``HOLD epoch=E batch=B`` after that batch
    and blocks reading stdin until the test closes it (or kills the process).
    """

    def __init__(self, hold_epoch: int | None = None, hold_batch: int | None = None) -> None:
        self.hold = (hold_epoch, hold_batch)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        where = f"epoch={trainer.current_epoch} batch={batch_idx}"
        print(f"BEACON {where}", flush=True)
        if (trainer.current_epoch, batch_idx) == self.hold:
            print(f"HOLD {where}", flush=True)
            sys.stdin.readline()
