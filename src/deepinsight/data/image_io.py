"""Safe, uniform image decoding shared by training and inference.

Every image, whatever its mode (RGBA, palette, CMYK, 16-bit, grayscale) or EXIF orientation,
comes out as an 8-bit RGB PIL image, so training and inference see identical pixels.

Anything that is not a usable image (empty, truncated, not an image at all, or too large) raises
:class:`ImageLoadError` with a short reason, so callers can report it and go on.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import BinaryIO

from PIL import Image, ImageFile, ImageOps

from deepinsight.errors import DeepInsightError, first_line

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")
# Videos are decoded by deepinsight.inference.video; folders searched for inputs to score (predict,
# evaluate) include them. Training reads images only.
VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".webm")
MEDIA_EXTENSIONS = IMAGE_EXTENSIONS + VIDEO_EXTENSIONS

# The PIL decoders DeepInsight uses. Keeping the list short keeps PIL's long tail of rarely used
# (and rarely audited) plugins out of reach of untrusted files, EPS above all, which would run
# Ghostscript. (Camera JPEGs with several pictures, MPO, are opened by the JPEG decoder.)
DECODER_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF")
READABLE_FORMATS = "JPEG, PNG, WebP, BMP, TIFF or GIF"

# 64 megapixels: far above any face photo, far below what a decompression bomb asks for.
DEFAULT_MAX_PIXELS = 64_000_000

_HIGH_BIT_DEPTH_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


class ImageLoadError(DeepInsightError):
    """A file that cannot be used as an image; the message is a short reason."""


def is_image_path(path: Path) -> bool:
    """Whether ``path`` has one of the extensions folders are searched for (IMAGE_EXTENSIONS)."""
    return path.suffix.lower() in IMAGE_EXTENSIONS


def load_image(path: str | Path, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode ``path`` fully into an 8-bit RGB image, or raise ImageLoadError with the reason.

    The pixel count is checked from the header, before any pixel data is decoded, so a
    decompression bomb costs nothing. ``max_pixels=None`` leaves only PIL's own bomb limit.
    """
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise ImageLoadError("empty file")
        return _decode(path, max_pixels)
    except FileNotFoundError:
        raise ImageLoadError("file not found") from None
    except IsADirectoryError:
        raise ImageLoadError("is a directory, not a file") from None
    except PermissionError:
        raise ImageLoadError("permission denied") from None


def decode_image_bytes(data: bytes, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Image.Image:
    """:func:`load_image` for bytes in memory (an upload): the same rules, the same reasons."""
    if not data:
        raise ImageLoadError("empty file")
    return _decode(io.BytesIO(data), max_pixels)


def _decode(source: Path | BinaryIO, max_pixels: int | None) -> Image.Image:
    try:
        with warnings.catch_warnings():
            # Size is policed by max_pixels below; PIL's warning would only be noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(source, formats=DECODER_FORMATS) as img:
                check_pixel_count(img, max_pixels)
                decode_strictly(img)
                img = ImageOps.exif_transpose(img)
        return to_rgb(img)
    except (ImageLoadError, FileNotFoundError, IsADirectoryError, PermissionError):
        raise  # ours already; a path's problems are load_image's to word
    except Image.UnidentifiedImageError:
        raise ImageLoadError(f"not an image, or not a {READABLE_FORMATS} file") from None
    except Image.DecompressionBombError as err:
        reason = str(err).split(", could be")[0]  # PIL's message, minus its own conclusion
        raise ImageLoadError(f"refused as a possible decompression bomb: {reason}") from None
    except Exception as err:  # PIL raises many types for bad data; all mean "not usable"
        raise ImageLoadError(f"corrupt or truncated image ({first_line(err)})") from None


def check_pixel_count(img: Image.Image, max_pixels: int | None) -> None:
    """Refuse an image whose header announces more than ``max_pixels`` pixels."""
    if max_pixels is not None and img.width * img.height > max_pixels:
        raise ImageLoadError(
            f"{img.width}x{img.height} pixels is over the limit of {max_pixels} (max_pixels)"
        )


def decode_strictly(img: Image.Image) -> None:
    """Decode all pixel data, raising on a truncated file instead of padding it with grey.

    ``LOAD_TRUNCATED_IMAGES`` is process-wide and some libraries switch it on at import; a
    truncated face would then be scored (or trained on) as half grey. It is forced off for this
    decode and the caller's setting restored afterwards.
    """
    previous = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        img.load()
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = previous


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB; transparent pixels are composited onto white."""
    if img.mode == "RGB":
        return img
    if img.mode in _HIGH_BIT_DEPTH_MODES:
        # 16/32-bit integer images: scale the top of the range down to 8 bits
        # rather than letting PIL clip everything above 255 to white.
        img = img.point(lambda v: v / 256).convert("L")
    elif img.mode in _ALPHA_MODES or (img.mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, img)
    return img.convert("RGB")
