"""Configs that fail loudly instead of silently, and choices that compose.

Each test is one trap a newcomer could fall into: an unset data root that trained on the demo,
precision and worker counts that ignored the allocation, a DDP preset that overrode
``deterministic`` and broke SLURM, a cache that could only move by environment variable,
augmentations that needed hand-written variant strings, settings repeated in two files, and
"seed" meaning two things. (The unset root: ``test_data_layouts.py``; Optuna studies that mix
datasets: ``test_scaling_optuna.py``.)
"""

from __future__ import annotations

import logging

import pytest
import torch
from omegaconf import OmegaConf

from deepinsight import config
from deepinsight.config import config_dir
from deepinsight.data.datamodule import DeepfakeDataModule
from deepinsight.data.transforms import build_transforms
from deepinsight.errors import DeepInsightError


@pytest.fixture
def gpu_machine(monkeypatch):
    """Make the config see a bf16-capable CUDA GPU, so the CPU/GPU choice is what is tested."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(config, "cpu_has_bf16", lambda: False)


@pytest.mark.parametrize(
    ("accelerator", "precision"),
    [("cpu", "32-true"), ("gpu", "bf16-mixed"), ("cuda", "bf16-mixed"), ("auto", "bf16-mixed")],
)
def test_precision_follows_the_accelerator_not_the_machine(
    gpu_machine, compose, accelerator, precision
):
    cfg = compose([f"trainer.accelerator={accelerator}"])
    assert cfg.trainer.precision == precision


def test_precision_on_a_cpu_only_machine(monkeypatch, compose):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(config, "cpu_has_bf16", lambda: True)
    assert compose([]).trainer.precision == "bf16-mixed"
    monkeypatch.setattr(config, "cpu_has_bf16", lambda: False)
    assert compose(["trainer.accelerator=cpu"]).trainer.precision == "32-true"


def test_workers_count_the_cpus_the_job_may_use(monkeypatch):
    monkeypatch.setattr(config.os, "cpu_count", lambda: 128)  # the whole node
    monkeypatch.setattr(config.os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    assert config.default_workers() == 3
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "2")
    assert config.default_workers() == 2
    monkeypatch.setattr(config.os, "sched_getaffinity", lambda pid: set(range(64)), raising=False)
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "16")
    assert config.default_workers() == 8  # the cap: more rarely helps one GPU


def test_ddp_preset_respects_deterministic(compose):
    assert compose(["trainer=ddp", "trainer.deterministic=true"]).trainer.benchmark is False
    assert compose(["trainer=ddp"]).trainer.benchmark is True


def test_submitit_slurm_needs_a_number_of_devices_and_says_so():
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    def launcher(overrides):
        with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
            cfg = hydra_compose(
                "train",
                overrides=["trainer=ddp", "hydra/launcher=submitit_slurm", *overrides],
                return_hydra_config=True,
            )
        return cfg.hydra.launcher

    assert launcher(["trainer.devices=4"]).gpus_per_node == 4
    assert launcher(["trainer.devices=[0,1]"]).tasks_per_node == 2
    with pytest.raises(Exception, match="needs trainer.devices as the GPUs per node"):
        launcher([]).gpus_per_node  # noqa: B018  (resolving is the test)


def test_cache_dir_is_a_config_option(compose, tmp_path, tiny_dataset):
    cache = tmp_path / "elsewhere"
    assert compose([f"paths.cache_dir={cache}"]).data.cache_dir == str(cache)
    dm = DeepfakeDataModule(root=str(tiny_dataset), image_size=32, cache_dir=str(cache))
    dm.resolve()
    assert (cache / "decoded").is_dir() and (cache / "verified").is_dir()


@pytest.mark.parametrize(
    ("overrides", "variant", "channels"),
    [
        ([], "rgb", 3),
        (["data=grayscale"], "grayscale", 1),
        (["data=augmented"], "augmented", 3),
        (["augment=affine"], "augmented", 3),
        (["data=blur_jpeg"], "rgb+blurjpeg", 3),
        (["data=grayscale", "augment=blur_jpeg"], "grayscale+blurjpeg", 1),
        (["data=grayscale", "augment=affine"], "grayscale+affine", 1),
        (["data=augmented", "augment=blur_jpeg"], "augmented+blurjpeg", 3),
        (["data=grayscale", "augment=[affine,blur_jpeg]"], "grayscale+affine+blurjpeg", 1),
        (["experiment=densenet121_grayscale", "augment=blur_jpeg"], "grayscale+blurjpeg", 1),
    ],
)
def test_augmentations_compose_with_any_colour_mode(compose, overrides, variant, channels):
    cfg = compose(overrides)
    assert cfg.data.variant == variant
    assert cfg.model.net.in_chans == channels


def test_a_composed_variant_trains_with_both_augmentations():
    steps = build_transforms("grayscale+affine+blurjpeg", 32, train=True).transforms
    names = {type(t).__name__ for t in steps} | {
        type(inner).__name__ for t in steps for inner in getattr(t, "transforms", [])
    }
    assert {"RandomAffine", "RandomApply", "Grayscale"} <= names
    with pytest.raises(DeepInsightError, match="already has the affine"):
        build_transforms("augmented+affine", 32, train=True)


def test_paper_settings_do_not_repeat_the_data_defaults(compose):
    paper = OmegaConf.load(f"{config_dir()}/experiment/paper.yaml")
    assert "data" not in paper  # data/rgb.yaml is the one source of size and batch
    for root, size, batch in (("demo", 64, 64), ("/data/140k", 224, 32)):
        cfg = compose(["experiment=densenet121_rgb", f"data.root={root}"])
        assert (cfg.data.image_size, cfg.data.batch_size) == (size, batch)
        plain = compose([f"data.root={root}"])
        assert (plain.data.image_size, plain.data.batch_size) == (size, batch)


def test_the_study_is_paper_and_the_old_names_are_aliases_that_warn(compose, caplog):
    from deepinsight.job import warn_deprecated_choices

    new = compose(["experiment=paper"])
    old = compose(["experiment=seed_study"])
    for key in ("trainer", "model", "data"):
        assert OmegaConf.to_container(new[key]) == OmegaConf.to_container(old[key])
    with caplog.at_level(logging.WARNING, logger="deepinsight.train"):
        warn_deprecated_choices()  # the compose fixture left experiment=seed_study's choices
    assert "experiment=seed_study is deprecated" in caplog.text
    assert "use experiment=paper" in caplog.text
    sweep = OmegaConf.load(f"{config_dir()}/sweep/paper.yaml")
    assert "custom_cnn_rgb" in sweep.hydra.sweeper.params.experiment
    assert OmegaConf.load(f"{config_dir()}/sweep/seed.yaml").defaults == ["paper"]


@pytest.mark.parametrize(
    ("root", "label"), [("demo", "demo"), ("/data/140k/", "140k"), ("/d/my set", "my_set")]
)
def test_optuna_study_names_carry_the_dataset(compose, root, label):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = hydra_compose(
            "train",
            overrides=["hparams_search=densenet121", f"data.root='{root}'"],
            return_hydra_config=True,
        )
    assert cfg.hydra.sweeper.study_name == f"densenet121-rgb-{label}"
    assert cfg.hydra.sweep.dir.endswith(f"densenet121-rgb-{label}")


def test_demo_is_the_same_named_choice_for_evaluate():
    """`data.root=demo` means the embedded demo wherever a command takes a data root."""
    from deepinsight.evaluate import resolve_datasets

    (dataset,) = resolve_datasets({"data": {"root": "demo"}, "split": "test", "name": None})
    assert dataset.name == "demo" and dataset.root.name.startswith("demo-v")
    assert {s.label for s in dataset.samples} == {0, 1}
    with pytest.raises(DeepInsightError, match="data.root is empty"):
        resolve_datasets({"data": {"root": ""}, "split": "test", "name": None})
