"""Face detection and FFHQ alignment on a real photograph (scikit-image's astronaut)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.face_pictures import (
    ASTRONAUT_EYES,
    ASTRONAUT_MOUTH,
    astronaut,
    background,
    mean_abs_difference,
    place,
)
from helpers.inference_fixtures import make_checkpoint
from PIL import Image

from deepinsight.data.transforms import build_eval_transform
from deepinsight.errors import DeepInsightError
from deepinsight.faces import FaceFinder, FacePolicy, align_face, ffhq_quad, is_aligned_crop
from deepinsight.faces.alignment import quad_geometry
from deepinsight.inference import load_detector
from deepinsight.inference.aggregate import aggregate_scores

# Stated tolerances (measured on this photograph, with margin; README "Faces and videos"):
# mean absolute pixel difference (0-255) of two 256 px crops compared at 64 px, and the score
# difference of an untrained, calibrated network (logits spread over about [-4, 4]), which is
# more sensitive to small shifts than a trained detector need be.
REALIGN_PIXEL_ERROR = 6.0
PLACED_PIXEL_ERROR = 10.0
PLACED_SCORE_ERROR = 0.15


@pytest.fixture(scope="module")
def aligned() -> Image.Image:
    """The astronaut's face, FFHQ-aligned at 256 px."""
    (crops,) = FacePolicy("detect").crops([astronaut()])
    assert len(crops) == 1
    return crops[0].image


@pytest.fixture(scope="module")
def face_model(tmp_path_factory):
    path = make_checkpoint(
        tmp_path_factory.mktemp("face_model") / "face.ckpt",
        image_size=64,
        preprocessing={"crops": "aligned_faces"},
    )
    detector = load_detector(str(path), device="cpu")
    transform = build_eval_transform(detector.preprocessing)
    return lambda image: float(detector.score(transform(image)[None])[0])


def test_the_astronauts_face_is_found_with_landmarks_on_her_eyes_and_mouth():
    (faces,) = FaceFinder().find([astronaut()])
    assert len(faces) == 1
    face = faces[0]
    assert face.confidence > 0.99
    expected = np.array([ASTRONAUT_EYES[0], ASTRONAUT_EYES[1], ASTRONAUT_MOUTH[0],
                         ASTRONAUT_MOUTH[1]])  # fmt: skip
    found = face.landmarks[[0, 1, 3, 4]]
    assert np.hypot(*(found - expected).T).max() < 5.0
    x0, y0, x1, y1 = face.box
    assert x0 < ASTRONAUT_EYES[0][0] < ASTRONAUT_EYES[1][0] < x1 and y0 < 101 < y1


def test_ffhq_quad_follows_the_recipe():
    # Eyes 40 px apart, mouth 40 px below them: half-side max(2*40, 1.8*40) = 80, centred
    # 0.1 * eye_to_mouth below the eyes' midpoint, upright.
    marks = np.array([[100, 100], [140, 100], [120, 120], [105, 140], [135, 140]], float)
    quad = ffhq_quad(marks)
    np.testing.assert_allclose(quad, [[40, 24], [40, 184], [200, 184], [200, 24]], atol=1e-9)
    # Turning the face turns the quad with it.
    angle = np.radians(30)
    turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    centre, side, degrees = quad_geometry(ffhq_quad(marks @ turn.T))
    assert side == pytest.approx(160) and degrees == pytest.approx(30)


def test_aligning_an_aligned_crop_gives_nearly_the_same_crop(aligned):
    (faces,) = FaceFinder().find([aligned])
    assert is_aligned_crop(aligned.size, faces[0].landmarks)
    (again,) = FacePolicy("detect").crops([aligned])
    assert mean_abs_difference(aligned, again[0].image) < REALIGN_PIXEL_ERROR
    # faces=auto for a model trained on aligned faces scores such a crop as it is.
    (as_is,) = FacePolicy("auto", "aligned_faces").crops([aligned])
    assert as_is[0].image is aligned
    # The photograph itself is not an aligned crop.
    (photo_faces,) = FaceFinder().find([astronaut()])
    assert not is_aligned_crop((512, 512), photo_faces[0].landmarks)


