"""face_detector.landmarks=dlib: FFHQ's five points from dlib's 68 landmarks
(deepinsight.faces.dlib_landmarks, FaceFinder(landmarks=...)).

The dlib test runs only where the ``ffhq`` extra is installed (CI installs ``.[dev]`` only).
"""

from __future__ import annotations

import builtins

import numpy as np
import pytest

from deepinsight.errors import DeepInsightError
from deepinsight.faces import FaceFinder, dlib_landmarks
from deepinsight.faces.detection import HOG_MATCH
from deepinsight.faces.dlib_landmarks import DlibLandmarks, box_overlap, five_from_68


def test_five_from_68_takes_ffhqs_points():
    points = np.arange(136, dtype=np.float64).reshape(68, 2) * [1.0, 3.0]
    five = five_from_68(points)
    assert five.shape == (5, 2)
    # Eye centres: the means of contours 36-41 and 42-47; nose tip 30; mouth corners 48 and 54.
    np.testing.assert_array_equal(five[0], points[36:42].mean(axis=0))
    np.testing.assert_array_equal(five[1], points[42:48].mean(axis=0))
    np.testing.assert_array_equal(five[2], points[30])
    np.testing.assert_array_equal(five[3], points[48])
    np.testing.assert_array_equal(five[4], points[54])
    # With these values: point k is (2k, 6k + 3), so the means are at k = 38.5 and 44.5.
    np.testing.assert_array_equal(five[0], [77.0, 234.0])
    np.testing.assert_array_equal(five[1], [89.0, 270.0])
    with pytest.raises(ValueError, match="68, 2"):
        five_from_68(np.zeros((5, 2)))


def test_dlib_finds_the_astronauts_eyes_and_mouth():
    pytest.importorskip("dlib")
    pytest.importorskip("face_recognition_models")
    from PIL import Image
    from skimage import data

    image = Image.fromarray(data.astronaut())
    five = DlibLandmarks()(image, (181, 62, 268, 172))  # about MTCNN's box for her face
    # Hand-annotated: eye centres, then (index 3, 4) the mouth corners; the nose only roughly.
    expected = {0: (204, 101), 1: (246, 104), 3: (202, 141), 4: (244, 142)}
    for index, point in expected.items():
        assert np.hypot(*(five[index] - point)) <= 6.0, (index, five[index])
    assert 181 < five[2][0] < 268 and five[1][1] < five[2][1] < five[3][1]

    # FaceFinder(landmarks="dlib"): MTCNN's faces, with dlib's points in place of its own,
    # found within the box of dlib's own HOG detector (the same face here).
    (faces,) = FaceFinder(landmarks="dlib").find([image])
    dlib_model = DlibLandmarks()
    hog_box = max(dlib_model.hog_boxes(image), key=lambda box: box_overlap(box, faces[0].box))
    assert box_overlap(hog_box, faces[0].box) >= HOG_MATCH
    np.testing.assert_allclose(faces[0].landmarks, dlib_model(image, hog_box))
    for index, point in expected.items():
        assert np.hypot(*(faces[0].landmarks[index] - point)) <= 6.0


def test_unknown_landmark_source_names_both():
    with pytest.raises(ValueError, match="'mtcnn' or 'dlib'"):
        FaceFinder(landmarks="retinaface")


def test_missing_extra_is_one_line(monkeypatch):
    real_import = builtins.__import__

    def no_dlib(name, *args, **kwargs):
        if name in ("dlib", "face_recognition_models"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_dlib)
    attempts = (
        dlib_landmarks.check_available,
        lambda: DlibLandmarks()(None, (0, 0, 1, 1)),
        lambda: FaceFinder(landmarks="dlib"),  # fails on construction, before any image
    )
    for attempt in attempts:
        with pytest.raises(DeepInsightError) as caught:
            attempt()
        message = str(caught.value)
        assert "\n" not in message
        assert "deepinsight[ffhq]" in message and "commercial" in message
