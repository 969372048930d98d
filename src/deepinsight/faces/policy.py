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

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from deepinsight.data.image_io import ImageLoadError
from deepinsight.faces.alignment import DEFAULT_CROP_SIZE, align_face, is_aligned_crop
from deepinsight.faces.detection import FaceFinder

FACE_MODES = ("auto", "detect", "off")
#: What a checkpoint's ``preprocessing["crops"]`` says its training images were.
ALIGNED_FACES, WHOLE_IMAGES = "aligned_faces", "whole_images"
TRAINING_CROPS = (ALIGNED_FACES, WHOLE_IMAGES)


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
        if self.mode not in FACE_MODES:
            raise ValueError(f"faces must be one of {FACE_MODES}, not {self.mode!r}")

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
        for image, faces in zip(images, found):
            if not faces:
                out.append([])
            elif self.mode == "auto" and is_aligned_crop(image.size, faces[0].landmarks):
                # Already cut the way the model's training faces were: resampling it again
                # could only lose detail.
                out.append([FaceCrop(image, 0, faces[0].box)])
            else:
                out.append(
                    [
                        FaceCrop(align_face(image, face.landmarks, self.crop_size), i, face.box)
                        for i, face in enumerate(faces)
                    ]
                )
        return out


def no_face_reason(mode: str, frame: bool = False) -> str:
    """The error row's reason for an image (or frame) without a detected face."""
    where = "in this frame" if frame else "in the image"
    return f"no face found {where} (faces={mode}); faces=off scores the whole image"
