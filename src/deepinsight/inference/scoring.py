"""Score inputs as users have them: photos, aligned crops and videos, one row per picture.

``score_inputs(detector, files, options)`` yields one :class:`ScoredInput` per file, in order.
Worker processes (a DataLoader) decode each file, sample a video's frames, find and align the
faces (``faces=auto|detect|off``, deepinsight.faces.policy) and apply the model's evaluation
transform; the main process scores the crops of several files in batches of ``batch_size``.

A file that cannot be used, or a photo without a face, becomes one error row; the run goes on.
A video gets a ``video`` row, its score aggregated from its frame rows
(deepinsight.inference.aggregate), then its frame rows.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from deepinsight.data.image_io import DEFAULT_MAX_PIXELS, ImageLoadError, load_image
from deepinsight.data.transforms import build_eval_transform
from deepinsight.errors import DeepInsightError
from deepinsight.faces.alignment import DEFAULT_CROP_SIZE
from deepinsight.faces.policy import FaceCrop, FacePolicy, check_face_options, no_face_reason
from deepinsight.inference.aggregate import VIDEO_AGGREGATES, aggregate_scores
from deepinsight.inference.detector import Detector
from deepinsight.inference.results import PredictionRow
from deepinsight.inference.video import DEFAULT_FRAME_COUNT, is_video_path, sample_frames

# Frames go through face detection this many at a time: one MTCNN batch, little memory.
FRAME_CHUNK = 8
# The photo kept for drawing face boxes on (cam=true) is reduced to this longest side, and a
# scored picture kept for its heatmap to this one (an aligned face, 256 px, is kept as it is).
PREVIEW_SIZE = 1024
KEPT_PICTURE_SIZE = 512


@dataclass(frozen=True)
class ScoringOptions:
    """How inputs become pictures to score (documented in conf/predict.yaml)."""

    faces: str = "auto"
    frames: int = DEFAULT_FRAME_COUNT
    video_aggregate: str = "mean"
    batch_size: int = 32
    num_workers: int = 2
    max_pixels: int | None = DEFAULT_MAX_PIXELS
    crop_size: int = DEFAULT_CROP_SIZE
    face_detector: dict[str, Any] = field(default_factory=dict)  # FaceFinder's options
    keep_pictures: bool = False  # keep crops and a preview, for heatmaps

    def __post_init__(self) -> None:
        # Checked here, in the main process, so a bad option is one line, not a worker's report.
        check_face_options(self.faces, self.face_detector)
        if self.video_aggregate not in VIDEO_AGGREGATES:
            raise DeepInsightError(
                f"video_aggregate must be one of {', '.join(VIDEO_AGGREGATES)}, not "
                f"{self.video_aggregate!r}"
            )
        if self.frames < 1:
            raise DeepInsightError(f"frames must be at least 1, not {self.frames}")


@dataclass
class Picture:
    """One crop to score: its row (without a score yet), its tensor and, if kept, its image."""

    row: PredictionRow
    tensor: torch.Tensor
    image: Image.Image | None = None
    score: float | None = None


@dataclass
class ScoredInput:
    """Everything one input file gave: its rows, in output order, and its scored pictures."""

    path: Path
    is_video: bool
    rows: list[PredictionRow]
    pictures: list[Picture]
    preview: Image.Image | None = None  # the photo, reduced to PREVIEW_SIZE (keep_pictures)
    preview_scale: float = 1.0  # preview pixels per input pixel


@dataclass
class _LoadedInput:
    path: Path
    is_video: bool
    pictures: list[Picture]
    failed_rows: list[PredictionRow]  # the input's own error, or frames without a face
    sampled_frames: int = 0
    error: str | None = None
    preview: Image.Image | None = None
    preview_scale: float = 1.0


def face_policy(detector: Detector, options: ScoringOptions) -> FacePolicy:
    """The policy for ``options.faces`` and what the detector's training images were."""
    return FacePolicy(
        options.faces,
        detector.preprocessing.get("crops"),
        options.crop_size,
        dict(options.face_detector),
    )


