"""CNNDetection's Blur+JPEG training augmentation: training split only, seeded, p=0 identity."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from deepinsight.data.transforms import build_transforms, channels_for, parse_variant
from deepinsight.errors import DeepInsightError


@pytest.fixture
def image() -> Image.Image:
    rng = np.random.default_rng(1)
    return Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8), mode="RGB")


def always(**overrides):
    return {"p": 1.0, **overrides}


def test_p_zero_is_identity(image):
    plain = build_transforms("rgb", 32, train=True)(image)
    off = build_transforms("rgb+blurjpeg", 32, train=True, blur_jpeg={"p": 0.0})(image)
    assert torch.equal(plain, off)


def test_changes_training_images_only(image):
    evaluation = build_transforms("rgb", 32, train=False)(image)
    test_split = build_transforms("rgb+blurjpeg", 32, train=False, blur_jpeg=always())(image)
    train_split = build_transforms("rgb+blurjpeg", 32, train=True, blur_jpeg=always())(image)
    assert torch.equal(test_split, evaluation)
    assert train_split.shape == evaluation.shape
    assert not torch.equal(train_split, evaluation)


def test_seeded(image):
    transform = build_transforms("rgb+blurjpeg", 32, train=True, blur_jpeg={"p": 0.5})
    runs = []
    for seed in (0, 0, 1):
        torch.manual_seed(seed)
        runs.append(torch.stack([transform(image) for _ in range(6)]))
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], runs[2])


def test_jpeg_alone_and_blur_alone_are_what_they_say(image):
    # A smooth image: JPEG's chroma subsampling alone would blur pixel noise a lot.
    smooth = image.resize((8, 8)).resize((40, 40), Image.Resampling.BILINEAR)
    # quality fixed at 100 and no blur: only JPEG's small error remains.
    jpeg_only = build_transforms(
        "rgb+blurjpeg", 32, train=True, blur_jpeg=always(sigma=[0, 0], quality=[100, 100])
    )(smooth)
    smooth_base = build_transforms("rgb", 32, train=False)(smooth)
    assert 0 < (jpeg_only - smooth_base).abs().mean() < 0.03
    base = build_transforms("rgb", 32, train=False)(image)
    # Strong blur flattens pixel-to-pixel differences.
    blurred = build_transforms(
        "rgb+blurjpeg", 32, train=True, blur_jpeg=always(sigma=[3, 3], quality=[100, 100])
    )(image)
    assert (blurred[..., 1:] - blurred[..., :-1]).abs().mean() < (
        base[..., 1:] - base[..., :-1]
    ).abs().mean() / 3


def test_composes_with_the_seed_variants(image):
    assert parse_variant("grayscale+blurjpeg") == ("grayscale", ("blurjpeg",))
    assert channels_for("grayscale+blurjpeg") == 1
    out = build_transforms("grayscale+blurjpeg", 32, train=True, blur_jpeg=always())(image)
    assert out.shape == (1, 32, 32)
    names = [type(t).__name__ for t in build_transforms("augmented+blurjpeg", 32, True).transforms]
    assert names.count("Compose") == 2  # blur+JPEG, then the seed's affine augmentation
    with pytest.raises(DeepInsightError, match=r"\+sharpen"):
        parse_variant("rgb+sharpen")


def test_blur_jpeg_config_names_the_variant(compose):
    cfg = compose(["experiment=densenet121_blur_jpeg"])
    assert cfg.data.variant == "rgb+blurjpeg"
    assert cfg.data.blur_jpeg.p == 0.5
    assert list(cfg.data.blur_jpeg.quality) == [30, 100]
    gray = compose(["data=grayscale", "data.variant=grayscale+blurjpeg", "model=custom_cnn"])
    assert gray.model.net.in_chans == 1
