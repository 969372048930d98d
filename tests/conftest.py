"""Shared fixtures: tiny synthetic datasets and in-process Hydra composition."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

# Never touch the network or the user's W&B/cache settings from the test suite.
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

REPO = Path(__file__).resolve().parents[1]


def make_face_like(rng: np.random.Generator, size: int, fake: bool) -> np.ndarray:
    """Smooth random texture; fakes carry a period-2 checkerboard a small CNN learns at once."""
    base = rng.normal(128, 40, (size // 4, size // 4, 3))
    img = np.kron(base, np.ones((4, 4, 1)))
    img += rng.normal(0, 4, img.shape)
    if fake:
        yy, xx = np.mgrid[:size, :size]
        img += 12 * ((yy + xx) % 2 * 2 - 1)[..., None]
    return np.clip(img, 0, 255).astype(np.uint8)


def write_folder_dataset(root: Path, per_class: dict[str, int], size: int = 32, seed: int = 0) -> Path:
    """ROOT/{train,valid,test}/{real,fake}/*.png with ``per_class[split]`` images per class."""
    rng = np.random.default_rng(seed)
    for split, n in per_class.items():
        for cls in ("real", "fake"):
            folder = root / split / cls
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                img = make_face_like(rng, size, fake=cls == "fake")
                Image.fromarray(img).save(folder / f"{cls}_{i:03d}.png")
    return root


KAGGLE_HEADER = ",original_path,id,label,label_str,path"


def write_kaggle_dataset(root: Path, per_class: dict[str, int], size: int = 32, seed: int = 0) -> Path:
    """The Kaggle 140k layout: CSVs (label 1 = real) plus real_vs_fake/real-vs-fake/ JPEGs."""
    rng = np.random.default_rng(seed)
    image_root = root / "real_vs_fake" / "real-vs-fake"
    for split, n in per_class.items():
        rows = [KAGGLE_HEADER]
        for cls, kaggle_label in (("real", 1), ("fake", 0)):
            folder = image_root / split / cls
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                name = f"{cls.upper()}{i:04d}.jpg"
                img = make_face_like(rng, size, fake=cls == "fake")
                Image.fromarray(img).save(folder / name, quality=95)
                rel = f"{split}/{cls}/{name}"
                rows.append(f"{len(rows) - 1},src/{name},{i},{kaggle_label},{cls},{rel}")
        (root / f"{split}.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """A learnable 32 px folder-layout dataset shared by the training tests (do not modify)."""
    return write_folder_dataset(
        tmp_path_factory.mktemp("tiny"), {"train": 24, "valid": 12, "test": 12}
    )


@pytest.fixture
def compose(tmp_path) -> Callable[..., object]:
    """Compose the training config in-process, with Hydra's runtime set up as ``main`` does."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from deepinsight.config import config_dir

    def _compose(overrides: list[str], run_dir: Path | None = None):
        run_dir = run_dir or tmp_path / "run"
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
            cfg = hydra_compose(
                "train",
                overrides=[*overrides, f"hydra.run.dir={run_dir}"],
                return_hydra_config=True,
            )
        with open_dict(cfg):
            cfg.hydra.runtime.output_dir = str(run_dir)
        HydraConfig.instance().set_config(cfg)
        # hydra.main hands the task its config without the hydra node; do the same.
        with open_dict(cfg):
            del cfg["hydra"]
        return cfg

    yield _compose
    GlobalHydra.instance().clear()