class _InputLoader(Dataset):
    """Item i: every picture of file i, ready to score (runs in DataLoader workers)."""

    def __init__(self, files: Sequence[Path], policy: FacePolicy, detector: Detector,
                 options: ScoringOptions) -> None:  # fmt: skip
        self.files = list(files)
        self.policy = policy
        self.transform = build_eval_transform(detector.preprocessing)
        self.options = options

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> _LoadedInput:
        path = self.files[index]
        video = is_video_path(path)
        try:
            return self._video(path) if video else self._photo(path)
        except ImageLoadError as err:
            kind = "video" if video else "image"
            row = PredictionRow.failed(str(path), str(err), kind=kind)
            return _LoadedInput(path, video, [], [row], error=str(err))

    def _picture(self, row: PredictionRow, crop: FaceCrop) -> Picture:
        shown = None
        if self.options.keep_pictures:  # for heatmaps: a whole photo need not travel in full
            shown = crop.image.copy()
            shown.thumbnail((KEPT_PICTURE_SIZE, KEPT_PICTURE_SIZE), Image.Resampling.LANCZOS)
        return Picture(row, self.transform(crop.image), shown)

    def _photo(self, path: Path) -> _LoadedInput:
        image = load_image(path, self.options.max_pixels)
        (crops,) = self.policy.crops([image])
        if not crops:
            raise ImageLoadError(no_face_reason(self.options.faces))
        pictures = [
            self._picture(
                PredictionRow(
                    str(path), kind="image" if c.face is None else "face", face=c.face, box=c.box
                ),  # fmt: skip
                c,
            )
            for c in crops
        ]
        loaded = _LoadedInput(path, False, pictures, [])
        if self.options.keep_pictures and crops[0].face is not None:
            loaded.preview_scale = min(1.0, PREVIEW_SIZE / max(image.size))
            loaded.preview = image.resize(
                (round(image.width * loaded.preview_scale),
                 round(image.height * loaded.preview_scale)),
                Image.Resampling.LANCZOS,
            )  # fmt: skip
        return loaded

    def _video(self, path: Path) -> _LoadedInput:
        loaded = _LoadedInput(path, True, [], [])
        chunk: list = []

        def flush() -> None:
            for frame, crops in zip(chunk, self.policy.crops([f.image for f in chunk])):
                where = {"kind": "frame", "frame": frame.index, "time_s": frame.time_s}
                if not crops:
                    reason = no_face_reason(self.options.faces, frame=True)
                    loaded.failed_rows.append(PredictionRow.failed(str(path), reason, **where))
                for crop in crops:
                    row = PredictionRow(str(path), face=crop.face, box=crop.box, **where)
                    loaded.pictures.append(self._picture(row, crop))
            chunk.clear()

        for frame in sample_frames(path, self.options.frames, self.options.max_pixels):
            loaded.sampled_frames += 1
            chunk.append(frame)
            if len(chunk) == FRAME_CHUNK:
                flush()
        flush()
        return loaded


def _as_is(item: Any) -> Any:
    return item


def score_inputs(
    detector: Detector,
    files: Sequence[Path],
    options: ScoringOptions,
    threshold: float | None = None,
) -> Iterator[ScoredInput]:
    """Score every file in ``files``; yields their results in order (see the module doc)."""
    threshold = detector.threshold if threshold is None else threshold
    loader = DataLoader(
        _InputLoader(files, face_policy(detector, options), detector, options),
        batch_size=None,  # one file per item: a video's frames stay together
        shuffle=False,
        num_workers=options.num_workers,
        collate_fn=_as_is,
    )
    pending: list[_LoadedInput] = []
    waiting = 0
    for loaded in loader:
        pending.append(loaded)
        waiting += len(loaded.pictures)
        if waiting >= options.batch_size:
            yield from _finish(detector, pending, options, threshold)
            pending, waiting = [], 0
    yield from _finish(detector, pending, options, threshold)


def _finish(
    detector: Detector, loaded: list[_LoadedInput], options: ScoringOptions, threshold: float
) -> Iterator[ScoredInput]:
    pictures = [p for item in loaded for p in item.pictures]
    for start in range(0, len(pictures), options.batch_size):
        batch = pictures[start : start + options.batch_size]
        scores = detector.score(torch.stack([p.tensor for p in batch]))
        for picture, score in zip(batch, scores):
            picture.score = float(score)
            picture.row = picture.row.with_score(float(score), threshold)
    for item in loaded:
        rows = [p.row for p in item.pictures] + item.failed_rows
        if item.is_video and item.error is None:
            rows = [_video_row(item, options, threshold), *_in_time_order(rows)]
        elif item.error is None:
            rows = sorted(rows, key=lambda r: -1 if r.face is None else r.face)
        yield ScoredInput(item.path, item.is_video, rows, item.pictures, item.preview,
                          item.preview_scale)  # fmt: skip


def _in_time_order(rows: list[PredictionRow]) -> list[PredictionRow]:
    return sorted(rows, key=lambda r: (r.frame or 0, -1 if r.face is None else r.face))


def _video_row(item: _LoadedInput, options: ScoringOptions, threshold: float) -> PredictionRow:
    scores = [p.score for p in item.pictures if p.score is not None and np.isfinite(p.score)]
    path = str(item.path)
    if not scores:
        return PredictionRow.failed(
            path,
            f"no face found in any of the {item.sampled_frames} sampled frame(s) "
            f"(faces={options.faces})",
            kind="video",
        )
    return PredictionRow.scored(
        path, aggregate_scores(scores, options.video_aggregate), threshold, kind="video"
    )
