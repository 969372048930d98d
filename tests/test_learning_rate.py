"""Learning-rate schedules and the opt-in batch-size scaling rule."""

from __future__ import annotations

import functools
import math

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from deepinsight.errors import DeepInsightError
from deepinsight.learning_rate import (
    LRScaling,
    bound_keywords,
    offers_unset,
    scale_learning_rates,
)
from deepinsight.lightning_module import DeepfakeClassifier

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # Lightning's tiny-data advice


def test_scaling_rules():
    assert LRScaling.from_config(None).factor(256) == 1.0
    assert LRScaling.from_config({"rule": "none", "base_batch_size": None}).factor(256) == 1.0
    linear = LRScaling.from_config({"rule": "linear", "base_batch_size": 32})
    assert linear.factor(128) == pytest.approx(4.0)
    assert linear.factor(16) == pytest.approx(0.5)
    assert linear.factor(None) == 1.0  # no batch size known: nothing to scale by
    sqrt = LRScaling.from_config({"rule": "sqrt", "base_batch_size": 32})
    assert sqrt.factor(128) == pytest.approx(2.0)


@pytest.mark.parametrize(
    "config, words",
    [
        ({"rule": "cubic", "base_batch_size": 32}, "rule must be one of none, linear, sqrt"),
        ({"rule": "linear", "base_batch_size": None}, "base_batch_size must be"),
        ({"rule": "linear", "base_batch_size": 0}, "base_batch_size must be"),
        ({"rule": "linear", "base": 32}, "takes rule and base_batch_size"),
    ],
)
def test_bad_scaling_config_is_one_clear_line(config, words):
    with pytest.raises(DeepInsightError, match=words) as err:
        LRScaling.from_config(config)
    assert "\n" not in str(err.value)


def test_scale_learning_rates_scales_lr_and_max_lr_only():
    adam = functools.partial(torch.optim.Adam, lr=1e-3, weight_decay=1e-4)
    scaled = scale_learning_rates(adam, 4.0)
    assert bound_keywords(scaled) == {"lr": pytest.approx(4e-3), "weight_decay": 1e-4}
    assert offers_unset(scaled, "fused") and not offers_unset(scaled, "weight_decay")
    foreach = functools.partial(torch.optim.Adam, foreach=True)
    assert not offers_unset(foreach, "fused", "foreach")  # a conflicting choice was made
    assert not offers_unset(functools.partial(torch.optim.SGD, lr=0.1), "total_steps")
    cycle = functools.partial(torch.optim.lr_scheduler.OneCycleLR, max_lr=[1e-3, 2e-3])
    assert bound_keywords(scale_learning_rates(cycle, 2.0))["max_lr"] == pytest.approx([2e-3, 4e-3])
    assert scale_learning_rates(adam, 1.0) is adam
    assert scale_learning_rates(torch.optim.SGD, 2.0) is torch.optim.SGD  # not a partial


def loader(n: int = 32, batch_size: int = 8) -> DataLoader:
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(n, 3, 32, 32, generator=generator)
    labels = torch.tensor([0.0, 1.0] * (n // 2))
    return DataLoader(TensorDataset(images, labels, torch.arange(n)), batch_size=batch_size)


class LoaderDataModule(L.LightningDataModule):
    """Gives the LightningModule a ``batch_size`` to read, as DeepfakeDataModule does."""

    def __init__(self, batch_size: int) -> None:
        super().__init__()
        self.batch_size = batch_size

    def train_dataloader(self):
        return loader(batch_size=self.batch_size)

    def val_dataloader(self):
        return loader(batch_size=self.batch_size)


class RecordRates(L.Callback):
    """The learning rate each training batch ran with."""

    def __init__(self) -> None:
        self.rates: list[float] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.rates.append(trainer.optimizers[0].param_groups[0]["lr"])


def fit(model: DeepfakeClassifier, batch_size: int = 8, epochs: int = 2, callbacks=()):
    trainer = L.Trainer(
        accelerator="cpu", devices=1, max_epochs=epochs, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
        callbacks=list(callbacks),
    )  # fmt: skip
    trainer.fit(model, datamodule=LoaderDataModule(batch_size))
    return trainer


def test_one_cycle_gets_the_runs_own_length_and_steps_per_batch():
    torch.manual_seed(0)
    model = DeepfakeClassifier(
        {"name": "custom_cnn", "in_chans": 3, "widths": [4, 8]},
        optimizer=functools.partial(torch.optim.Adam, lr=1e-3),
        scheduler=functools.partial(torch.optim.lr_scheduler.OneCycleLR, max_lr=0.01),
        scheduler_interval="step",
    )
    recorder = RecordRates()
    trainer = fit(model, callbacks=[recorder])
    scheduler = trainer.lr_scheduler_configs[0].scheduler
    assert scheduler.total_steps == 8  # 2 epochs x 4 batches, from the trainer
    assert scheduler.last_epoch == 8  # stepped once per batch
    rates = recorder.rates
    assert len(rates) == 8 and rates[0] == pytest.approx(0.01 / 25)  # warm-up from max_lr / 25
    assert max(rates) == pytest.approx(0.01, rel=0.05)  # the peak, within the first epoch
    assert rates.index(max(rates)) < 4
    assert rates[-1] == pytest.approx(0.01 / 25 / 1e4)  # annealed to the floor at the end


def test_linear_rule_scales_the_configured_rates_by_the_global_batch():
    torch.manual_seed(0)
    model = DeepfakeClassifier(
        {"name": "custom_cnn", "in_chans": 3, "widths": [4, 8]},
        optimizer=functools.partial(torch.optim.Adam, lr=1e-3),
        lr_scaling={"rule": "linear", "base_batch_size": 4},
    )
    trainer = fit(model, batch_size=16, epochs=1)
    assert model.global_batch_size() == 16
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(4e-3)
    sqrt_model = DeepfakeClassifier(
        {"name": "custom_cnn", "in_chans": 3, "widths": [4, 8]},
        scheduler=functools.partial(torch.optim.lr_scheduler.OneCycleLR, max_lr=0.01),
        scheduler_interval="step",
        lr_scaling={"rule": "sqrt", "base_batch_size": 4},
    )
    trainer = fit(sqrt_model, batch_size=16, epochs=1)
    assert trainer.optimizers[0].param_groups[0]["max_lr"] == pytest.approx(0.02)
    assert math.isclose(sqrt_model.lr_scaling.factor(16), 2.0)


def test_bad_scheduler_interval_is_one_clear_line():
    with pytest.raises(DeepInsightError, match="scheduler_interval must be 'epoch' or 'step'"):
        DeepfakeClassifier({"name": "custom_cnn", "in_chans": 3}, scheduler_interval="batch")
