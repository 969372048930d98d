"""Safe, uniform image decoding shared by training and inference.

Every image, whatever its mode (RGBA, palette, CMYK, 16-bit, grayscale) or EXIF orientation,
comes out as an 8-bit RGB PIL image, so training and inference see identical pixels.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from PIL import Image, ImageOps

from deepinsight.errors import DeepInsightError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")

# 64 megapixels: far above any face photo, far below what a decompression bomb asks for.
DEFAULT_MAX_PIXELS = 64_000_000


class ImageLoadError(DeepInsightError):
    """A file that cannot be used as an image; the message is a short reason."""


def is_image_path(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def load_image(path: str | Path, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode ``path`` fully into an 8-bit RGB image, or raise ImageLoadError with the reason."""
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise ImageLoadError("empty file")
        with Image.open(path) as img:
            if max_pixels is not None and img.width * img.height > max_pixels:
                raise ImageLoadError(
                    f"{img.width}x{img.height} pixels is over the limit of {max_pixels}"
                )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                img.load()
            img = ImageOps.exif_transpose(img)
            return to_rgb(img)
    except ImageLoadError:
        raise
    except FileNotFoundError:
        raise ImageLoadError("file not found") from None
    except Image.DecompressionBombError as err:
        raise ImageLoadError(f"decompression bomb: {err}") from None
    except Exception as err:  # PIL raises many types for bad data; all mean "not usable"
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ImageLoadError(f"not a readable image ({reason})") from None


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB."""
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit integer images: scale the top of the range down to 8 bits
        # rather than letting PIL clip everything above 255 to white.
        img = img.point(lambda v: v / 256).convert("L")
    elif img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, img)
    return img.convert("RGB")
