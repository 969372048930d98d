"""Input pipelines for the seed's three variants, built from torchvision transforms v2.

The evaluation pipeline is described by a small ``preprocessing`` dict that is stored in every
checkpoint; ``build_eval_transform(preprocessing)`` rebuilds it exactly at inference time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torchvision.transforms import v2

from deepinsight.errors import DeepInsightError

VARIANTS = ("rgb", "grayscale", "augmented")


def channels_for(variant: str) -> int:
    if variant not in VARIANTS:
        raise DeepInsightError(f"unknown data variant '{variant}'; choose one of: {VARIANTS}")
    return 1 if variant == "grayscale" else 3


def make_preprocessing(variant: str, image_size: int) -> dict[str, Any]:
    """The evaluation preprocessing as plain data (safe to store in a checkpoint)."""
    return {
        "image_size": int(image_size),
        "channels": channels_for(variant),
        "resize": "bilinear_antialias",
        # The seed rescales pixels to [0, 1] and does no mean/std normalisation.
        "scale": "unit",
    }


def build_eval_transform(preprocessing: Mapping[str, Any]) -> v2.Compose:
    """PIL RGB image -> float tensor (C, S, S) in [0, 1], as described by ``preprocessing``."""
    size = int(preprocessing["image_size"])
    steps: list[v2.Transform] = [
        v2.PILToTensor(),
        v2.Resize((size, size), interpolation=v2.InterpolationMode.BILINEAR, antialias=True),
    ]
    if int(preprocessing["channels"]) == 1:
        steps.append(v2.Grayscale(num_output_channels=1))
    steps.append(v2.ToDtype(torch.float32, scale=True))
    return v2.Compose(steps)


def build_train_augmentation(
    rotation: float = 20.0,
    shear: float = 11.5,
    scale: Sequence[float] = (0.8, 1.2),
    hflip: bool = True,
) -> v2.Compose:
    """The seed's augmentation: rotation, horizontal flip, shear and zoom.

    RandomAffine covers rotation, shear and zoom in one resampling step, so the image is
    interpolated once rather than three times.
    """
    steps: list[v2.Transform] = []
    if hflip:
        steps.append(v2.RandomHorizontalFlip())
    steps.append(
        v2.RandomAffine(degrees=rotation, shear=shear, scale=(float(scale[0]), float(scale[1])))
    )
    return v2.Compose(steps)


def build_transforms(
    variant: str,
    image_size: int,
    train: bool,
    augmentation: Mapping[str, Any] | None = None,
) -> v2.Compose:
    """The full pipeline for one split. Augmentation applies to the training split only."""
    preprocessing = make_preprocessing(variant, image_size)
    eval_transform = build_eval_transform(preprocessing)
    if train and variant == "augmented":
        augment = build_train_augmentation(**dict(augmentation or {}))
        # Augment on the uint8 tensor at final size: cheaper than at source size.
        return v2.Compose([*eval_transform.transforms[:2], augment, *eval_transform.transforms[2:]])
    return eval_transform
