"""Lay out demo test splits from several generators as a ForenSynths test tree.

    python experiments/protocols/demo_forensynths_tree.py OUT

OUT/<generator>/{0_real,1_fake}/ holds symbolic links to the 400 test images of three demo
builds: the default one (``decoder-seed42``, what the Quickstart trains on), decoders trained
from another seed (``decoder-seed1``) and the first demo's hand-made up-convolution
(``upconv``). ``evaluate`` then reads it as the CNNDetection test set and writes the
per-generator table. Each build is cached under $DEEPINSIGHT_CACHE like any demo dataset.
"""

from __future__ import annotations

import sys
from pathlib import Path

from deepinsight.data.demo import ensure_demo_dataset
from deepinsight.data.layouts import discover_splits

BUILDS = {
    "decoder-seed42": {},
    "decoder-seed1": {"seed": 1},
    "upconv": {"generator": "upconv"},
}


def main(out: Path) -> None:
    for name, params in BUILDS.items():
        test = discover_splits(ensure_demo_dataset(**params)).splits["test"]
        for sample in test:
            folder = out / name / ("1_fake" if sample.label == 1 else "0_real")
            folder.mkdir(parents=True, exist_ok=True)
            link = folder / sample.path.name
            if not link.exists():
                link.symlink_to(sample.path)
        print(f"{name}: {len(test)} test images")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
