"""Split one demo build's test split into a calibration sample and the rest, as real/fake trees.

    python experiments/protocols/demo_recalibration_split.py OUT [--seed 1] [--n 100]

OUT/sample/{real,fake}/ gets n/2 randomly chosen images of each class (numpy seed 0) of the
test split of the demo built with ``data.demo.seed=SEED``; OUT/rest/{real,fake}/ gets the
others. Both hold symbolic links. ``calibrate`` fits on the sample and ``evaluate`` scores the
rest, which it never saw (``exclude=[OUT/rest]`` checks that).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from deepinsight.data.demo import ensure_demo_dataset
from deepinsight.data.layouts import discover_splits


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--n", type=int, default=100)
    args = parser.parse_args()
    test = discover_splits(ensure_demo_dataset(seed=args.seed)).splits["test"]
    rng = np.random.default_rng(0)
    for label, name in ((0, "real"), (1, "fake")):
        paths = sorted(s.path for s in test if s.label == label)
        chosen = set(rng.choice(len(paths), size=args.n // 2, replace=False).tolist())
        for index, path in enumerate(paths):
            folder = args.out / ("sample" if index in chosen else "rest") / name
            folder.mkdir(parents=True, exist_ok=True)
            (folder / path.name).symlink_to(path)
    for part in ("sample", "rest"):
        n = sum(1 for _ in (args.out / part).rglob("*.*"))
        print(f"{part}: {n} images")


if __name__ == "__main__":
    main()