@pytest.mark.parametrize(
    ("angle", "scale", "offset"),
    [(-25, 0.5, (37, -21)), (25, 2.0, (-40, 30)), (25, 0.5, (0, 45)), (-25, 2.0, (60, 0))],
)
def test_a_face_turned_scaled_and_moved_is_cut_back_to_the_same_crop(
    aligned, face_model, angle, scale, offset
):
    canvas = place(aligned, angle, scale, offset, canvas=round(256 * scale * 1.8) + 64)
    (crops,) = FacePolicy("detect").crops([canvas])
    assert len(crops) == 1
    assert crops[0].image.size == (256, 256)
    assert mean_abs_difference(aligned, crops[0].image) < PLACED_PIXEL_ERROR
    assert abs(face_model(aligned) - face_model(crops[0].image)) < PLACED_SCORE_ERROR


def test_a_face_at_the_edge_is_padded_by_mirroring_not_black(aligned):
    # The face's quad reaches past the picture's left and top edges.
    picture = background(400)
    picture.paste(aligned.resize((200, 200)), (-60, -50))
    (crops,) = FacePolicy("detect").crops([picture])
    pixels = np.asarray(crops[0].image, dtype=np.float64)
    assert pixels[:20, :20].mean() > 30  # the mirrored corner is image-like, not empty


def test_faces_come_largest_first_and_a_faceless_picture_has_none(aligned):
    picture = background(700)
    picture.paste(aligned.resize((150, 150)), (40, 60))
    picture.paste(aligned.resize((300, 300)), (330, 300))
    (crops,) = FacePolicy("detect").crops([picture])
    assert [c.face for c in crops] == [0, 1]
    widths = [c.box[2] - c.box[0] for c in crops]
    assert widths[0] > widths[1]
    assert FacePolicy("detect").crops([background(300, seed=3)]) == [[]]


def test_the_face_mode_follows_what_the_model_was_trained_on():
    assert FacePolicy("auto", "aligned_faces").detects
    assert not FacePolicy("auto", "whole_images").detects
    assert not FacePolicy("auto", None).detects
    assert FacePolicy("detect", "whole_images").detects
    (line,) = FacePolicy("detect", "whole_images").notices("demo.ckpt")
    assert line.startswith("warning: demo.ckpt was trained on whole images")
    (line,) = FacePolicy("off", "aligned_faces").notices("faces.ckpt")
    assert "faces=off" in line and line.startswith("warning:")
    assert FacePolicy("auto", "aligned_faces").notices("faces.ckpt") == []
    with pytest.raises(DeepInsightError, match="faces must be one of"):
        FacePolicy("sometimes")
    with pytest.raises(DeepInsightError, match="landmarks must be one of mtcnn, dlib"):
        FacePolicy("detect", detector={"landmarks": "eyeballed"})
    with pytest.raises(DeepInsightError, match=r"unknown face_detector option\(s\) min_face;"):
        FacePolicy("detect", detector={"min_face": 3})
    # Images scored whole come back as they are, one crop each.
    picture = background(50)
    assert FacePolicy("off").crops([picture])[0][0].image is picture


def test_align_face_output_size_and_large_faces_are_reduced_first(aligned):
    # A face far larger than the output goes through the integer reduction step.
    big = aligned.resize((1536, 1536), Image.Resampling.BICUBIC)
    (faces,) = FaceFinder(detect_size=512).find([big])
    crop = align_face(big, faces[0].landmarks, size=128)
    assert crop.size == (128, 128)
    assert mean_abs_difference(aligned, crop) < PLACED_PIXEL_ERROR


def test_video_aggregates():
    assert aggregate_scores([0.2, 0.4, 0.9]) == pytest.approx(0.5)
    # confident: 12 confident fakes of 20 (> 11 and > 20 / 2.5) -> their mean.
    scores = [0.9] * 12 + [0.1] * 8
    assert aggregate_scores(scores, "confident") == pytest.approx(0.9)
    # 10 confident fakes are too few: the mean of all, unless 90% are confidently real.
    scores = [0.9] * 10 + [0.5] * 10
    assert aggregate_scores(scores, "confident") == pytest.approx(0.7)
    scores = [0.1] * 19 + [0.6]
    assert aggregate_scores(scores, "confident") == pytest.approx(0.1)
    with pytest.raises(ValueError):
        aggregate_scores([], "mean")
    with pytest.raises(ValueError, match="video_aggregate"):
        aggregate_scores([0.5], "median")
