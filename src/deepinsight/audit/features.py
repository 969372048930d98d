"""What a file says about itself apart from the face: the features a detector can cheat with.

Detectors often learn the file instead of the face: JPEG against PNG, image size, compression
("Fake or JPEG?" and the UnbiasedGenImage study), or real images from another source than the
fakes. :func:`file_features` reads one file's container features from its header (format, size,
mode, EXIF, the JPEG quantisation tables and chroma subsampling: no pixel decode), then a few
global pixel statistics from a small draft decode (JPEG's DCT scaling decodes at 1/8 size).
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, JpegImagePlugin

# The groups the audit tests one at a time, and the features in each.
GROUPS: dict[str, tuple[str, ...]] = {
    "format": ("format", "mode", "bits", "has_exif"),
    "compression": ("jpeg_quality", "chroma_subsampling", "bytes_per_pixel"),
    "size": ("width", "height", "file_bytes"),
    "pixels": ("mean_r", "mean_g", "mean_b", "std_r", "std_g", "std_b", "laplacian_var"),
}
CATEGORICAL = ("format", "mode", "chroma_subsampling")
# The pixel statistics come from a draft at most this size (a 1/8 DCT decode of a 256 px JPEG).
DRAFT_SIZE = 64
SUBSAMPLING = {0: "4:4:4", 1: "4:2:2", 2: "4:2:0", -1: "none"}

# The IJG (libjpeg) base luminance table, which quality q scales; the quality estimate inverts
# that scaling from the mean of the file's own luminance table.
_IJG_LUMA = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69,
    56, 14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104,
    113, 92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
], dtype=np.float64)  # fmt: skip


def jpeg_quality(img: Image.Image) -> float | None:
    """The IJG quality (1 to 100) whose scaled table best matches the file's luminance table."""
    tables = getattr(img, "quantization", None)
    if not tables or 0 not in tables:
        return None
    # A mean over all 64 entries: the same in zigzag or natural order.
    scale = float(np.mean(np.asarray(tables[0], dtype=np.float64)) / np.mean(_IJG_LUMA)) * 100
    # IJG: scale = 5000 / q for q < 50, 200 - 2q above.
    quality = 5000 / scale if scale > 100 else (200 - scale) / 2
    return float(np.clip(quality, 1, 100))


def file_features(path: str | Path) -> dict[str, Any]:
    """One file's features (GROUPS); raises OSError / PIL errors for an unreadable file."""
    data = Path(path).read_bytes()
    size = len(data)
    with Image.open(io.BytesIO(data)) as img:
        fmt = img.format or "unknown"
        width, height = img.size
        features: dict[str, Any] = {
            "format": fmt,
            "mode": img.mode,
            "bits": int(img.info.get("bits", 16 if img.mode.startswith("I;16") else 8)),
            "has_exif": int(bool(img.info.get("exif")) or len(img.getexif()) > 0),
            "jpeg_quality": jpeg_quality(img) if fmt == "JPEG" else None,
            "chroma_subsampling": (
                SUBSAMPLING.get(JpegImagePlugin.get_sampling(img), "other")
                if fmt == "JPEG"
                else "none"
            ),
            "width": width,
            "height": height,
            "file_bytes": size,
            "bytes_per_pixel": size / max(width * height, 1),
            # Not a feature: finds byte-identical files (the same image under both labels).
            "sha1": hashlib.sha1(data).hexdigest(),
        }
        if fmt == "JPEG":
            img.draft("RGB", (DRAFT_SIZE, DRAFT_SIZE))  # decode at 1/2, 1/4 or 1/8 scale
        small = img.convert("RGB")
    small.thumbnail((DRAFT_SIZE, DRAFT_SIZE))
    pixels = np.asarray(small, dtype=np.float32) / 255.0
    features.update(pixel_statistics(pixels))
    return features


def pixel_statistics(pixels: np.ndarray) -> dict[str, float]:
    """Per-channel mean and std, and the variance of the grey image's Laplacian (sharpness)."""
    grey = pixels.mean(axis=2)
    laplacian = (
        grey[1:-1, :-2] + grey[1:-1, 2:] + grey[:-2, 1:-1] + grey[2:, 1:-1] - 4 * grey[1:-1, 1:-1]
    )
    stats = {f"mean_{c}": float(pixels[..., i].mean()) for i, c in enumerate("rgb")}
    stats |= {f"std_{c}": float(pixels[..., i].std()) for i, c in enumerate("rgb")}
    stats["laplacian_var"] = float(laplacian.var()) if laplacian.size else 0.0
    return stats
