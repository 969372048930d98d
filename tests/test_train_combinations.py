"""Every model x data combination composes and runs a fast_dev_run end to end."""

from __future__ import annotations

import json

import pytest

from deepinsight.train import train

MODELS = ("densenet121", "custom_cnn", "efficientnet")
VARIANTS = ("rgb", "grayscale", "augmented")


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("model", MODELS)
def test_fast_dev_run(model, variant, compose, tiny_dataset, tmp_path):
    cfg = compose(
        [
            f"model={model}",
            f"data={variant}",
            f"data.root={tiny_dataset}",
            "data.image_size=32",
            "data.batch_size=4",
            "trainer=cpu",
            "trainer.fast_dev_run=true",
            "logger=none",
            "analysis.enabled=false",
        ],
        run_dir=tmp_path / "run",
    )
    assert cfg.model.net.in_chans == (1 if variant == "grayscale" else 3)
    results = train(cfg)
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["status"] == "completed"
    assert (saved["model"], saved["data"]) == (model, variant)
    # fast_dev_run tests a single batch.
    assert saved["test"]["n"] == 4
    assert results["test"] == saved["test"]
    # The first test batch of the class-sorted split holds one class: AUROC is undefined.
    assert saved["test"]["auroc"] is None and saved["test"]["per_class"]["real"]["support"] == 4


def test_experiment_configs_reproduce_seed_settings(compose, tmp_path):
    for name in (
        "densenet121_rgb",
        "densenet121_augmented",
        "densenet121_grayscale",
        "custom_cnn_rgb",
        "efficientnet_rgb",
    ):
        cfg = compose([f"experiment={name}", f"data.root={tmp_path}"])
        assert cfg.experiment_name == name
        assert cfg.data.image_size == 224
        assert cfg.data.batch_size == 32
        assert cfg.trainer.max_epochs == 20
        assert cfg.model.optimizer.lr == pytest.approx(1e-3)
        # On the demo data, the demo's budget: the sweep of the study in minutes on a CPU.
        demo = compose([f"experiment={name}"])
        assert (demo.data.image_size, demo.data.batch_size, demo.trainer.max_epochs) == (64, 64, 7)
        assert cfg.model.optimizer._target_ == "torch.optim.Adam"
        # The seed's constant learning rate on both sources, not the Quickstart's one-cycle.
        assert cfg.model.scheduler is None and demo.model.scheduler is None
        assert demo.trainer.check_val_every_n_epoch == 1
    assert compose(["experiment=densenet121_grayscale"]).data.variant == "grayscale"
    assert compose(["experiment=custom_cnn_rgb"]).model.net.name == "custom_cnn"


def test_defaults_follow_the_data_source(compose, tmp_path):
    demo = compose([])
    real = compose([f"data.root={tmp_path}"])
    assert (demo.data.image_size, demo.data.batch_size) == (64, 64)
    assert (real.data.image_size, real.data.batch_size, real.trainer.max_epochs) == (224, 32, 20)
    assert real.model.optimizer.lr == pytest.approx(1e-3)
    # The Quickstart's schedule on the demo: one-cycle over 2 epochs, stepped per batch; the
    # seed's constant lr on real data.
    assert demo.trainer.max_epochs == 2 and demo.trainer.num_sanity_val_steps == 0
    assert demo.trainer.check_val_every_n_epoch == 2  # validated once, at the end of the cycle
    assert compose(["trainer.max_epochs=5"]).trainer.check_val_every_n_epoch == 5
    assert real.trainer.check_val_every_n_epoch == 1
    assert demo.model.scheduler._target_ == "torch.optim.lr_scheduler.OneCycleLR"
    assert demo.model.scheduler_interval == "step"
    assert real.model.scheduler is None and real.model.scheduler_interval == "epoch"
    assert real.trainer.num_sanity_val_steps == 2
    assert (demo.analysis.max_samples, real.analysis.max_samples) == (500, 2000)
    # Explicit overrides always win.
    assert compose([f"data.root={tmp_path}", "data.image_size=96"]).data.image_size == 96
    assert compose(["trainer.max_epochs=3"]).trainer.max_epochs == 3


def test_cpu_precision_is_bf16_only_where_native(compose):
    cfg = compose([])
    import torch

    from deepinsight.config import cpu_has_bf16

    if not torch.cuda.is_available():
        assert cfg.trainer.precision == ("bf16-mixed" if cpu_has_bf16() else "32-true")
    assert compose(["trainer.precision=bf16-mixed"]).trainer.precision == "bf16-mixed"
