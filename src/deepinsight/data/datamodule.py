"""The LightningDataModule that serves every input variant from the demo data or from disk."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from deepinsight.data.datasets import ImageFileDataset, random_subset
from deepinsight.data.demo import ensure_demo_dataset, is_demo_root
from deepinsight.data.image_io import DEFAULT_MAX_PIXELS
from deepinsight.data.layouts import SPLITS, DatasetSplits, discover_splits
from deepinsight.data.transforms import build_transforms, make_preprocessing
from deepinsight.data.verify import check_split, drop_unreadable

log = logging.getLogger(__name__)


class DeepfakeDataModule(L.LightningDataModule):
    """Real-vs-fake images for one input variant (``rgb``, ``grayscale`` or ``augmented``,
    optionally ``+blurjpeg``).

    With ``root=None`` it uses the embedded demo dataset (built on first use); otherwise the
    Kaggle 140k layout or a ``ROOT/{train,valid,test}/{real,fake}`` tree. Every image is decoded
    once in :meth:`resolve`, so unreadable files are skipped (or fail the run) before training.
    """

    def __init__(
        self,
        variant: str = "rgb",
        root: str | None = None,
        image_size: int = 224,
        batch_size: int = 32,
        num_workers: int = 0,
        pin_memory: bool = False,
        augmentation: Mapping[str, Any] | None = None,
        blur_jpeg: Mapping[str, Any] | None = None,
        on_bad_file: str = "skip",
        verify_images: bool = True,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
        demo: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.variant = variant
        self.root = root
        self.image_size = int(image_size)
        self.batch_size = int(batch_size)
        self.num_workers = int(num_workers)
        self.pin_memory = pin_memory and torch.cuda.is_available()
        self.augmentation = dict(augmentation or {})
        # Blur+JPEG settings, used by a "+blurjpeg" variant on the training split only.
        self.blur_jpeg = dict(blur_jpeg or {})
        self.on_bad_file = on_bad_file
        self.verify_images = verify_images
        self.max_pixels = max_pixels
        # Unset (None) demo keys fall back to the calibrated DEMO_DEFAULTS.
        self.demo = {k: v for k, v in dict(demo or {}).items() if v is not None}
        # Fails fast on an unknown variant, before any data is touched.
        self.preprocessing = make_preprocessing(variant, self.image_size)
        self.splits: DatasetSplits | None = None
        self.datasets: dict[str, ImageFileDataset] = {}

    @property
    def dataset_name(self) -> str:
        """``demo``, ``kaggle`` or ``folders`` (valid after :meth:`resolve`)."""
        if self.uses_demo:
            return "demo"
        return self.splits.layout if self.splits else "unresolved"

    def resolve(self) -> DatasetSplits:
        """Locate (or build) the data, and decode-check every file. Idempotent."""
        if self.splits is not None:
            return self.splits
        found = discover_splits(self._data_root())
        clean = {}
        for split in SPLITS:
            samples = found.splits[split]
            if self.verify_images:
                samples = drop_unreadable(samples, split, self.on_bad_file, self.max_pixels)
            check_split(samples, split)
            clean[split] = samples
        self.splits = DatasetSplits(found.layout, found.root, clean)
        sizes = ", ".join(f"{s}={len(v)}" for s, v in clean.items())
        log.info("data: %s layout at %s (%s)", found.layout, found.root, sizes)
        return self.splits

    def prepare_data(self) -> None:
        # Runs on one process per node: build the demo dataset there, not in every rank.
        self._data_root()

    @property
    def uses_demo(self) -> bool:
        return is_demo_root(self.root)

    def _data_root(self) -> str | Path:
        """``root``, or the embedded demo dataset's folder (built on first use)."""
        if not self.uses_demo:
            return self.root
        return ensure_demo_dataset(**self.demo)

    def setup(self, stage: str | None = None) -> None:
        splits = self.resolve()
        for split in SPLITS:
            if split not in self.datasets:
                transform = build_transforms(
                    self.variant,
                    self.image_size,
                    train=split == "train",
                    augmentation=self.augmentation,
                    blur_jpeg=self.blur_jpeg,
                )
                self.datasets[split] = ImageFileDataset(
                    splits.splits[split], transform, self.max_pixels
                )

    def dataset(self, split: str) -> ImageFileDataset:
        self.setup()
        return self.datasets[split]

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        return DataLoader(
            self.dataset(split),
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("valid", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def eval_dataloader(
        self, split: str, max_samples: int | None = None, seed: int = 0
    ) -> DataLoader:
        """An unshuffled loader of a split with evaluation transforms (for analysis).

        With ``max_samples`` it covers a seeded random subset, so a capped sample still holds
        both classes (the splits are stored class by class).
        """
        dataset: Dataset = self.dataset(split)
        if split == "train":
            transform = build_transforms(self.variant, self.image_size, train=False)
            dataset = ImageFileDataset(self.datasets[split].samples, transform, self.max_pixels)
        return DataLoader(
            random_subset(dataset, max_samples, seed),
            batch_size=self.batch_size,
            shuffle=False,
            num_workers=self.num_workers,
        )
