"""The shortcut audit's speed: its header-and-draft features against a full decode, then the
whole audit of a dataset.

    python benchmarks/audit_throughput.py --root /tmp/k140 --compare 4000 --workers 2

``--compare N`` times feature extraction on the first N files two ways in this one process:
the baseline opens every file and decodes it fully (PIL ``convert("RGB")``) before taking the
same statistics; DeepInsight's ``file_features`` reads the header and decodes a 1/8-scale JPEG
draft. Both figures and their ratio are printed. Then the whole audit
(``deepinsight.audit.cli.audit_samples``, ``--workers`` processes) runs on every file of
``--root``, reporting images/s for the features and the seconds of the classifiers. Synthetic
images (``benchmarks/synthetic_kaggle.py``) carry no label signal, so the verdict should be
clean. The CPU is printed beside the figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quickstart_time import cpu_description  # noqa: E402


def full_decode_features(path: str) -> dict:
    from deepinsight.audit.features import pixel_statistics

    with Image.open(path) as img:
        rgb = img.convert("RGB")
    return pixel_statistics(np.asarray(rgb, dtype=np.float32) / 255.0)


def timed(fn, paths) -> float:
    start = time.perf_counter()
    for path in paths:
        fn(path)
    return len(paths) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--compare", type=int, default=4000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from deepinsight.audit.cli import audit_samples
    from deepinsight.audit.features import file_features
    from deepinsight.data.layouts import discover_splits

    samples = [s for part in discover_splits(args.root).splits.values() for s in part]
    subset = [str(s.path) for s in samples[:: max(1, len(samples) // args.compare)]][: args.compare]
    baseline = timed(full_decode_features, subset)
    ours = timed(file_features, subset)
    print(f"CPU: {cpu_description()['model']} ({cpu_description()['cores']} cores)")
    print(
        f"features, one process, {len(subset)} files: full decode {baseline:.0f} images/s, "
        f"header + draft {ours:.0f} images/s: {ours / baseline:.2f}x"
    )

    start = time.perf_counter()
    report = audit_samples(samples, num_workers=args.workers, n_bootstrap=1000)
    total = time.perf_counter() - start
    print(
        f"whole audit of {report['n']} files with {args.workers} workers: {total:.1f} s "
        f"({report['n'] / total:.0f} images/s end to end)"
    )
    print("\n".join(report["verdict"]))
    if args.json:
        args.json.write_text(json.dumps({
            "benchmark": "audit_throughput", "cpu": cpu_description(), "root": str(args.root),
            "compare_files": len(subset), "full_decode_images_per_s": round(baseline, 1),
            "header_draft_images_per_s": round(ours, 1), "ratio": round(ours / baseline, 2),
            "audit_files": report["n"], "audit_workers": args.workers,
            "audit_seconds": round(total, 1), "verdict": report["verdict"],
        }, indent=2) + "\n")  # fmt: skip


if __name__ == "__main__":
    main()
