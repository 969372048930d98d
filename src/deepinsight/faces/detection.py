"""Face detection with facenet-pytorch's MTCNN: a box, a confidence and five landmarks per face.

MTCNN (Zhang et al., 2016) is small (P-, R- and O-Net, 2 MB together, MIT licence) and its
weights are inside the facenet-pytorch wheel, so detection runs offline. Its five landmarks are
the two eye centres, the nose tip and the two mouth corners: exactly the points FFHQ's alignment
needs (deepinsight.faces.alignment).

Large photos are searched at a reduced size (``detect_size``, longest side) and the results
scaled back, so a 24-megapixel photo costs about what a 1-megapixel one does; alignment then
cuts from the full-resolution image.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
from PIL import Image

from deepinsight.faces.dlib_landmarks import DlibLandmarks, box_overlap, check_available

# Landmark order of MTCNN's O-Net, which the alignment relies on.
LEFT_EYE, RIGHT_EYE, NOSE, MOUTH_LEFT, MOUTH_RIGHT = range(5)
#: Where the five landmarks come from (``FaceFinder(landmarks=...)``).
LANDMARK_SOURCES = ("mtcnn", "dlib")
# An MTCNN face and a dlib HOG face are the same face from this box overlap (IoU) on.
HOG_MATCH = 0.3


@dataclass(frozen=True)
class Face:
    """One detected face, in the coordinates of the image it was found in."""

    box: tuple[float, float, float, float]  # x0, y0, x1, y1
    landmarks: np.ndarray  # (5, 2): left eye, right eye, nose, left and right mouth corner
    confidence: float

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def area(self) -> float:
        return self.width * (self.box[3] - self.box[1])

    def scaled(self, factor: float) -> Face:
        return Face(
            tuple(float(v) * factor for v in self.box),  # type: ignore[arg-type]
            self.landmarks * factor,
            self.confidence,
        )


class FaceFinder:
    """MTCNN on one device; :meth:`find` takes a batch of images and returns their faces.

    Args:
        min_confidence: faces MTCNN is less sure of are dropped (its O-Net probability).
        min_face_px: faces whose box is narrower than this, in the original image, are dropped:
            too few pixels to say anything about how they were made.
        detect_size: images are searched with their longest side reduced to this (never enlarged).
        device: where MTCNN runs (``cpu`` or ``cuda[:N]``).
        landmarks: ``mtcnn`` keeps MTCNN's five points; ``dlib`` replaces them with those of
            dlib's 68-point model, as FFHQ computed its crops (deepinsight.faces.dlib_landmarks:
            needs ``pip install 'deepinsight[ffhq]'``; that model is for non-commercial use).
    """

    def __init__(
        self,
        min_confidence: float = 0.95,
        min_face_px: int = 40,
        detect_size: int = 1024,
        device: str = "cpu",
        landmarks: str = "mtcnn",
    ) -> None:
        if landmarks not in LANDMARK_SOURCES:
            raise ValueError(f"landmarks must be 'mtcnn' or 'dlib', not {landmarks!r}")
        # Imported here: facenet-pytorch is only needed once faces are looked for.
        from facenet_pytorch import MTCNN

        self.min_confidence = float(min_confidence)
        self.min_face_px = int(min_face_px)
        self.detect_size = int(detect_size)
        # keep_all: every face, ordered by MTCNN (largest first); select_largest only orders.
        self._mtcnn = MTCNN(keep_all=True, select_largest=True, device=torch.device(device))
        self._mtcnn.eval()
        self._dlib: DlibLandmarks | None = None
        if landmarks == "dlib":
            check_available()  # a missing extra fails here, not at the first face
            self._dlib = DlibLandmarks()

    def find(self, images: Sequence[Image.Image]) -> list[list[Face]]:
        """The faces of each image, largest first. Same-sized images share one MTCNN batch
        (a video's frames); others are searched one by one."""
        results: list[list[Face] | None] = [None] * len(images)
        by_size: dict[tuple[int, int], list[int]] = {}
        for index, image in enumerate(images):
            by_size.setdefault(image.size, []).append(index)
        for size, indices in by_size.items():
            factor = min(1.0, self.detect_size / max(size))
            arrays = [_detection_array(images[i], factor) for i in indices]
            # MTCNN's image pyramid starts at the smallest face it is asked to find: faces
            # under min_face_px are dropped anyway, so not looking for them saves most of the
            # first, largest P-Net pass (20 px is MTCNN's own default floor).
            self._mtcnn.min_face_size = max(20, int(self.min_face_px * factor))
            found = self._detect(arrays)
            for i, faces in zip(indices, found):
                kept = self._keep([face.scaled(1.0 / factor) for face in faces])
                results[i] = self._refine(images[i], kept)
        return [faces or [] for faces in results]

    def _detect(self, arrays: list[np.ndarray]) -> list[list[Face]]:
        # A list of equal-sized arrays is one batched pass through each MTCNN stage.
        with torch.inference_mode():
            boxes, probs, points = self._mtcnn.detect(arrays, landmarks=True)
        found: list[list[Face]] = []
        for image_boxes, image_probs, image_points in zip(boxes, probs, points):
            if image_boxes is None:
                found.append([])
                continue
            found.append(
                [
                    Face(
                        tuple(float(v) for v in box),  # type: ignore[arg-type]
                        np.asarray(marks, dtype=np.float64).reshape(5, 2),
                        float(prob),
                    )
                    for box, prob, marks in zip(image_boxes, image_probs, image_points)
                ]
            )
        return found

    def _refine(self, image: Image.Image, faces: list[Face]) -> list[Face]:
        """With ``landmarks=dlib``, each face's five points from dlib's 68, found in the
        full-resolution image within the box of dlib's own HOG detector where it found the same
        face (box overlap >= HOG_MATCH), else within MTCNN's box."""
        if self._dlib is None or not faces:
            return faces
        pixels = np.asarray(image.convert("RGB"))
        hog = self._dlib.hog_boxes(image)
        refined = []
        for face in faces:
            overlaps = [(box_overlap(face.box, box), box) for box in hog]
            best = max(overlaps, default=(0.0, face.box))
            box = best[1] if best[0] >= HOG_MATCH else face.box
            refined.append(replace(face, landmarks=self._dlib(pixels, box)))
        return refined

    def _keep(self, faces: list[Face]) -> list[Face]:
        kept = [
            face
            for face in faces
            if face.confidence >= self.min_confidence and face.width >= self.min_face_px
        ]
        return sorted(kept, key=lambda face: face.area, reverse=True)


def _detection_array(image: Image.Image, factor: float) -> np.ndarray:
    if factor < 1.0:
        size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
        image = image.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    return np.asarray(image.convert("RGB"))
