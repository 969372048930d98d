"""Image files as a torch Dataset, and the seeded random subsets analysis draws from datasets.

Training, analysis and ``predict`` all read image files through :class:`ImageFileDataset`, so
every one of them decodes (``load_image``) and preprocesses the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch.utils.data import Dataset, Subset

from deepinsight.data.image_io import load_image
from deepinsight.data.layouts import Sample


class ImageFileDataset(Dataset):
    """Images on disk with labels (1 = fake). Items are ``(image, label, index)``.

    The index lets predictions be matched back to file paths after batching, shuffling and
    distributed gathering. :meth:`image` gives the image alone (files to score have no label).
    """

    def __init__(
        self, samples: Sequence[Sample], transform: Callable, max_pixels: int | None
    ) -> None:
        self.samples = list(samples)
        self.transform = transform
        self.max_pixels = max_pixels

    def __len__(self) -> int:
        return len(self.samples)

    def image(self, index: int) -> torch.Tensor:
        """The decoded, transformed image; ImageLoadError if the file is not a usable image."""
        return self.transform(load_image(self.samples[index].path, max_pixels=self.max_pixels))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        label = torch.tensor(self.samples[index].label, dtype=torch.float32)
        return self.image(index), label, index


def random_subset(dataset: Dataset, max_samples: int | None, seed: int = 0) -> Dataset:
    """A seeded random ``max_samples``-item subset of ``dataset``, or ``dataset`` if not larger.

    Random, not the first items: splits are often stored class by class, so the first N could
    all be real. Indices stay sorted, which is kinder to disks and keeps the order stable.
    """
    size = len(dataset)  # type: ignore[arg-type]
    if max_samples is None or size <= max_samples:
        return dataset
    generator = torch.Generator().manual_seed(seed)
    chosen = torch.randperm(size, generator=generator)[:max_samples]
    return Subset(dataset, sorted(chosen.tolist()))
