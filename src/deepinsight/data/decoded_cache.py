"""Images decoded once and stored at the training size as memory-mapped uint8, for every epoch.

Decoding and resizing a 256 px JPEG costs milliseconds of CPU per image, every epoch; reading its
224 px uint8 copy from a memory map costs microseconds, and a whole batch is one fancy-indexed
read. The cache holds exactly the uint8 output of the first two steps of every pipeline in
:mod:`deepinsight.data.transforms` (``PILToTensor`` then the antialiased bilinear ``Resize``), so
what follows (augmentation on the training split, grayscale, scaling to [0, 1]) runs unchanged
on it, the network sees bit-identical tensors, and ``predict``, which decodes the JPEG itself,
still reproduces the training run's scores. One cache per folder and image size serves every
variant (rgb, grayscale and augmented share it).

Layout: ``<cache>/decoded/<key>/images.u8`` (N x 3 x S x S uint8), ``paths.json`` (the files,
relative to their common folder) and ``fingerprints.npy`` (each row's file size and mtime when it
was decoded; -1 for a row not filled). A later run re-decodes only rows whose file changed; a
different list of files starts a new cache. The pre-training check can fill rows as it decodes
(:meth:`DecodedCache.write`), so a first run decodes every image once, not twice.

Over 300 lines on purpose: the file format, its locking and its reader belong together.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms import v2

from deepinsight.data.image_io import ImageLoadError, load_image
from deepinsight.data.layouts import Sample
from deepinsight.data.verified_files import FileIndex
from deepinsight.errors import DeepInsightError

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
# The steps the cache replaces; build_transforms always starts with them.
CACHED_STEPS = (v2.PILToTensor, v2.Resize)


def split_pipeline(transform: v2.Compose) -> tuple[v2.Compose, v2.Compose]:
    """(the decode-and-resize steps the cache stores, the steps that run on the cached tensor)."""
    steps = list(transform.transforms)
    head = steps[: len(CACHED_STEPS)]
    if [type(s) for s in head] != list(CACHED_STEPS):
        raise ValueError(f"pipeline does not start with {CACHED_STEPS}: {transform}")
    return v2.Compose(head), v2.Compose(steps[len(CACHED_STEPS) :])


@dataclass(frozen=True)
class CachedPipeline:
    """A split's pipeline cut where the cache and the batch loader need it.

    ``decode`` is what the cache stores; ``per_image`` the random augmentation (run per image
    in the loader); ``per_batch`` the deterministic uint8 steps (grayscale), run on the whole
    batch in the loader, which gives the same pixels since they are elementwise; ``to_float``
    (uint8 -> [0, 1]) runs after the batch is on its device: a quarter of the bytes to copy,
    and a single rounding on any device.
    """

    decode: v2.Compose
    per_image: v2.Compose | None
    per_batch: v2.Compose | None
    to_float: v2.ToDtype


def cached_pipeline(transform: v2.Compose) -> CachedPipeline:
    """Cut a ``build_transforms`` pipeline into its :class:`CachedPipeline` stages."""
    decode, rest = split_pipeline(transform)
    steps = list(rest.transforms)
    if not steps or not isinstance(steps[-1], v2.ToDtype):
        raise ValueError(f"pipeline does not end with ToDtype: {transform}")
    to_float = steps.pop()
    per_batch: list[v2.Transform] = []
    while steps and isinstance(steps[-1], v2.Grayscale):
        per_batch.insert(0, steps.pop())
    return CachedPipeline(
        decode,
        v2.Compose(steps) if steps else None,
        v2.Compose(per_batch) if per_batch else None,
        to_float,
    )


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """While decoding in a thread pool: the pool gives the parallelism, and torch's intra-op
    threads on top of it only contend (converting one 224 px image to float took 4.4 ms with 2
    intra-op threads and 0.18 ms with 1, on 2 busy cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class DecodedImages:
    """A read-only (N, 3, S, S) uint8 memory map; rows are indexed like the cache's samples."""

    def __init__(self, file: Path, shape: tuple[int, int, int, int]) -> None:
        self.file = file
        self.shape = shape
        self._array: np.ndarray | None = None

    @property
    def array(self) -> np.ndarray:
        # Opened lazily, so loader workers (fork or spawn) each map the file instead of
        # receiving a pickled copy of it.
        if self._array is None:
            self._array = np.memmap(self.file, dtype=np.uint8, mode="r", shape=self.shape)
        return self._array

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_array": None}

    def __len__(self) -> int:
        return self.shape[0]

    def rows(self, rows: Sequence[int]) -> torch.Tensor:
        """Rows as one (B, 3, S, S) uint8 tensor (a single fancy-indexed read)."""
        return torch.from_numpy(self.array[np.asarray(rows, dtype=np.int64)])


class DecodedCache:
    """The cache for one list of samples: which rows are current, and filling the others."""

    def __init__(
        self,
        samples: Sequence[Sample],
        decode: v2.Compose,
        image_size: int,
        cache_dir: str | Path,
        max_pixels: int | None,
        index: FileIndex | None = None,
    ) -> None:
        self.samples = list(samples)
        self.decode = decode
        self.max_pixels = max_pixels
        # Stat'ed before decoding: a file changed meanwhile then looks changed next time.
        index = index or FileIndex.of(self.samples)
        paths, folder = index.paths, index.folder
        prefix = os.path.join(str(folder), "")
        rel = [p[len(prefix) :] if p.startswith(prefix) else p for p in paths]
        # max_pixels is not part of the key: it only decides which files are used, and the
        # pre-training check (keyed by it) drops the ones a stricter limit refuses.
        key = json.dumps([FORMAT_VERSION, str(folder), repr(decode)])
        self.directory = (
            Path(cache_dir).expanduser() / "decoded" / hashlib.sha256(key.encode()).hexdigest()[:20]
        )
        shape = (len(paths), 3, int(image_size), int(image_size))
        self.images = DecodedImages(self.directory / "images.u8", shape)
        # Held until finish(): processes started together (torchrun, SLURM) fill a cache one at
        # a time, and the later ones find it current.
        self._lock = _lock(self.directory.with_suffix(".lock"))
        self.current = np.array([st or (-2, -2) for st in index.stats], dtype=np.int64)
        self.stored = self._open(rel, shape)
        self._fd: int | None = None
        self._fd_lock = threading.Lock()

    def _open(self, rel: list[str], shape: tuple[int, ...]) -> np.ndarray:
        """The stored fingerprints, after (re)creating the files if the sample list changed."""
        try:
            same = json.loads((self.directory / "paths.json").read_text()) == rel
            stored = np.load(self.directory / "fingerprints.npy")
            same = same and stored.shape == (len(rel), 2)
            same = same and self.images.file.stat().st_size == int(np.prod(shape))
        except (OSError, ValueError):
            same = False
        if same:
            return stored
        shutil.rmtree(self.directory, ignore_errors=True)
        self.directory.mkdir(parents=True)
        size = int(np.prod(shape))
        free = shutil.disk_usage(self.directory).free
        if free < size * 1.05:
            raise DeepInsightError(
                f"the decoded-image cache needs {size / 2**30:.1f} GiB in {self.directory} and "
                f"{free / 2**30:.1f} GiB are free; set data.decoded_cache=false, or point "
                "$DEEPINSIGHT_CACHE at a larger disk"
            )
        with open(self.images.file, "wb") as handle:
            handle.truncate(size)  # sparse: costs no disk until written
        (self.directory / "paths.json").write_text(json.dumps(rel, separators=(",", ":")))
        stored = np.full((len(rel), 2), -1, dtype=np.int64)
        np.save(self.directory / "fingerprints.npy", stored)
        return stored

    def stale(self) -> list[int]:
        """Rows whose file is new or changed since it was decoded into the cache."""
        return np.flatnonzero((self.stored != self.current).any(axis=1)).tolist()

    def write(self, row: int, image: Image.Image) -> None:
        """Store a decoded RGB image in ``row`` (thread-safe: rows are disjoint).

        Positional writes, not a writable memory map: a map's dirty pages count as the
        process's resident memory (11.8 GB peak RSS at 140k images), written pages do not.
        """
        with self._fd_lock:
            if self._fd is None:
                self._fd = os.open(self.images.file, os.O_RDWR)
        pixels = np.ascontiguousarray(self.decode(image).numpy())
        if pixels.shape != self.images.shape[1:]:
            raise ValueError(f"decoded image has shape {pixels.shape}, not {self.images.shape}")
        if hasattr(os, "pwrite"):
            os.pwrite(self._fd, pixels.tobytes(), row * pixels.nbytes)
        else:  # Windows
            with self._fd_lock:
                os.lseek(self._fd, row * pixels.nbytes, os.SEEK_SET)
                os.write(self._fd, pixels.tobytes())
        self.stored[row] = self.current[row]

    def fill(self, rows: Sequence[int], workers: int | None = None, progress: bool = True) -> None:
        """Decode ``rows`` in threads, with a progress bar on a terminal."""
        from tqdm.auto import tqdm

        def one(row: int) -> None:
            sample = self.samples[row]
            try:
                self.write(row, load_image(sample.path, max_pixels=self.max_pixels))
            except ImageLoadError as err:
                # Never train on a hole. With the image check on, the file changed since.
                raise DeepInsightError(
                    f"unreadable image {sample.path} ({err}); data.verify_images=true skips "
                    "unreadable files"
                ) from None

        if not rows:
            return
        log.info("decoding %d images once into %s", len(rows), self.directory)
        workers = workers or min(32, (os.cpu_count() or 1) * 2)
        with one_torch_thread(), ThreadPoolExecutor(max_workers=workers) as pool:
            bar = tqdm(total=len(rows), desc="decoding", unit="img", disable=not progress)
            for _ in pool.map(one, rows):
                bar.update()
            bar.close()

    def finish(self) -> DecodedImages:
        """Flush what was written and record it; returns the read-only images."""
        if self._fd is not None:
            os.fsync(self._fd)  # rows on disk before the record says they are there
            os.close(self._fd)
            self._fd = None
            tmp = self.directory / "fingerprints.tmp.npy"
            np.save(tmp, self.stored)
            os.replace(tmp, self.directory / "fingerprints.npy")
        if self._lock is not None:
            self._lock.close()  # closing the file releases the lock
            self._lock = None
        return self.images


def _lock(path: Path):
    """An exclusive lock on ``path`` (blocking), or None where fcntl does not exist."""
    try:
        import fcntl
    except ImportError:  # Windows: no lock; one process per cache is then the user's care
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a")
    fcntl.flock(handle, fcntl.LOCK_EX)
    return handle


def build_decoded_images(
    samples: Sequence[Sample],
    decode: v2.Compose,
    image_size: int,
    cache_dir: str | Path,
    max_pixels: int | None,
    workers: int | None = None,
    progress: bool = True,
) -> DecodedImages:
    """Open the cache for ``samples`` and decode whatever is missing or changed."""
    cache = DecodedCache(samples, decode, image_size, cache_dir, max_pixels)
    cache.fill(cache.stale(), workers, progress)
    return cache.finish()


class DecodedImageDataset(Dataset):
    """Cached images with labels (1 = fake), read a batch at a time.

    ``__getitems__`` (which ``DataLoader`` calls with a batch's indices) returns the batch
    already collated as ``(images (B, C, S, S), labels, indices)``: pass
    ``collate_fn=keep_batch``. ``augment`` runs per image on the uint8 tensor (the training
    split's random augmentation), ``per_batch`` (grayscale) on the uint8 batch, and
    ``to_float`` (scaling to [0, 1]) last if set; leave it unset to get uint8 batches and
    scale them after the copy to the GPU.
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        images: DecodedImages,
        rows: Sequence[int] | None = None,
        augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
        per_batch: Callable[[torch.Tensor], torch.Tensor] | None = None,
        to_float: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        self.samples = list(samples)
        self.images = images
        self.row_of = np.arange(len(samples)) if rows is None else np.asarray(rows)
        if len(self.row_of) != len(self.samples):
            raise ValueError("one cache row per sample is needed")
        self.augment = augment
        self.per_batch = per_batch
        self.to_float = to_float
        self.labels = torch.tensor([s.label for s in self.samples], dtype=torch.float32)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitems__(
        self, indices: Sequence[int]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        index = torch.as_tensor(indices, dtype=torch.int64)
        images = self.images.rows(self.row_of[index.numpy()])
        if self.augment is not None:
            images = torch.stack([self.augment(image) for image in images])
        for step in (self.per_batch, self.to_float):
            if step is not None:
                images = step(images)
        return images, self.labels[index], index

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        images, labels, _ = self.__getitems__([index])
        return images[0], labels[0], index


def keep_batch(batch):
    """``collate_fn`` for datasets whose ``__getitems__`` already returns a collated batch."""
    return batch
