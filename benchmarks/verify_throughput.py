"""How fast the pre-training image check decodes Kaggle-sized JPEGs (prints images per second).

    python benchmarks/verify_throughput.py --n 1000

Writes ``--n`` random 256x256 JPEGs (the Kaggle 140k image size) to a temporary folder and runs
``deepinsight.data.verify.drop_unreadable`` on them, as ``DeepfakeDataModule.resolve`` does.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from deepinsight.data.layouts import Sample
from deepinsight.data.verify import drop_unreadable


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        samples = []
        for i in range(args.n):
            path = Path(tmp) / f"{i}.jpg"
            pixels = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(path, quality=90)
            samples.append(Sample(path, i % 2))
        start = time.perf_counter()
        kept = drop_unreadable(samples, "train", on_bad_file="skip", max_pixels=None)
        seconds = time.perf_counter() - start
    rate = len(kept) / seconds
    print(f"{len(kept)} images in {seconds:.2f} s: {rate:.0f} images/s on {os.cpu_count()} cores")
    print(f"140,000 images (the Kaggle set) at this rate: {140_000 / rate:.0f} s")


if __name__ == "__main__":
    main()
