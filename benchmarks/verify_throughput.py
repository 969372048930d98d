"""How fast the pre-training image check runs: decode rate, and index + verify of a whole dataset.

    python benchmarks/verify_throughput.py --n 1000
    python benchmarks/synthetic_kaggle.py /tmp/kaggle140k --n 140000
    python benchmarks/verify_throughput.py --root /tmp/kaggle140k

``--n`` writes N random 256x256 JPEGs (the Kaggle image size) to a temporary folder and times
``deepinsight.data.verify.drop_unreadable`` on them with no record (pure decode rate).

``--root`` times what a training run does before its first step on that dataset:
``DeepfakeDataModule.resolve()`` (find the splits, read the CSVs, check every image and, by
default, fill the decoded-image cache at ``--image-size``), twice, each in a fresh process with
the same, initially empty, DeepInsight cache: the first run decodes every image, the second only
stats them. It prints each run's resolve time, its whole process time (Python and torch start-up
included), its peak resident memory, and the size of the cache.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from deepinsight.data.layouts import Sample
from deepinsight.data.verify import drop_unreadable


def decode_rate(n: int) -> None:
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        samples = []
        for i in range(n):
            path = Path(tmp) / f"{i}.jpg"
            pixels = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(path, quality=90)
            samples.append(Sample(path, i % 2))
        start = time.perf_counter()
        kept = drop_unreadable(samples, "train", on_bad_file="skip", max_pixels=None, cache=False)
        seconds = time.perf_counter() - start
    rate = len(kept) / seconds
    print(f"{len(kept)} images in {seconds:.2f} s: {rate:.0f} images/s on {os.cpu_count()} cores")
    print(f"140,000 images (the Kaggle set) at this rate: {140_000 / rate:.0f} s")


def resolve_once(root: str, image_size: int, decoded_cache: bool) -> None:
    """Child process: resolve the dataset and print one JSON line of figures."""
    from deepinsight.data.datamodule import DeepfakeDataModule

    start = time.perf_counter()
    dm = DeepfakeDataModule(root=root, image_size=image_size, decoded_cache=decoded_cache)
    splits = dm.resolve()
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    images = sum(len(v) for v in splits.splits.values())
    print(json.dumps({"resolve_s": seconds, "peak_rss_mb": peak_mb, "images": images}))


def index_and_verify(
    root: Path, image_size: int, decoded_cache: bool, keep: Path | None = None
) -> None:
    with tempfile.TemporaryDirectory(dir=os.environ.get("DEEPINSIGHT_CACHE")) as tmp:
        cache = str(keep or tmp)
        env = {**os.environ, "DEEPINSIGHT_CACHE": cache}
        flags = ["--image-size", str(image_size)] + (
            [] if decoded_cache else ["--no-decoded-cache"]
        )
        for run in ("first", "second"):
            start = time.perf_counter()
            child = subprocess.run(
                [sys.executable, __file__, "--resolve-once", str(root), *flags],
                env=env, capture_output=True, text=True, check=True,
            )  # fmt: skip
            wall = time.perf_counter() - start
            figures = json.loads(child.stdout.strip().splitlines()[-1])
            print(
                f"{run} run: {figures['images']} images, resolve {figures['resolve_s']:.1f} s, "
                f"process {wall:.1f} s (start-up included), "
                f"peak RSS {figures['peak_rss_mb']:.0f} MB, cache {du(cache) / 2**30:.2f} GiB"
            )


def du(folder: str) -> int:
    """Bytes actually stored under ``folder`` (sparse files count what is written)."""
    return sum(f.stat().st_blocks * 512 for f in Path(folder).rglob("*") if f.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=1000, help="random JPEGs for the decode rate")
    parser.add_argument("--root", type=Path, help="dataset to index and verify twice")
    parser.add_argument("--image-size", type=int, default=224, help="decoded-cache size (px)")
    parser.add_argument("--no-decoded-cache", action="store_true", help="check images only")
    parser.add_argument("--cache", type=Path, help="keep the cache here (a rerun is all second)")
    parser.add_argument("--resolve-once", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.resolve_once:
        resolve_once(args.resolve_once, args.image_size, not args.no_decoded_cache)
    elif args.root:
        print(f"{args.root} on {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}")
        index_and_verify(args.root, args.image_size, not args.no_decoded_cache, args.cache)
    else:
        decode_rate(args.n)


if __name__ == "__main__":
    main()
