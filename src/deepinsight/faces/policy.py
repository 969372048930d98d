"""``faces=auto|detect|off``: which crops of an image a detector scores.

- ``off``: the whole image, resized, as before faces existed;
- ``detect``: every face found, each FFHQ-aligned (deepinsight.faces.alignment);
- ``auto`` (the default) follows the model. A model trained on aligned faces (the 140k
  dataset) gets, for an input that already is an aligned face crop, that input as it is, and
  for anything else every face found, aligned; "already aligned" is
  :func:`~deepinsight.faces.alignment.is_aligned_crop` of the largest face. A model trained on
  whole images (the demo), or one whose checkpoint does not say, gets whole images, as ``off``.

An image in which detection finds no face has no crop: the caller reports it
(:class:`NoFaceError`), it is never scored whole instead.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from deepinsight.data.image_io import ImageLoadError
from deepinsight.errors import DeepInsightError
from deepinsight.faces.alignment import (
    DEFAULT_CROP_SIZE,
    align_face,
    crop_to_image,
    is_aligned_crop,
)
from deepinsight.faces.detection import LANDMARK_SOURCES, Face, FaceFinder
from deepinsight.faces.dlib_landmarks import check_available

FACE_MODES = ("auto", "detect", "off")
#: What a checkpoint's ``preprocessing["crops"]`` says its training images were.
ALIGNED_FACES, WHOLE_IMAGES = "aligned_faces", "whole_images"
TRAINING_CROPS = (ALIGNED_FACES, WHOLE_IMAGES)


# refine_landmarks keeps the first landmarks when the second pass moved them by more than this
# (mean over the five points, in eye distances): it found another face, or a mirrored copy.
MAX_REFINE_SHIFT = 0.25


class NoFaceError(ImageLoadError):
    """Face detection found no face: the image gets an error row, not a whole-image score."""


@dataclass(frozen=True)
class FaceCrop:
    """One picture to score and where it came from."""

    image: Image.Image  # the aligned face (or the input as it is) in RGB
    face: int | None  # the face's index in its image, largest first; None: the whole image
    box: tuple[float, float, float, float] | None = None  # in the input's pixels


@dataclass
class FacePolicy:
    """Turns images into the crops to score; detection starts on first use, in each process
    (so a DataLoader worker builds its own MTCNN after the fork)."""

    mode: str = "auto"
    training_crops: str | None = None
    crop_size: int = DEFAULT_CROP_SIZE
    detector: dict[str, Any] = field(default_factory=dict)  # FaceFinder's keyword arguments
    _finder: FaceFinder | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        check_face_options(self.mode, self.detector)

    @property
    def detects(self) -> bool:
        """Whether faces are looked for at all (``detect``, or ``auto`` for a face model)."""
        return self.mode == "detect" or (
            self.mode == "auto" and self.training_crops == ALIGNED_FACES
        )

    def notices(self, source: str) -> list[str]:
        """The lines to print once when the mode does not fit what the model was trained on."""
        if self.mode == "detect" and self.training_crops == WHOLE_IMAGES:
            return [
                f"warning: {source} was trained on whole images, not aligned faces: faces=detect "
                "scores face crops unlike anything it saw in training"
            ]
        if self.mode == "off" and self.training_crops == ALIGNED_FACES:
            return [
                f"warning: {source} was trained on FFHQ-aligned face crops: faces=off scores "
                "each image whole, which only means something if it already is such a crop "
                "(faces=auto finds and aligns faces)"
            ]
        if self.mode == "auto" and self.training_crops is None:
            return [
                f"note: {source} does not record what its training images were, so faces=auto "
                "scores whole images; faces=detect finds and aligns the faces in them"
            ]
        return []

    def crops(self, images: Sequence[Image.Image]) -> list[list[FaceCrop]]:
        """The crops of each image; an empty list when detection found no face in it."""
        if not self.detects:
            return [[FaceCrop(image, None)] for image in images]
        if self._finder is None:
            self._finder = FaceFinder(**self.detector)
        found = self._finder.find(images)
        out: list[list[FaceCrop]] = []
        to_align: list[tuple[Image.Image, Face, list[FaceCrop]]] = []
        for image, faces in zip(images, found):
            crops: list[FaceCrop] = []
            out.append(crops)
            if faces and self.mode == "auto" and is_aligned_crop(image.size, faces[0].landmarks):
                # Already cut the way the model's training faces were: resampling it again
                # could only lose detail.
                crops.append(FaceCrop(image, 0, faces[0].box))
            else:
                to_align.extend((image, face, crops) for face in faces)
        for (image, face, crops), landmarks in zip(to_align, self._refined(to_align)):
            crops.append(
                FaceCrop(align_face(image, landmarks, self.crop_size), len(crops), face.box)
            )
        return out

    def _refined(self, to_align: list[tuple[Image.Image, Face, list]]) -> list[np.ndarray]:
        assert self._finder is not None
        pairs = [(image, face.landmarks) for image, face, _ in to_align]
        return refine_landmarks(self._finder, pairs, self.crop_size)


def refine_landmarks(
    finder: FaceFinder, pairs: Sequence[tuple[Image.Image, np.ndarray]], size: int
) -> list[np.ndarray]:
    """Each face's landmarks, measured again on its first, upright crop.

    MTCNN places landmarks less precisely on a tilted face. Found again on the upright ``size``
    px crop (one batched pass over all the crops) and mapped back, the crop of the astronaut's
    face pasted at 5 angles x 3 scales landed a median 3.0 px (max 4.7) of 256 from where it
    belongs, against 5.3 px (max 10.2) from the first pass
    (experiments/face_alignment/placements.py). A face lost on its crop keeps its first
    landmarks.
    """
    if not pairs:
        return []
    first = [align_face(image, landmarks, size) for image, landmarks in pairs]
    refined = []
    for (_, landmarks), found in zip(pairs, finder.find(first)):
        # The face on its own crop is the one nearest to where the first pass put it (where the
        # crop was padded by mirroring, a mirrored copy of a face can be larger); one that moved
        # by more than MAX_REFINE_SHIFT of the eye distance is a different face or a miss.
        candidates = [crop_to_image(face.landmarks, landmarks, size) for face in found]
        eye_distance = float(np.hypot(*(landmarks[1] - landmarks[0]))) or 1.0
        shifts = [np.hypot(*(c - landmarks).T).mean() / eye_distance for c in candidates]
        best = int(np.argmin(shifts)) if shifts else -1
        keep_first = best < 0 or shifts[best] > MAX_REFINE_SHIFT
        refined.append(landmarks if keep_first else candidates[best])
    return refined


def face_mode(value: Any) -> str:
    """The ``faces`` option as written: YAML 1.1 (OmegaConf) reads a bare ``off`` as false."""
    return "off" if value is False else str(value)


def check_face_options(mode: str, detector: dict[str, Any]) -> None:
    """Refuse bad face options in one line, in the main process (a DataLoader worker would
    wrap the same error in a multi-line report)."""
    if mode not in FACE_MODES:
        raise DeepInsightError(f"faces must be one of {', '.join(FACE_MODES)}, not {mode!r}")
    known = set(inspect.signature(FaceFinder).parameters)
    unknown = sorted(set(detector) - known)
    if unknown:
        raise DeepInsightError(
            f"unknown face_detector option(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(known))}"
        )
    landmarks = detector.get("landmarks", "mtcnn")
    if landmarks not in LANDMARK_SOURCES:
        raise DeepInsightError(
            f"face_detector.landmarks must be one of {', '.join(LANDMARK_SOURCES)}, not "
            f"{landmarks!r}"
        )
    if landmarks == "dlib" and mode != "off":
        check_available()


def no_face_reason(mode: str, frame: bool = False) -> str:
    """The error row's reason for an image (or frame) without a detected face."""
    where = "in this frame" if frame else "in the image"
    return f"no face found {where} (faces={mode}); faces=off scores the whole image"
