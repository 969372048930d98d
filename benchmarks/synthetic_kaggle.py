"""Write a synthetic dataset shaped like Kaggle's "140k Real and Fake Faces", at any size.

    python benchmarks/synthetic_kaggle.py /tmp/kaggle140k --n 140000
    python benchmarks/synthetic_kaggle.py /tmp/kaggle2k --n 2000 --workers 2

The layout, file size class and CSV columns are the download's, so indexing, verification and
loading can be measured at full scale without it: ``ROOT/{train,valid,test}.csv`` (header
``,original_path,id,label,label_str,path``; label 1 = real, ``path`` relative to
``real-vs-fake/``) plus ``ROOT/real_vs_fake/real-vs-fake/<split>/<class>/*.jpg``, 256x256 RGB
JPEGs. ``--n`` images are split 100:20:20 like the official 100k/20k/20k, half real and half
fake in every split. The pictures are smooth random textures with mild noise, so the files are
about the size of the real ones (~15 KB); they carry no label signal and are for speed
measurements only. Images are written in parallel processes; each depends only on
(seed, split, index), so a rerun with the same arguments reuses a finished folder.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

SPLITS = ("train", "valid", "test")
SPLIT_WEIGHTS = {"train": 100, "valid": 20, "test": 20}  # the official 100k/20k/20k
IMAGE_DIR = Path("real_vs_fake") / "real-vs-fake"
CSV_HEADER = ",original_path,id,label,label_str,path"
KAGGLE_LABELS = {"real": 1, "fake": 0}  # the download's convention (DeepInsight's is 1 = fake)
MANIFEST = "synthetic_manifest.json"
FORMAT_VERSION = 1


def split_counts(n: int) -> dict[str, int]:
    """Images per split (even, so half real and half fake), in the official 100:20:20 ratio."""
    total = sum(SPLIT_WEIGHTS.values())
    counts = {s: max(2, 2 * round(n * w / total / 2)) for s, w in SPLIT_WEIGHTS.items()}
    return counts


def file_name(cls: str, index: int) -> str:
    # Kaggle names reals by FFHQ number and fakes by a 10-character id; both are unique per split.
    return f"{index:05d}.jpg" if cls == "real" else f"F{index:09d}.jpg"


def render(seed: int, split: str, index: int, size: int, quality: int) -> bytes:
    """One JPEG: a bicubically up-sampled random 12x12 colour field plus mild noise."""
    rng = np.random.default_rng([seed, SPLITS.index(split), index])
    coarse = rng.integers(30, 226, (12, 12, 3), dtype=np.uint8)
    img = np.asarray(Image.fromarray(coarse).resize((size, size), Image.BICUBIC), dtype=np.int16)
    img += rng.integers(-6, 7, img.shape, dtype=np.int16)
    pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    buffer = io.BytesIO()
    pil.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def _write_chunk(args: tuple[Path, int, str, list[tuple[str, int]], int, int]) -> int:
    root, seed, split, items, size, quality = args
    for cls, index in items:
        path = root / IMAGE_DIR / split / cls / file_name(cls, index)
        path.write_bytes(render(seed, split, index, size, quality))
    return len(items)


def write_synthetic_kaggle(
    root: str | Path,
    n: int,
    *,
    seed: int = 0,
    size: int = 256,
    quality: int = 90,
    workers: int | None = None,
    progress: bool = True,
) -> Path:
    """Write (or reuse) a Kaggle-shaped dataset of about ``n`` images under ``root``."""
    root = Path(root)
    counts = split_counts(n)
    params = {"counts": counts, "seed": seed, "size": size, "quality": quality,
              "format_version": FORMAT_VERSION}  # fmt: skip
    manifest = root / MANIFEST
    if manifest.is_file() and json.loads(manifest.read_text()) == params:
        return root
    jobs = []
    chunk = 500
    for split in SPLITS:
        items = [(cls, i) for i in range(counts[split] // 2) for cls in KAGGLE_LABELS]
        for cls in KAGGLE_LABELS:
            (root / IMAGE_DIR / split / cls).mkdir(parents=True, exist_ok=True)
        for start in range(0, len(items), chunk):
            jobs.append((root, seed, split, items[start : start + chunk], size, quality))
        rows = [CSV_HEADER]
        for row_no, (cls, i) in enumerate(items):
            rel = f"{split}/{cls}/{file_name(cls, i)}"
            rows.append(f"{row_no},synthetic/{rel},{i},{KAGGLE_LABELS[cls]},{cls},{rel}")
        (root / f"{split}.csv").write_text("\n".join(rows) + "\n")
    total = sum(counts.values())
    done = 0
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers or os.cpu_count()) as pool:
        for written in pool.map(_write_chunk, jobs):
            done += written
            if progress:
                rate = done / (time.perf_counter() - started)
                print(f"\r{done}/{total} images ({rate:.0f}/s)", end="", flush=True)
    if progress:
        print()
    manifest.write_text(json.dumps(params, indent=1) + "\n")  # last: marks a finished folder
    return root


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("root", type=Path, help="folder to write (created)")
    parser.add_argument("--n", type=int, default=2000, help="images in all (max 140000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=256, help="image side in pixels")
    parser.add_argument("--quality", type=int, default=90, help="JPEG quality")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: cores)")
    args = parser.parse_args()
    if not 6 <= args.n <= 140_000:
        parser.error("--n must be between 6 and 140000")
    started = time.perf_counter()
    write_synthetic_kaggle(
        args.root, args.n, seed=args.seed, size=args.size, quality=args.quality,
        workers=args.workers,
    )  # fmt: skip
    counts = split_counts(args.n)
    files = list((args.root / IMAGE_DIR / "train" / "real").iterdir())[:200]
    mean_kb = sum(f.stat().st_size for f in files) / len(files) / 1024
    print(
        f"{args.root}: {counts} in {time.perf_counter() - started:.1f} s, "
        f"mean file {mean_kb:.1f} KB"
    )


if __name__ == "__main__":
    main()
