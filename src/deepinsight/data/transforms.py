"""Input pipelines for the seed's three variants, built from torchvision transforms v2.

A variant may carry modifiers after ``+``: ``grayscale+blurjpeg`` is the grayscale variant
trained with CNNDetection's Blur+JPEG augmentation (Wang et al., CVPR 2020), and
``grayscale+affine`` the grayscale variant with the seed's affine augmentation (``augmented``
is ``rgb`` with it, the seed's name). Modifiers change the training split only, so the
evaluation preprocessing is the base variant's. The configs build the name from their
composable choices (``data.color``, ``augment=...``) with :func:`variant_name`.

The evaluation pipeline is described by a small ``preprocessing`` dict that is stored in every
checkpoint; ``build_eval_transform(preprocessing)`` rebuilds it exactly at inference time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torchvision.transforms import v2

from deepinsight.errors import DeepInsightError

VARIANTS = ("rgb", "grayscale", "augmented")
# Training-only modifiers a variant may add after "+", e.g. "rgb+blurjpeg".
BLUR_JPEG = "blurjpeg"
AFFINE = "affine"
# Input representations the network computes first (deepinsight.models.representations): a
# variant names one after "+", e.g. "rgb+npr"; they change every split, not only training.
REPRESENTATION_MODIFIERS = ("npr", "highpass")
MODIFIERS = (AFFINE, BLUR_JPEG, *REPRESENTATION_MODIFIERS)
COLORS = ("rgb", "grayscale")
INPUTS = ("pixels", *REPRESENTATION_MODIFIERS)


def variant_name(
    color: str, affine: bool = False, blur_jpeg: bool = False, input: str = "pixels"
) -> str:
    """The variant named by the configs' composable choices, in the seed's spelling.

    ``("rgb", affine=True)`` -> ``"augmented"``; ``("grayscale", True, True)`` ->
    ``"grayscale+affine+blurjpeg"``; ``("rgb", input="npr")`` -> ``"rgb+npr"``. Results, run
    names and W&B keep these names.
    """
    if color not in COLORS:
        raise DeepInsightError(f"unknown data.color '{color}'; choose one of: {', '.join(COLORS)}")
    if input not in INPUTS:
        raise DeepInsightError(f"unknown data.input '{input}'; choose one of: {', '.join(INPUTS)}")
    name = "augmented" if color == "rgb" and affine else color
    if affine and color != "rgb":
        name += f"+{AFFINE}"
    name += f"+{BLUR_JPEG}" if blur_jpeg else ""
    return name + (f"+{input}" if input != "pixels" else "")


def representation_of(variant: str) -> str:
    """The input representation a variant names: ``"rgb+npr"`` -> ``"npr"``, else pixels."""
    named = [m for m in parse_variant(variant)[1] if m in REPRESENTATION_MODIFIERS]
    return named[0] if named else "pixels"


def parse_variant(variant: str) -> tuple[str, tuple[str, ...]]:
    """``"grayscale+blurjpeg"`` -> ``("grayscale", ("blurjpeg",))``; unknown names fail."""
    base, *modifiers = str(variant).split("+")
    if base not in VARIANTS:
        raise DeepInsightError(f"unknown data variant '{variant}'; choose one of: {VARIANTS}")
    for modifier in modifiers:
        if modifier == AFFINE and base == "augmented":
            raise DeepInsightError(f"'{variant}': augmented already has the affine augmentation")
        if modifier not in MODIFIERS:
            raise DeepInsightError(
                f"unknown data variant modifier '+{modifier}' in '{variant}'; "
                f"choose from: {', '.join('+' + m for m in MODIFIERS)}"
            )
    if sum(m in REPRESENTATION_MODIFIERS for m in modifiers) > 1:
        raise DeepInsightError(f"'{variant}' names more than one input representation")
    return base, tuple(modifiers)


def channels_for(variant: str) -> int:
    return 1 if parse_variant(variant)[0] == "grayscale" else 3


# How images are resized to image_size. Bilinear is the seed's; bicubic is what CLIP and many
# timm weights were trained with (their pretrained_cfg's "interpolation").
RESIZE_MODES = {
    "bilinear_antialias": v2.InterpolationMode.BILINEAR,
    "bicubic_antialias": v2.InterpolationMode.BICUBIC,
}


def check_resize(resize: str) -> str:
    if resize not in RESIZE_MODES:
        raise DeepInsightError(
            f"unknown resize {resize!r}; choose one of: {', '.join(RESIZE_MODES)}"
        )
    return resize


def make_preprocessing(
    variant: str, image_size: int, resize: str = "bilinear_antialias"
) -> dict[str, Any]:
    """The evaluation preprocessing as plain data (safe to store in a checkpoint)."""
    preprocessing: dict[str, Any] = {
        "image_size": int(image_size),
        "channels": channels_for(variant),
        "resize": check_resize(resize),
        # The seed rescales pixels to [0, 1] and does no mean/std normalisation.
        "scale": "unit",
    }
    representation = representation_of(variant)
    if representation != "pixels":
        # Computed by the network (deepinsight.models.representations), recorded here so every
        # runtime rebuilds it; the images themselves stay [0, 1] pixels.
        from deepinsight.models.representations import DEFAULT_SCALES

        preprocessing["input"] = representation
        preprocessing["input_scale"] = DEFAULT_SCALES[representation]
    return preprocessing


def build_eval_transform(preprocessing: Mapping[str, Any]) -> v2.Compose:
    """PIL RGB image -> float tensor (C, S, S) in [0, 1], as described by ``preprocessing``."""
    size = int(preprocessing["image_size"])
    steps: list[v2.Transform] = [
        v2.PILToTensor(),
        v2.Resize(
            (size, size),
            interpolation=RESIZE_MODES[preprocessing.get("resize", "bilinear_antialias")],
            antialias=True,
        ),
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


def build_blur_jpeg(
    p: float = 0.5,
    sigma: Sequence[float] = (0.0, 3.0),
    quality: Sequence[int] = (30, 100),
) -> v2.Compose:
    """CNNDetection's Blur+JPEG augmentation (Wang et al., CVPR 2020), on a uint8 RGB tensor.

    With probability ``p`` a Gaussian blur with sigma ~ U[sigma], then, independently with
    probability ``p``, a JPEG re-encode at quality ~ U[quality] (torchvision's v2.JPEG: a real
    libjpeg encode and decode). Draws use torch's RNG, which Lightning seeds per worker.
    """
    low, high = float(sigma[0]), float(sigma[1])
    # v2.GaussianBlur needs sigma > 0; sigma 1e-3 weighs the neighbours by exp(-5e5): identity.
    low = max(low, 1e-3)
    # The kernel spans +-3 sigma of the widest blur, as PIL and OpenCV default to.
    kernel = 2 * math.ceil(3 * max(high, low)) + 1
    return v2.Compose(
        [
            v2.RandomApply([v2.GaussianBlur(kernel, sigma=(low, max(high, low)))], p=p),
            v2.RandomApply([v2.JPEG(quality=(int(quality[0]), int(quality[1])))], p=p),
        ]
    )


def build_transforms(
    variant: str,
    image_size: int,
    train: bool,
    augmentation: Mapping[str, Any] | None = None,
    blur_jpeg: Mapping[str, Any] | None = None,
    resize: str = "bilinear_antialias",
) -> v2.Compose:
    """The full pipeline for one split. Augmentation applies to the training split only.

    Training augmentations run on the uint8 tensor after the resize, so the decoded-image cache
    (which stores exactly that tensor) serves every variant. For ``+blurjpeg`` that departs
    from CNNDetection, which blurred and compressed before cropping: here sigma is measured at
    the training size (at 256 -> 224 px, sigma 3 there is 3.4 source pixels).
    """
    base, modifiers = parse_variant(variant)
    eval_transform = build_eval_transform(make_preprocessing(variant, image_size, resize))
    if not train:
        return eval_transform
    augment: list[v2.Transform] = []
    if BLUR_JPEG in modifiers:
        augment.append(build_blur_jpeg(**dict(blur_jpeg or {})))
    if base == "augmented" or AFFINE in modifiers:
        augment.append(build_train_augmentation(**dict(augmentation or {})))
    if not augment:
        return eval_transform
    # Augment on the uint8 tensor at final size: cheaper than at source size.
    return v2.Compose([*eval_transform.transforms[:2], *augment, *eval_transform.transforms[2:]])
