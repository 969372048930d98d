"""Real faces for the face tests: scikit-image's astronaut photograph (NASA, public domain),
and pictures built from its aligned crop (rotated, scaled and moved inside a larger canvas,
or written as video frames with PyAV)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

# Hand-annotated from the photograph (512 x 512): pupils and mouth corners, +-2 px.
ASTRONAUT_EYES = ((204.0, 101.0), (246.0, 104.0))
ASTRONAUT_MOUTH = ((202.0, 141.0), (244.0, 142.0))


def astronaut() -> Image.Image:
    from skimage import data

    return Image.fromarray(data.astronaut())


def background(size: int, seed: int = 0) -> Image.Image:
    """A smooth, face-free colour field to put faces on."""
    rng = np.random.default_rng(seed)
    small = rng.integers(60, 200, size=(6, 6, 3), dtype=np.uint8)
    return Image.fromarray(small).resize((size, size), Image.Resampling.BICUBIC)


def place(
    crop: Image.Image, angle: float, scale: float, offset: tuple[int, int], canvas: int = 640
) -> Image.Image:
    """``crop`` scaled, rotated by ``angle`` degrees (counter-clockwise) and pasted at ``offset``
    from the canvas centre on a face-free background."""
    side = round(crop.width * scale)
    picture = crop.resize((side, side), Image.Resampling.LANCZOS).convert("RGBA")
    picture = picture.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True)
    out = background(canvas).convert("RGBA")
    left = canvas // 2 - picture.width // 2 + offset[0]
    top = canvas // 2 - picture.height // 2 + offset[1]
    out.alpha_composite(picture, (left, top))
    return out.convert("RGB")


def write_video(
    path: Path, frames: list[Image.Image], fps: int = 10, size: tuple[int, int] = (64, 64)
) -> Path:
    """An H.264 MP4 of ``frames`` (all the same even size; ``size`` for none), with PyAV."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames[0].size if frames else size
        stream.pix_fmt = "yuv420p"
        container.start_encoding()  # the header, even for a video of no frames
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_image(frame)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def mean_abs_difference(a: Image.Image, b: Image.Image, side: int = 64) -> float:
    """Mean absolute pixel difference (0-255) of two pictures, both reduced to ``side`` px:
    alignment error, not resampling detail, is what the comparison is about."""
    small = [np.asarray(p.convert("RGB").resize((side, side), Image.Resampling.BOX), np.float64)
             for p in (a, b)]  # fmt: skip
    return float(np.abs(small[0] - small[1]).mean())
