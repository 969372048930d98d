"""Stream image files through the evaluation transform in batches, keeping unreadable ones.

Only a few batches are in memory at a time, however many files there are. A file that cannot be
decoded does not stop the run: it comes out as an error next to the images of its batch.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from deepinsight.data.datasets import ImageFileDataset
from deepinsight.data.image_io import ImageLoadError
from deepinsight.data.layouts import Sample
from deepinsight.data.transforms import build_eval_transform

# (position in the file list, image tensor or None, error reason or None)
LoadedItem = tuple[int, torch.Tensor | None, str | None]


@dataclass
class ImageBatch:
    """One batch: the decoded images and the files of the batch that could not be used."""

    indices: list[int]  # positions in the file list of the rows of ``images``
    images: torch.Tensor | None  # (len(indices), C, S, S), or None if no file decoded
    errors: dict[int, str]  # position in the file list -> short reason


class _ImagesOrReasons(Dataset):
    """Items ``(index, image, None)``, or ``(index, None, reason)`` for an unusable file."""

    def __init__(self, images: ImageFileDataset) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> LoadedItem:
        try:
            return index, self.images.image(index), None
        except ImageLoadError as err:
            return index, None, str(err)


def collate_images(items: Sequence[LoadedItem]) -> ImageBatch:
    """Stack the decoded images; set the failed files aside with their reasons."""
    decoded = [(index, image) for index, image, _ in items if image is not None]
    errors = {index: error for index, image, error in items if image is None}
    images = torch.stack([image for _, image in decoded]) if decoded else None
    return ImageBatch([index for index, _ in decoded], images, errors)


def iterate_batches(
    files: Sequence[Path],
    preprocessing: Mapping[str, Any],
    batch_size: int = 32,
    num_workers: int = 0,
    max_pixels: int | None = None,
) -> Iterator[ImageBatch]:
    """Batches of ``files`` in order; ``num_workers`` processes decode in parallel."""
    # Files to score have no label; the dataset only ever reads their paths.
    samples = [Sample(Path(path), label=None) for path in files]
    images = ImageFileDataset(samples, build_eval_transform(preprocessing), max_pixels)
    loader = DataLoader(
        _ImagesOrReasons(images),
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=collate_images,
    )
    yield from loader
