"""Training input pipeline: DeepInsight's loader vs ImageFolder + PIL (prints images/s, ratios).

    python benchmarks/loader_throughput.py --n 2000
    python benchmarks/loader_throughput.py --n 2000 --workers 2 --image-size 64
    python benchmarks/loader_throughput.py --root /tmp/kaggle140k --n 20000 --gpu-decode

Generates a Kaggle-shaped set of 256 px JPEGs (``synthetic_kaggle.py``; or uses ``--root``) and
reads ``--n`` training images through a ``DataLoader`` with the same batch size, workers and
shuffling for every candidate, after one untimed pass so every file is in the page cache:

- ``imagefolder``: the baseline, ``torchvision.datasets.ImageFolder`` (PIL ``convert("RGB")``)
  with DeepInsight's own transforms for the split;
- ``files``: DeepInsight's ``ImageFileDataset`` (strict decoding, then the same transforms);
- ``decoded_cache_u8``: DeepInsight's training loader: the memory-mapped uint8 cache at the
  training size (``deepinsight.data.decoded_cache``), read a batch at a time, uint8 batches
  (grayscale per batch) out of the workers, scaled to [0, 1] after the transfer, as
  ``DeepfakeDataModule.on_after_batch_transfer`` does; the cache's one-off build is timed
  separately;
- ``decoded_cache``: the same, finished to float32 inside the workers (4x the bytes to pass);
- ``decode_jpeg``: ``torchvision.io.decode_jpeg`` on the CPU instead of PIL;
- ``pil_draft``: PIL's JPEG draft mode (DCT scaling), only when the target is at most half the
  source size;
- ``gpu_decode`` (``--gpu-decode``, CUDA only): workers read bytes, nvJPEG decodes the batch.

Candidates other than ``imagefolder``, ``files`` and ``decoded_cache`` change pixels; their
largest difference from the PIL pipeline is printed next to their speed.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image
from synthetic_kaggle import write_synthetic_kaggle
from torch.utils.data import DataLoader, Dataset, Subset
from torchvision.datasets import ImageFolder
from torchvision.io import ImageReadMode, decode_jpeg, read_file
from torchvision.transforms import v2

from deepinsight.data.datamodule import ImageFileDataset
from deepinsight.data.decoded_cache import (
    DecodedImageDataset,
    build_decoded_images,
    cached_pipeline,
    keep_batch,
)
from deepinsight.data.layouts import discover_splits
from deepinsight.data.transforms import build_transforms


class DecodeJpegDataset(Dataset):
    def __init__(self, samples, transform):
        self.samples, self.transform = samples, transform

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        image = decode_jpeg(read_file(str(self.samples[i].path)), mode=ImageReadMode.RGB)
        return self.transform(image), torch.tensor(float(self.samples[i].label)), i


class DraftDataset(DecodeJpegDataset):
    def __init__(self, samples, transform, size):
        super().__init__(samples, transform)
        self.size = size
        self.to_tensor = transform.transforms[0]
        self.rest = transform.transforms[1:]

    def __getitem__(self, i):
        with Image.open(self.samples[i].path) as img:
            img.draft("RGB", (self.size, self.size))  # decodes at 1/2, 1/4 or 1/8 scale
            image = img.convert("RGB")
        out = self.to_tensor(image)
        for step in self.rest:
            out = step(out)
        return out, torch.tensor(float(self.samples[i].label)), i


def images_per_second(dataset, args, collate_fn=None, on_batch=None) -> float:
    if isinstance(dataset, DecodedImageDataset):
        collate_fn = keep_batch
    loader = DataLoader(
        dataset, batch_size=args.batch_size, shuffle=True, num_workers=args.workers,
        persistent_workers=False, collate_fn=collate_fn,
        # A worker that dies mid-transfer must fail the candidate, not hang the whole suite.
        timeout=120 if args.workers else 0,
    )  # fmt: skip
    start = time.perf_counter()
    seen = 0
    for batch in loader:
        if on_batch is not None:
            on_batch(batch)
        seen += len(batch[1])
    return seen / (time.perf_counter() - start)


def max_diff(dataset, reference, n: int = 16) -> float:
    return max(float((dataset[i][0] - reference[i][0]).abs().max()) for i in range(n))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=2000, help="training images read per candidate")
    parser.add_argument("--workers", type=int, default=os.cpu_count(), help="loader processes")
    parser.add_argument("--image-size", type=int, default=224, help="training size (px)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--variant", default="rgb", choices=("rgb", "grayscale", "augmented"))
    parser.add_argument("--root", type=Path, help="existing Kaggle-shaped dataset to read")
    parser.add_argument("--gpu-decode", action="store_true", help="also time nvJPEG (CUDA)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.root or write_synthetic_kaggle(Path(tmp) / "data", args.n * 7 // 5 + 2)
        results = run(root, Path(tmp) / "cache", args)
    print(f"load average {os.getloadavg()[0]:.2f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


def run(root: Path, cache_dir: Path, args) -> dict:
    samples = discover_splits(root).splits["train"]
    chosen = torch.randperm(len(samples))[: args.n].sort().values.tolist()
    samples = [samples[i] for i in chosen]
    transform = build_transforms(args.variant, args.image_size, train=True)
    # As DeepfakeDataModule cuts it: random augmentation per image, the rest per batch.
    stages = cached_pipeline(transform)
    decode, augment, per_batch = stages.decode, stages.per_image, stages.per_batch
    image_dir = samples[0].path.parents[1]
    folder = ImageFolder(str(image_dir), transform=transform)
    index = {str(p): i for i, (p, _) in enumerate(folder.samples)}
    baseline = Subset(folder, [index[str(s.path)] for s in samples])
    files = ImageFileDataset(samples, transform, max_pixels=None)

    start = time.perf_counter()
    images = build_decoded_images(samples, decode, args.image_size, cache_dir, None, progress=False)
    build = len(samples) / (time.perf_counter() - start)
    candidates = {
        "imagefolder": baseline,
        "files": files,
        "decoded_cache": DecodedImageDataset(
            samples, images, augment=augment, per_batch=per_batch, to_float=stages.to_float
        ),
        # uint8 batches from the workers, finished after the transfer (on_after_batch_transfer)
        "decoded_cache_u8": DecodedImageDataset(
            samples, images, augment=augment, per_batch=per_batch
        ),
        "decode_jpeg": DecodeJpegDataset(samples, v2.Compose(transform.transforms[1:])),
    }
    if 2 * args.image_size <= 256:
        candidates["pil_draft"] = DraftDataset(samples, transform, args.image_size)
    images_per_second(files, args)  # untimed: page cache and allocator warm-up
    results = {"n": len(samples), "workers": args.workers, "image_size": args.image_size,
               "batch_size": args.batch_size, "variant": args.variant,
               "decoded_cache_build_images_per_s": build,
               "images_per_s": {}, "max_abs_diff": {}}  # fmt: skip
    print(
        f"{len(samples)} x 256 px JPEG -> {args.image_size} px ({args.variant}), "
        f"batch {args.batch_size}, {args.workers} workers, {os.cpu_count()} cores"
    )
    print(f"decoded_cache one-off build: {build:.0f} images/s")

    def finish_after_transfer(batch):
        stages.to_float(batch[0])

    for name, dataset in candidates.items():
        u8 = name.endswith("_u8")
        rate = images_per_second(dataset, args, on_batch=finish_after_transfer if u8 else None)
        results["images_per_s"][name] = rate
        if u8:
            dataset = candidates["decoded_cache"]
        diff = "" if args.variant == "augmented" else f"{max_diff(dataset, files):.4f}"
        results["max_abs_diff"][name] = diff
        ratio = rate / results["images_per_s"]["imagefolder"]
        print(f"{name:>14}: {rate:8.0f} images/s  {ratio:5.2f}x imagefolder  max|diff| {diff}")
    if args.gpu_decode:
        results["images_per_s"]["gpu_decode"] = gpu_decode(samples, args)
    return results


def gpu_decode(samples, args) -> float | None:
    if not torch.cuda.is_available():
        print("    gpu_decode: not measured (no CUDA device)")
        return None
    from deepinsight.data.gpu_decode import (
        EncodedImageDataset,
        collate_encoded,
        decode_batch,
        max_difference_from_pil,
    )

    def on_batch(batch):
        decode_batch(batch[0], args.image_size, "cuda").float().div_(255)

    dataset = EncodedImageDataset(samples)
    rate = images_per_second(dataset, args, collate_fn=collate_encoded, on_batch=on_batch)
    torch.cuda.synchronize()
    diff = max_difference_from_pil(samples[:16], args.image_size, "cuda")
    print(f"    gpu_decode: {rate:8.0f} images/s  max|diff| {diff:.4f} (nvJPEG vs PIL)")
    return rate


if __name__ == "__main__":
    main()
