"""load_image: every mode and format to 8-bit RGB; bad files raise ImageLoadError with a reason."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.inference_fixtures import (
    png_with_header_size,
    random_rgb,
    write_broken_images,
    write_good_images,
)
from PIL import Image, ImageFile

from deepinsight.data import image_io
from deepinsight.data.image_io import ImageLoadError, load_image


def test_every_mode_and_format_loads_as_8bit_rgb(tmp_path):
    for path in write_good_images(tmp_path):
        image = load_image(path)
        assert image.mode == "RGB", path.name
        assert np.asarray(image).dtype == np.uint8
        with Image.open(path) as original:
            width, height = original.size
        expected = (height, width) if path.name == "exif_rotated.jpg" else (width, height)
        assert image.size == expected, path.name


def test_exif_orientation_is_applied(tmp_path):
    # Left half black, right half white; orientation 6 means "rotate 90 degrees clockwise".
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, 20:] = 255
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = 6
    image.save(tmp_path / "rotated.jpg", exif=exif)

    upright = np.asarray(load_image(tmp_path / "rotated.jpg"))
    assert upright.shape == (40, 20, 3)
    assert upright[:18].mean() < 30  # the black half is now on top
    assert upright[22:].mean() > 225


def test_16_bit_is_scaled_not_clipped(tmp_path):
    Image.fromarray(np.array([[0, 32768, 65535]], np.uint16)).save(tmp_path / "g16.png")
    with Image.open(tmp_path / "g16.png") as raw:
        assert raw.mode.startswith("I")  # really a 16-bit image
    values = np.asarray(load_image(tmp_path / "g16.png"))[0, :, 0]
    assert values[0] == 0
    assert abs(int(values[1]) - 128) <= 1  # clipping would make it 255
    assert values[2] >= 254


def test_transparency_is_composited_on_white(tmp_path):
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = (255, 0, 0, 255)  # opaque red; the rest is transparent black
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    pixels = np.asarray(load_image(tmp_path / "rgba.png"))
    assert tuple(pixels[0, 0]) == (255, 0, 0)
    assert tuple(pixels[1, 1]) == (255, 255, 255)

    palette = Image.new("P", (2, 1))
    palette.putpalette([0, 0, 0, 0, 0, 255])  # index 0 black, index 1 blue
    palette.putpixel((1, 0), 1)
    palette.save(tmp_path / "palette.png", transparency=0)
    pixels = np.asarray(load_image(tmp_path / "palette.png"))
    assert tuple(pixels[0, 0]) == (255, 255, 255)
    assert tuple(pixels[0, 1]) == (0, 0, 255)


def test_cmyk_keeps_its_colours(tmp_path):
    Image.new("RGB", (8, 8), (255, 0, 0)).convert("CMYK").save(tmp_path / "red.jpg")
    red = np.asarray(load_image(tmp_path / "red.jpg"), np.int32)
    assert red[..., 0].min() > 200 and red[..., 1:].max() < 60


@pytest.mark.parametrize("reason", ["empty", "truncated", "not an image", "decompression bomb"])
def test_broken_files_raise_with_a_reason(tmp_path, reason):
    path = next(p for p, r in write_broken_images(tmp_path).items() if r == reason)
    with pytest.raises(ImageLoadError, match=reason):
        load_image(path)


def test_missing_file_and_folder_raise(tmp_path):
    with pytest.raises(ImageLoadError, match="not found"):
        load_image(tmp_path / "missing.png")
    with pytest.raises(ImageLoadError, match="directory"):
        load_image(tmp_path)


def test_truncated_jpeg_raises_even_if_pil_is_told_to_tolerate_it(tmp_path, monkeypatch):
    random_rgb().save(tmp_path / "whole.jpg")
    data = (tmp_path / "whole.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) - 200])
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)  # as some libraries do
    with pytest.raises(ImageLoadError, match="truncated"):
        load_image(tmp_path / "cut.jpg")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # the caller's setting is restored


def test_pixel_limit_is_checked_from_the_header_before_decoding(tmp_path, monkeypatch):
    random_rgb(height=40, width=50).save(tmp_path / "photo.png")
    decoded = []
    real_decode = image_io.decode_strictly
    monkeypatch.setattr(image_io, "decode_strictly", lambda img: decoded.append(img))
    with pytest.raises(ImageLoadError, match="50x40 pixels is over the limit of 1000"):
        load_image(tmp_path / "photo.png", max_pixels=1000)
    assert decoded == []  # refused before any pixel data was read
    monkeypatch.setattr(image_io, "decode_strictly", real_decode)
    assert load_image(tmp_path / "photo.png", max_pixels=2000).size == (50, 40)

    # A header announcing 30000 x 30000 from a 70-byte file: refused, not allocated.
    bomb = png_with_header_size(tmp_path / "bomb.png", 30_000, 30_000)
    with pytest.raises(ImageLoadError, match="over the limit|decompression bomb"):
        load_image(bomb)


def test_unsupported_formats_are_not_decoded(tmp_path):
    # PIL can read EPS (through Ghostscript), but untrusted files must never reach it.
    Image.new("RGB", (4, 4)).save(tmp_path / "image.eps")
    with pytest.raises(ImageLoadError, match="not an image, or not a JPEG"):
        load_image(tmp_path / "image.eps")
