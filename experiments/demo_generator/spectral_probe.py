"""A cheap detector for when CNN training is out of reach: logistic regression on log spectra.

Trains a linear model on the log power spectrum of the grayscale images of a demo's train
split (where up-sampling fingerprints live, Durall et al. 2020) and reports its test AUROC on
the same demo, on the demo with the augmented variant's RandomAffine applied to every image
(train and test; does the fingerprint survive resampling?), and on carry-over sets written by
carry_over.py (DIR/{raw,residual}/{real,fake}). Label 1 = fake. Seconds, not minutes.

    python experiments/demo_generator/spectral_probe.py DEMO_ROOT [CARRY_DIR]
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from torchvision.transforms import v2

from deepinsight.data.layouts import KAGGLE_IMAGE_DIR

# The augmented variant's RandomAffine (conf/data/rgb.yaml: rotation 15, translate 0.1,
# scale 0.8-1.2), bilinear as torchvision's default is nearest; both are tried.
AFFINE = {"degrees": 15, "translate": (0.1, 0.1), "scale": (0.8, 1.2)}


def log_spectrum(gray: np.ndarray) -> np.ndarray:
    return np.log(np.abs(np.fft.rfft2(gray - gray.mean())).ravel() ** 2 + 1e-3)


def load(paths: list[Path], affine: v2.Transform | None = None) -> np.ndarray:
    features = []
    for path in paths:
        image = Image.open(path).convert("L")
        if affine is not None:
            image = affine(image)
        features.append(log_spectrum(np.asarray(image, dtype=np.float64)))
    return np.array(features)


def split(root: Path, name: str) -> tuple[list[Path], np.ndarray]:
    with open(root / f"{name}.csv", newline="") as handle:
        rows = list(csv.reader(handle))[1:]
    return [root / KAGGLE_IMAGE_DIR / row[5] for row in rows], np.array(
        [r[4] == "fake" for r in rows]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("demo", type=Path)
    parser.add_argument("carry", type=Path, nargs="?")
    args = parser.parse_args()
    torch.manual_seed(0)
    (train_paths, train_y), (test_paths, test_y) = (
        split(args.demo, "train"),
        split(args.demo, "test"),
    )
    probe = LogisticRegression(C=0.01, max_iter=3000).fit(load(train_paths), train_y)
    auroc = roc_auc_score(test_y, probe.predict_proba(load(test_paths))[:, 1])
    print(f"in-distribution test AUROC: {auroc:.4f}")
    for mode in (v2.InterpolationMode.NEAREST, v2.InterpolationMode.BILINEAR):
        affine = v2.RandomAffine(**AFFINE, interpolation=mode)
        aug = LogisticRegression(C=0.01, max_iter=3000).fit(load(train_paths, affine), train_y)
        scores = aug.predict_proba(load(test_paths, affine))[:, 1]
        print(f"RandomAffine ({mode.value}) train+test AUROC: {roc_auc_score(test_y, scores):.4f}")
    if args.carry:
        for flavour in ("raw", "residual"):
            paths = sorted((args.carry / flavour).glob("*/*.jpg"))
            labels = [path.parent.name == "fake" for path in paths]
            scores = probe.predict_proba(load(paths))[:, 1]
            print(f"carry-over AUROC ({flavour}): {roc_auc_score(labels, scores):.4f}")


if __name__ == "__main__":
    main()
