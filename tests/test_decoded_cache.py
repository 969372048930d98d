"""The decoded-image cache gives the network exactly the tensors the JPEG pipeline gives."""

from __future__ import annotations

import os

import pytest
import torch
from helpers.synthetic_data import write_kaggle_dataset
from torch.utils.data import DataLoader

from deepinsight.data.datamodule import ImageFileDataset
from deepinsight.data.decoded_cache import (
    DecodedCache,
    DecodedImageDataset,
    build_decoded_images,
    cached_pipeline,
    keep_batch,
    split_pipeline,
)
from deepinsight.data.gpu_decode import (
    EncodedImageDataset,
    collate_encoded,
    decode_batch,
    unpack_encoded,
)
from deepinsight.data.layouts import discover_splits
from deepinsight.data.transforms import build_transforms
from deepinsight.data.verify import drop_unreadable


@pytest.fixture
def samples(tmp_path):
    root = write_kaggle_dataset(tmp_path / "data", {"train": 4, "valid": 1, "test": 1}, size=40)
    return discover_splits(root).splits["train"]


@pytest.mark.parametrize(("variant", "size"), [("rgb", 24), ("grayscale", 24), ("grayscale", 23)])
def test_cached_batches_equal_the_jpeg_pipeline(samples, tmp_path, variant, size):
    eval_transform = build_transforms(variant, size, train=False)
    stages = cached_pipeline(eval_transform)
    assert stages.per_image is None and (stages.per_batch is None) == (variant == "rgb")
    images = build_decoded_images(
        samples, stages.decode, size, tmp_path / "c", None, progress=False
    )
    # As DeepfakeDataModule runs it: uint8 batches, made float after the transfer.
    cached = DecodedImageDataset(samples, images, per_batch=stages.per_batch)
    loader = DataLoader(cached, batch_size=3, collate_fn=keep_batch)
    batches = [(stages.to_float(x), y, i) for x, y, i in loader]
    expected = ImageFileDataset(samples, eval_transform, max_pixels=None)
    got = torch.cat([b[0] for b in batches])
    channels = 1 if variant == "grayscale" else 3
    assert got.dtype == torch.float32 and got.shape == (8, channels, size, size)
    assert torch.equal(got, torch.stack([expected[i][0] for i in range(8)]))
    assert torch.equal(
        torch.cat([b[1] for b in batches]), torch.tensor([s.label for s in samples]).float()
    )
    assert torch.cat([b[2] for b in batches]).tolist() == list(range(8))


def test_training_augmentation_still_runs_per_image(samples, tmp_path):
    stages = cached_pipeline(build_transforms("augmented", 24, train=True))
    assert stages.per_image is not None and stages.per_batch is None
    images = build_decoded_images(samples, stages.decode, 24, tmp_path / "c", None, progress=False)
    dataset = DecodedImageDataset(
        samples, images, augment=stages.per_image, to_float=stages.to_float
    )
    torch.manual_seed(0)
    first = dataset.__getitems__([0, 1])[0]
    plain = DecodedImageDataset(samples, images, to_float=stages.to_float).__getitems__([0, 1])[0]
    assert first.shape == plain.shape and not torch.equal(first, plain)


def test_only_changed_rows_are_decoded_again(samples, tmp_path):
    decode, _ = split_pipeline(build_transforms("rgb", 24, train=False))
    build_decoded_images(samples, decode, 24, tmp_path / "cache", None, progress=False)
    assert DecodedCache(samples, decode, 24, tmp_path / "cache", None).stale() == []
    changed = samples[5].path
    changed.write_bytes(samples[0].path.read_bytes())
    os.utime(changed, ns=(0, os.stat(changed).st_mtime_ns + 10**9))
    assert DecodedCache(samples, decode, 24, tmp_path / "cache", None).stale() == [5]
    images = build_decoded_images(samples, decode, 24, tmp_path / "cache", None, progress=False)
    assert torch.equal(images.rows([5]), images.rows([0]))
    # Another list of files is another cache: every row is decoded.
    assert len(DecodedCache(samples[:4], decode, 24, tmp_path / "cache", None).stale()) == 4


def test_the_image_check_fills_the_cache_as_it_decodes(samples, tmp_path):
    decode, _ = split_pipeline(build_transforms("rgb", 24, train=False))
    samples[2].path.write_bytes(b"not a jpeg")
    cache = DecodedCache(samples, decode, 24, tmp_path / "cache", None)
    kept = drop_unreadable(
        samples, "train", "skip", None, cache_dir=tmp_path / "verified", on_decoded=cache.write
    )
    assert len(kept) == 7 and cache.stale() == [2]
    cache.finish()
    assert DecodedCache(samples, decode, 24, tmp_path / "cache", None).stale() == [2]


def test_gpu_decode_path_runs_on_the_cpu(samples):
    # Through a worker process: the batch must cross as two tensors, not one per file (a list
    # of 32 per batch ran out of file descriptors on the H200 machine).
    loader = DataLoader(
        EncodedImageDataset(samples), batch_size=4, collate_fn=collate_encoded, num_workers=1
    )
    encoded, labels, indices = next(iter(loader))
    assert len(encoded) == 2 and all(isinstance(t, torch.Tensor) for t in encoded)
    files = unpack_encoded(encoded)
    assert [bytes(f.numpy()) for f in files] == [s.path.read_bytes() for s in samples[:4]]
    images = decode_batch(encoded, 24, "cpu")
    assert images.shape == (4, 3, 24, 24) and images.dtype == torch.uint8
    assert labels.tolist() == [s.label for s in samples[:4]] and indices.tolist() == [0, 1, 2, 3]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_uint8_batches_scaled_on_the_gpu_equal_the_cpu_pipeline(samples, tmp_path, monkeypatch):
    from deepinsight.data.datamodule import DeepfakeDataModule

    monkeypatch.setenv("DEEPINSIGHT_CACHE", str(tmp_path / "cache"))
    root = samples[0].path.parents[4]  # ROOT/real_vs_fake/real-vs-fake/train/<class>/x.jpg
    dm = DeepfakeDataModule(variant="grayscale", root=str(root), image_size=24, batch_size=4)
    dm.setup()
    dataset = dm.dataset("train")
    expected = dataset.__getitems__([0, 1, 2, 3])[0]  # no trainer: finished on the CPU
    dataset.to_float = None  # as under a Trainer: uint8 out of the loader
    images, labels, indices = dataset.__getitems__([0, 1, 2, 3])
    assert images.dtype == torch.uint8
    batch = dm.on_after_batch_transfer((images.cuda(), labels.cuda(), indices.cuda()), 0)
    assert torch.equal(batch[0].cpu(), expected)
