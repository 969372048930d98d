"""The LightningDataModule that serves every input variant from the demo data or from disk."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

from deepinsight.data.datasets import ImageFileDataset, random_subset
from deepinsight.data.decoded_cache import (
    DecodedCache,
    DecodedImageDataset,
    DecodedImages,
    cached_pipeline,
    keep_batch,
    one_torch_thread,
)
from deepinsight.data.demo import (
    DEMO_ROOT,
    check_data_root,
    default_cache_dir,
    ensure_demo_dataset,
    is_demo_root,
)
from deepinsight.data.generator_folds import select_generators
from deepinsight.data.image_io import DEFAULT_MAX_PIXELS
from deepinsight.data.layouts import SPLITS, DatasetSplits, discover_splits
from deepinsight.data.transforms import build_transforms, make_preprocessing, parse_variant
from deepinsight.data.verified_files import FileIndex
from deepinsight.data.verify import check_split, drop_unreadable
from deepinsight.errors import DeepInsightError
from deepinsight.faces.policy import ALIGNED_FACES, TRAINING_CROPS, WHOLE_IMAGES

log = logging.getLogger(__name__)


def _names(value: Any) -> list[str] | None:
    """A config's generator list (or one name) as a plain list; None stays None."""
    if value is None:
        return None
    return [value] if isinstance(value, str) else [str(v) for v in value]


def training_crops(crops: str | None, layout: str, demo: bool) -> str:
    """What the training images are, for the checkpoint (predict's ``faces=auto`` cuts inputs
    the same way): ``data.crops`` if given; else aligned faces for the Kaggle 140k layout (FFHQ
    crops), whole images for anything else, the demo included (Kaggle-shaped, but no faces)."""
    if crops is not None:
        return crops
    return ALIGNED_FACES if layout == "kaggle" and not demo else WHOLE_IMAGES


