"""Seeded image perturbations, as images meet them on social media, applied to the decoded PIL
image before the model's preprocessing.

Each perturbation is a library operation (PIL's JPEG encoder and GaussianBlur, PIL resizing,
numpy noise from a seeded Generator), so the grid measures what those operations do, not a
re-implementation. The identity levels (blur 0, resize 1, noise 0) return the image untouched;
JPEG 100 is not an identity: it is a real encode, close to but not equal to the input.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from deepinsight.errors import DeepInsightError


def jpeg(image: Image.Image, quality: float, rng: np.random.Generator | None = None) -> Image.Image:
    """Re-encode as JPEG at ``quality`` (1-100) through PIL, and decode again."""
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=int(quality))
    buffer.seek(0)
    with Image.open(buffer) as encoded:
        return encoded.convert("RGB")


def blur(image: Image.Image, sigma: float, rng: np.random.Generator | None = None) -> Image.Image:
    """Gaussian blur with standard deviation ``sigma`` pixels (PIL's radius is the std)."""
    if sigma <= 0:
        return image
    return image.filter(ImageFilter.GaussianBlur(radius=float(sigma)))


def resize(
    image: Image.Image, factor: float, rng: np.random.Generator | None = None
) -> Image.Image:
    """Down-scale by ``factor`` and back up to the original size (bilinear, antialiased)."""
    if factor >= 1:
        return image
    width, height = image.size
    small = (max(1, round(width * factor)), max(1, round(height * factor)))
    return image.resize(small, Image.Resampling.BILINEAR).resize(
        (width, height), Image.Resampling.BILINEAR
    )


def noise(image: Image.Image, sigma: float, rng: np.random.Generator | None = None) -> Image.Image:
    """Additive Gaussian noise of std ``sigma`` on the 0-255 scale, rounded and clipped."""
    if sigma <= 0:
        return image
    if rng is None:
        raise DeepInsightError("noise needs a seeded numpy Generator (rng=)")
    pixels = np.asarray(image.convert("RGB"), dtype=np.float64)
    noisy = pixels + rng.normal(0.0, float(sigma), size=pixels.shape)
    return Image.fromarray(np.clip(np.rint(noisy), 0, 255).astype(np.uint8), mode="RGB")


Perturb = Callable[[Image.Image, float, "np.random.Generator | None"], Image.Image]


@dataclass(frozen=True)
class Perturbation:
    """One axis of the grid: an operation and the levels it is measured at."""

    kind: str
    apply: Perturb
    levels: tuple[float, ...]
    # The level that changes least; the curves read from it (left) to the strongest (right).
    label: str


PERTURBATIONS: dict[str, Perturbation] = {
    "jpeg": Perturbation("jpeg", jpeg, (100, 90, 75, 50, 30), "JPEG quality"),
    "blur": Perturbation("blur", blur, (0, 0.5, 1, 2, 3), "Gaussian blur sigma (px)"),
    "resize": Perturbation("resize", resize, (1, 0.75, 0.5, 0.25), "down-and-up resize factor"),
    "noise": Perturbation("noise", noise, (0, 2, 5, 10), "Gaussian noise sigma (0-255)"),
}
# The 2-D grid: JPEG re-encoding after blur, as a blurred upload is then compressed.
GRID_KIND = "jpeg+blur"


def image_rng(seed: int, index: int) -> np.random.Generator:
    """One Generator per (seed, image): a perturbed image does not depend on batching or order."""
    return np.random.default_rng([int(seed), int(index)])


def perturb(
    image: Image.Image, steps: list[tuple[str, float]], seed: int, index: int
) -> Image.Image:
    """Apply ``steps`` ((kind, level), in order) to one image, seeded by (seed, index)."""
    rng = image_rng(seed, index)
    for kind, level in steps:
        if kind not in PERTURBATIONS:
            raise DeepInsightError(
                f"unknown perturbation '{kind}'; choose one of: {list(PERTURBATIONS)}"
            )
        image = PERTURBATIONS[kind].apply(image, level, rng)
    return image
