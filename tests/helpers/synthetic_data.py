"""Tiny synthetic datasets written to disk in the layouts DeepInsight reads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def make_face_like(rng: np.random.Generator, size: int, fake: bool) -> np.ndarray:
    """Smooth random texture; fakes carry a period-2 checkerboard a small CNN learns at once."""
    base = rng.normal(128, 40, (size // 4, size // 4, 3))
    img = np.kron(base, np.ones((4, 4, 1)))
    img += rng.normal(0, 4, img.shape)
    if fake:
        yy, xx = np.mgrid[:size, :size]
        img += 12 * ((yy + xx) % 2 * 2 - 1)[..., None]
    return np.clip(img, 0, 255).astype(np.uint8)


def write_folder_dataset(
    root: Path, per_class: dict[str, int], size: int = 32, seed: int = 0
) -> Path:
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


def write_kaggle_dataset(
    root: Path, per_class: dict[str, int], size: int = 32, seed: int = 0
) -> Path:
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