class DeepfakeDataModule(L.LightningDataModule):
    """Real-vs-fake images for one input variant (``rgb``, ``grayscale`` or ``augmented``,
    optionally ``+affine``, ``+blurjpeg``).

    With ``root="demo"`` it uses the embedded demo dataset (built on first use); otherwise the
    Kaggle 140k layout or a ``ROOT/{train,valid,test}/{real,fake}`` tree. Every image is decoded
    once in :meth:`resolve`, so unreadable files are skipped (or fail the run) before training.

    With ``decoded_cache`` (the default) that one decode also fills a memory-mapped uint8 copy
    of every image at the training size (:mod:`deepinsight.data.decoded_cache`), and every
    epoch reads batches from it instead of decoding JPEGs: 2.17x ImageFolder + PIL at 224 px
    with 2 workers (``benchmarks/loader_throughput.py``; AVX-512 BF16 CPU, 2026-11-27). Loaders
    then yield uint8 batches (augmented per image on the training split only) and
    :meth:`on_after_batch_transfer` scales them to [0, 1] on the device, bit-identical to the
    JPEG pipeline that ``predict`` runs.
    """

    def __init__(
        self,
        variant: str = "rgb",
        root: str = DEMO_ROOT,
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
        decoded_cache: bool = True,
        prefetch_factor: int | None = None,
        resize: str = "bilinear_antialias",
        layout: str = "auto",
        cache_dir: str | None = None,
        color: str | None = None,
        augment: Mapping[str, Any] | None = None,
        crops: str | None = None,
        input: str | None = None,
    ) -> None:
        super().__init__()
        # ``color``, ``augment`` and ``input`` are the config's composable choices;
        # conf/data/rgb.yaml names ``variant`` from them (di.variant), and the variant alone
        # decides the pipeline.
        del color, augment, input
        self.variant = variant
        check_data_root(root)
        self.root = root
        # The demo, the image-check records and the decoded cache (paths.cache_dir).
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
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
        # Not build parameters: which generators' fakes each split keeps (generator_folds).
        self.generator_fold = {
            "train": _names(self.demo.pop("train_generators", None)),
            "test": _names(self.demo.pop("test_generators", None)),
        }
        # Fails fast on an unknown variant, before any data is touched.
        self.resize = resize
        self.layout = layout
        self.preprocessing = make_preprocessing(variant, self.image_size, resize)
        if crops is not None and crops not in TRAINING_CROPS:
            raise DeepInsightError(
                f"data.crops must be one of {', '.join(TRAINING_CROPS)} or null, not {crops!r}"
            )
        self.crops = crops
        self._to_float = v2.ToDtype(torch.float32, scale=True)
        self.decoded_cache = decoded_cache
        self.prefetch_factor = prefetch_factor
        self.splits: DatasetSplits | None = None
        self.datasets: dict[str, ImageFileDataset | DecodedImageDataset] = {}
        # Per split: the decoded images and each kept sample's row in them.
        self.decoded: dict[str, tuple[DecodedImages, list[int]]] = {}

    @property
    def augments_training(self) -> bool:
        """Whether training images are randomly augmented (so differ from epoch to epoch)."""
        base, modifiers = parse_variant(self.variant)
        return base == "augmented" or bool(modifiers)

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
        found = discover_splits(self._data_root(), self.layout)
        if self.uses_demo and self.holds_out_generators:
            found = select_generators(
                found, self.generator_fold["train"], self.generator_fold["test"]
            )
        clean = {}
        for split in SPLITS:
            samples = found.splits[split]
            index = FileIndex.of(samples)  # each file stat'ed once, for both uses
            cache = self._open_cache(samples, index)
            if self.verify_images:
                with one_torch_thread():
                    samples = drop_unreadable(
                        samples, split, self.on_bad_file, self.max_pixels,
                        on_decoded=cache.write if cache else None, index=index,
                        cache_dir=self.cache_dir,
                    )  # fmt: skip
            check_split(samples, split)
            if cache is not None:
                self.decoded[split] = self._fill_cache(cache, samples)
            clean[split] = samples
        self.splits = DatasetSplits(found.layout, found.root, clean)
        self.preprocessing["crops"] = training_crops(self.crops, found.layout, self.uses_demo)
        sizes = ", ".join(f"{s}={len(v)}" for s, v in clean.items())
        log.info("data: %s layout at %s (%s)", found.layout, found.root, sizes)
        return self.splits

    def _open_cache(self, samples: list, index: FileIndex) -> DecodedCache | None:
        if not self.decoded_cache or not samples:
            return None
        decode = cached_pipeline(
            build_transforms(self.variant, self.image_size, False, resize=self.resize)
        ).decode
        return DecodedCache(
            samples, decode, self.image_size, self.cache_dir, self.max_pixels, index
        )

    @staticmethod
    def _fill_cache(cache: DecodedCache, kept: list) -> tuple[DecodedImages, list[int]]:
        """Decode the kept samples the image check did not (unchanged files, or no check)."""
        position = {id(sample): row for row, sample in enumerate(cache.samples)}
        rows = [position[id(sample)] for sample in kept]
        wanted = set(rows)
        cache.fill([row for row in cache.stale() if row in wanted])
        return cache.finish(), rows

    def prepare_data(self) -> None:
        # Runs on one process per node: build the demo dataset there, not in every rank.
        self._data_root()

    @property
    def holds_out_generators(self) -> bool:
        """Whether data.demo.train_generators or test_generators choose the fakes per split."""
        return any(value is not None for value in self.generator_fold.values())

    @property
    def uses_demo(self) -> bool:
        return is_demo_root(self.root)

    def _data_root(self) -> str | Path:
        """``root``, or the embedded demo dataset's folder (built on first use)."""
        if not self.uses_demo:
            return self.root
        return ensure_demo_dataset(self.cache_dir, **self.demo)

    def setup(self, stage: str | None = None) -> None:
        self.resolve()
        for split in SPLITS:
            if split not in self.datasets:
                self.datasets[split] = self._dataset(split, train=split == "train")
        # Under a Trainer, cached batches stay uint8 until on_after_batch_transfer; a loader
        # used on its own yields finished float batches.
        for dataset in self.datasets.values():
            if isinstance(dataset, DecodedImageDataset):
                dataset.to_float = None if self.trainer else self._to_float

    def _dataset(
        self, split: str, train: bool, finished: bool = False
    ) -> ImageFileDataset | DecodedImageDataset:
        """A split's dataset; ``finished``: float images even from the cache (for analysis)."""
        transform = build_transforms(
            self.variant,
            self.image_size,
            train=train,
            augmentation=self.augmentation,
            blur_jpeg=self.blur_jpeg,
            resize=self.resize,
        )
        samples = self.splits.splits[split]
        if split not in self.decoded:
            return ImageFileDataset(samples, transform, self.max_pixels)
        images, rows = self.decoded[split]
        stages = cached_pipeline(transform)
        return DecodedImageDataset(
            samples, images, rows, stages.per_image, stages.per_batch,
            to_float=self._to_float if finished else None,
        )  # fmt: skip

    def dataset(self, split: str) -> ImageFileDataset | DecodedImageDataset:
        self.setup()
        return self.datasets[split]

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """uint8 batches from the decoded cache become float in [0, 1] here, on the device."""
        if isinstance(batch, (tuple, list)) and len(batch) == 3 and batch[0].dtype == torch.uint8:
            images, labels, indices = batch
            return self._to_float(images), labels, indices
        return batch

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        dataset = self.dataset(split)
        sampler = None
        trainer = self.trainer
        if not shuffle and trainer is not None and trainer.world_size > 1:
            # DDP: each rank a disjoint share, every image exactly once. Lightning's default
            # sampler repeats images to even out the ranks, and the synced metrics would count
            # them twice.
            sampler = UnrepeatedDistributedSampler(
                dataset, num_replicas=trainer.world_size, rank=trainer.global_rank, shuffle=False
            )
        # Training batches all of one size (the shuffled remainder is dropped, a different one
        # each epoch): static shapes let torch.compile's CUDA graphs replay one captured step,
        # and a last batch of a few images no longer gets a full step's weight. A split smaller
        # than one batch keeps its only batch.
        drop_last = shuffle and len(dataset) >= self.batch_size
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            drop_last=drop_last,
            sampler=sampler,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
            prefetch_factor=self.prefetch_factor if self.num_workers > 0 else None,
            collate_fn=collate_for(self.dataset(split)),
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
        self.setup()
        dataset: Dataset = self._dataset(split, train=False, finished=True)
        return DataLoader(
            random_subset(dataset, max_samples, seed),
            batch_size=self.batch_size,
            shuffle=False,
            num_workers=self.num_workers,
            collate_fn=collate_for(dataset),
        )


def collate_for(dataset: Dataset) -> Any:
    """The decoded cache's batches come collated from ``__getitems__``; others use the default."""
    return keep_batch if isinstance(dataset, DecodedImageDataset) else None
