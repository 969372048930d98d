"""Helpers shared by the inference tests: tiny checkpoints, an image zoo, running the CLIs.

Checkpoints are written here in the contract format (docs/contracts.md) straight from
``create_model``, so these tests do not depend on the training code.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from deepinsight.checkpoint_info import minimal_version
from deepinsight.models import create_model

IMAGE_SIZE = 32
# For subprocesses: one intra-op thread, for the reason given in conftest.one_torch_thread.
ONE_THREAD_ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def make_checkpoint(
    path: Path,
    model: str = "custom_cnn",
    channels: int = 3,
    image_size: int = IMAGE_SIZE,
    threshold: float = 0.5,
    seed: int = 0,
    preprocessing: dict | None = None,
    **kwargs,
) -> Path:
    """Save an untrained ``model`` as a DeepInsight checkpoint; returns ``path``.

    The head is calibrated so that logits spread over about [-4, 4] on test-like images instead
    of all sitting at one value: comparisons between runtimes and thresholds then mean something.
    """
    torch.manual_seed(seed)
    extra = dict(preprocessing or {})  # e.g. {"mean": [...], "std": [...]}
    net = create_model(model, in_chans=channels, **kwargs).eval()
    net.set_representation(extra.get("input"), extra.get("input_scale"))
    net.set_normalization(extra.get("mean"), extra.get("std"))
    with torch.no_grad():
        features = net.forward_features(calibration_images(channels, image_size))
        direction = torch.randn(net.num_features)
        projected = features @ direction
        scale = 2.0 / (projected.std() + 1e-12)
        net.head.weight.copy_((direction * scale).unsqueeze(0))
        net.head.bias.fill_(float(-projected.mean() * scale))
    checkpoint = {
        "state_dict": {f"net.{k}": v for k, v in net.state_dict().items()},
        "deepinsight": {
            "format_version": minimal_version(extra),
            "model": {"name": model, "in_chans": channels, "kwargs": kwargs},
            "preprocessing": {
                "image_size": image_size,
                "channels": channels,
                "resize": "bilinear_antialias",
                "scale": "unit",
                **extra,
            },
            "threshold": threshold,
            "threshold_rule": "max_f1_valid",
        },
        # Lightning writes more keys; a reader must ignore what it does not need.
        "epoch": 0,
        "pytorch-lightning_version": "2.6.0",
    }
    torch.save(checkpoint, path)
    return path


def calibration_images(channels: int, size: int) -> torch.Tensor:
    """Smooth blobs and noise at several brightnesses, like the images the tests score."""
    generator = torch.Generator().manual_seed(123)
    smooth = F.interpolate(torch.rand(4, channels, 4, 4, generator=generator), size=size,
                           mode="bilinear")  # fmt: skip
    brightness = torch.linspace(0.2, 1.0, 4).view(4, 1, 1, 1)
    noise = torch.rand(4, channels, size, size, generator=generator) * brightness
    return torch.cat([smooth, noise])


def random_rgb(height: int = 40, width: int = 48, seed: int = 0) -> Image.Image:
    """A smooth random colour image (JPEG-friendly, and different per seed)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
    return Image.fromarray(small).resize((width, height), Image.Resampling.BILINEAR)


def png_with_header_size(path: Path, width: int, height: int) -> Path:
    """A tiny PNG whose IHDR claims ``width`` x ``height``: a decompression-bomb header."""
    Image.new("L", (8, 8)).save(path)
    data = bytearray(path.read_bytes())
    ihdr = b"IHDR" + struct.pack(">II", width, height) + bytes(data[24:29])
    data[8:33] = struct.pack(">I", 13) + ihdr + struct.pack(">I", zlib.crc32(ihdr))
    path.write_bytes(bytes(data))
    return path


def write_good_images(folder: Path) -> list[Path]:
    """One file per mode / format / quirk load_image must handle; all must be scored."""
    folder.mkdir(parents=True, exist_ok=True)
    base = random_rgb()
    images: dict[str, Image.Image | Callable[[Path], None]] = {
        "rgb.jpg": base,
        "rgb.png": base,
        "rgb.webp": base,
        "rgb.bmp": base,
        "rgb.tiff": base,
        "palette.gif": base.convert("P"),
        "rgba.png": base.convert("RGBA"),
        "rgba.webp": base.convert("RGBA"),
        "palette.png": base.convert("P"),
        "gray.png": base.convert("L"),
        "gray_alpha.png": base.convert("LA"),
        "cmyk.jpg": base.convert("CMYK"),
        "cmyk.tiff": base.convert("CMYK"),
        "bilevel.png": base.convert("1"),
        "gray16.png": Image.fromarray(np.asarray(base.convert("L"), np.uint16) * 257),
        "gray16.tiff": Image.fromarray(np.asarray(base.convert("L"), np.uint16) * 257),
        "tiny_1x1.png": base.resize((1, 1)),
        "thin_3x500.png": base.resize((3, 500)),
    }
    paths = []
    for name, image in images.items():
        image.save(folder / name)
        paths.append(folder / name)
    palette_t = base.convert("P")
    palette_t.save(folder / "palette_transparent.png", transparency=0)
    exif = base.getexif()
    exif[0x0112] = 6  # EXIF orientation: rotate 90 degrees clockwise to display
    base.save(folder / "exif_rotated.jpg", exif=exif)
    paths += [folder / "palette_transparent.png", folder / "exif_rotated.jpg"]
    return paths


def write_broken_images(folder: Path) -> dict[Path, str]:
    """Files that must each get an error row; value: a word the error must contain."""
    folder.mkdir(parents=True, exist_ok=True)
    random_rgb().save(folder / "source.jpg")
    jpeg = (folder / "source.jpg").read_bytes()
    (folder / "source.jpg").unlink()
    broken = {
        folder / "empty.jpg": b"",
        folder / "truncated.jpg": jpeg[: len(jpeg) // 2],
        folder / "text.png": b"this is not an image\n",
    }
    for path, data in broken.items():
        path.write_bytes(data)
    bomb = png_with_header_size(folder / "bomb.png", 40_000, 40_000)
    return {
        folder / "empty.jpg": "empty",
        folder / "truncated.jpg": "truncated",
        folder / "text.png": "not an image",
        bomb: "decompression bomb",
    }


def run_cli(
    main: Callable[[Sequence[str]], None], argv: Sequence[str], capsys
) -> tuple[int, str, str]:
    """Run a ``main(argv)`` entry point in-process: (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    captured = capsys.readouterr()
    return int(exit_info.value.code or 0), captured.out, captured.err
