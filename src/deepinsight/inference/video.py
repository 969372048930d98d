"""Evenly spaced frames of a video file, decoded with PyAV, a few at a time.

``sample_frames(path, count)`` yields ``count`` frames spread evenly over the video (the centres
of ``count`` equal segments; DeepfakeBench's convention of 32 is the default upstream). It seeks
to each one when the video's keyframes are closer together than the sampled frames, so only the
frames between a keyframe and a sampled frame are decoded, and decodes on when they are not
(a seek would only go back); at most one frame is held at a time, so memory does not grow with
the video's length. A video whose length the container does not state is read once, keeping a
thinning reservoir of at most ``2 * count`` compressed-size frames.

Anything that is not a usable video (no video stream, not a container FFmpeg reads, corrupt or
truncated data, no decodable frame, frames over ``max_pixels``) raises :class:`VideoLoadError`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from deepinsight.data.image_io import VIDEO_EXTENSIONS, ImageLoadError
from deepinsight.errors import first_line

DEFAULT_FRAME_COUNT = 32
# Targets closer than this to the last decoded frame are reached by decoding on, not seeking
# (a seek goes back to a keyframe); _sampled raises it when the keyframes are further apart.
_SEEK_GAP_S = 1.0


class VideoLoadError(ImageLoadError):
    """A file that cannot be used as a video; the message is a short reason."""


@dataclass(frozen=True)
class SampledFrame:
    """One decoded frame: its index in the video (from its timestamp), time and picture."""

    index: int
    time_s: float
    image: Image.Image


def is_video_path(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_EXTENSIONS


def sample_frames(
    path: str | Path, count: int = DEFAULT_FRAME_COUNT, max_pixels: int | None = None
) -> Iterator[SampledFrame]:
    """Yield up to ``count`` evenly spaced frames of ``path``, in time order."""
    import av  # imported here: only videos need FFmpeg

    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise VideoLoadError("empty file")
        container = av.open(str(path))
    except VideoLoadError:
        raise
    except FileNotFoundError:
        raise VideoLoadError("file not found") from None
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as err:
        raise VideoLoadError(f"not a readable video ({_reason(err)})") from None
    with container:
        if not container.streams.video:
            raise VideoLoadError("no video stream in the file")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        width, height = stream.codec_context.width, stream.codec_context.height
        if max_pixels is not None and width * height > max_pixels:
            raise VideoLoadError(
                f"{width}x{height} pixel frames are over the limit of {max_pixels} (max_pixels)"
            )
        yielded = 0
        try:
            for frame in _sampled(container, stream, count):
                yielded += 1
                yield frame
        except av.error.FFmpegError as err:
            raise VideoLoadError(
                f"corrupt or truncated video after {yielded} frame(s) ({_reason(err)})"
            ) from None
        if yielded == 0:
            raise VideoLoadError("no decodable video frames")


def _reason(err: BaseException) -> str:
    return first_line(getattr(err, "strerror", None) or err, limit=120)


def _timing(container, stream) -> tuple[float, float, float] | None:
    """(start, duration, frames per second) in seconds, when the file states them."""
    rate = stream.average_rate or stream.guessed_rate
    start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
    if stream.duration:
        duration = float(stream.duration * stream.time_base)
    elif container.duration:
        duration = container.duration / 1_000_000  # av.time_base: microseconds
    else:
        return None
    if not rate or duration <= 0:
        return None
    return start, duration, float(rate)


def _sampled(container, stream, count: int) -> Iterator[SampledFrame]:
    timing = _timing(container, stream)
    if timing is None:
        yield from _reservoir(container, stream, count)
        return
    start, duration, fps = timing
    total = stream.frames or max(1, round(duration * fps))
    n = min(count, total)
    # The frame at the centre of each of n equal segments, as a time on the frame grid.
    targets = [start + int((i + 0.5) * total / n) / fps for i in range(n)]
    half_frame = 0.5 / fps
    frames: Iterator | None = None
    last = -math.inf
    # Seek only for targets further ahead than this. It grows when a seek lands on a keyframe
    # at or before the frame last decoded: the keyframes are further apart than the targets
    # (libx264 puts up to 250 frames between them), so decoding on is cheaper than seeking.
    seek_gap = _SEEK_GAP_S
    for target in targets:
        sought = frames is None or target - last > seek_gap
        if sought:
            offset = int((target - half_frame) / stream.time_base)
            container.seek(max(offset, 0), stream=stream, backward=True, any_frame=False)
            frames = container.decode(stream)
        for frame in frames:
            if sought and frame.time is not None:
                if frame.time <= last:  # this seek only went back: do not seek that far again
                    seek_gap = max(seek_gap, target - frame.time)
                sought = False
            if frame.time is None or frame.time < target - half_frame:
                continue
            last = frame.time
            yield SampledFrame(round((frame.time - start) * fps), frame.time, frame.to_image())
            break
        else:
            return  # the stream ended before this target: fewer frames than stated


def _reservoir(container, stream, count: int) -> Iterator[SampledFrame]:
    """Every ``stride``-th frame; when 2*count are kept, every other is dropped and the stride
    doubles, so whatever the length the kept frames stay evenly spaced and few."""
    kept: list[tuple[int, object]] = []
    stride = 1
    for index, frame in enumerate(container.decode(stream)):
        if index % stride:
            continue
        kept.append((index, frame))
        if len(kept) >= 2 * count:
            kept = kept[::2]
            stride *= 2
    if not kept:
        return
    picks = sorted({round((i + 0.5) * len(kept) / min(count, len(kept)) - 0.5)
                    for i in range(min(count, len(kept)))})  # fmt: skip
    for position in picks:
        index, frame = kept[position]
        yield SampledFrame(index, float(frame.time or 0.0), frame.to_image())
