"""FFHQ's face crop, computed from five landmarks, so a face in a photo is cut like the training
faces of the 140k dataset were.

The recipe is the one NVlabs/ffhq-dataset describes (``recreate_aligned_images``), written here
from its description: with the eye centres and the mouth corners,

- ``eye_to_eye`` = right eye - left eye, ``eye_to_mouth`` = mouth-corner midpoint - eye midpoint;
- the crop is a square ("quad") of half-side ``max(2 |eye_to_eye|, 1.8 |eye_to_mouth|)``,
  oriented along ``eye_to_eye - rot90(eye_to_mouth)`` and centred at
  ``eye midpoint + 0.1 eye_to_mouth``;
- where the square leaves the image, the image is mirrored outwards, and the mirrored band fades
  towards a blurred copy and the median colour so that no seam shows;
- the square is then resampled to the output size (256 px: the size of the 140k dataset's files).

FFHQ took its landmarks from dlib's 68-point model; MTCNN's eye centres come from a different
model, so its crops are an approximation (the README gives the measured distance).
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageFilter

from deepinsight.faces.detection import LEFT_EYE, MOUTH_LEFT, MOUTH_RIGHT, RIGHT_EYE

#: The 140k dataset's files are FFHQ's 1024 px crops reduced to 256 px.
DEFAULT_CROP_SIZE = 256

# The auto rule (docs/inference.md): an image is already an aligned crop when its face's FFHQ
# square is nearly the image itself. On the astronaut's crop made by this module, MTCNN's
# square came back within 0.5 px of the centre, 0.5% of the side and 0.04 degrees; the
# tolerances leave room for crops made with other landmarks (FFHQ's own came from dlib, whose
# square's side differs from MTCNN's by a median 2.3%, at most 30%: experiments/face_alignment).
ALIGNED_CENTRE_TOLERANCE = 0.06  # of the image side
ALIGNED_SIDE_TOLERANCE = 0.12  # relative
ALIGNED_ANGLE_TOLERANCE = 6.0  # degrees
ALIGNED_ASPECT_TOLERANCE = 0.02  # relative difference of width and height


def _rot90(v: np.ndarray) -> np.ndarray:
    """(a, b) -> (-b, a): a quarter turn, in image coordinates (y down)."""
    return np.array([-v[1], v[0]])


def ffhq_quad(landmarks: np.ndarray) -> np.ndarray:
    """The (4, 2) corners of FFHQ's square for five landmarks (left eye, right eye, nose, left
    and right mouth corner): top-left, bottom-left, bottom-right, top-right, in image pixels."""
    marks = np.asarray(landmarks, dtype=np.float64)
    eye_left, eye_right = marks[LEFT_EYE], marks[RIGHT_EYE]
    eye_mid = (eye_left + eye_right) / 2
    eye_to_eye = eye_right - eye_left
    eye_to_mouth = (marks[MOUTH_LEFT] + marks[MOUTH_RIGHT]) / 2 - eye_mid
    across = eye_to_eye - _rot90(eye_to_mouth)  # the face's horizontal direction
    norm = np.hypot(*across)
    if norm == 0:
        raise ValueError("degenerate landmarks: the eyes and mouth coincide")
    half = max(2.0 * np.hypot(*eye_to_eye), 1.8 * np.hypot(*eye_to_mouth))
    x = across / norm * half
    y = _rot90(x)  # the face's downward direction
    centre = eye_mid + 0.1 * eye_to_mouth
    return np.stack([centre - x - y, centre - x + y, centre + x + y, centre + x - y])


def crop_to_image(points: np.ndarray, landmarks: np.ndarray, size: int) -> np.ndarray:
    """Points in the ``size`` px FFHQ crop of ``landmarks`` -> the same points in the image."""
    quad = ffhq_quad(landmarks)
    points = np.asarray(points, dtype=np.float64)
    across, down = (quad[3] - quad[0]) / size, (quad[1] - quad[0]) / size
    return quad[0] + np.outer(points[:, 0], across) + np.outer(points[:, 1], down)


def quad_geometry(quad: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Centre, side length and rotation (degrees, 0 = upright) of a quad."""
    centre = quad.mean(axis=0)
    top = quad[3] - quad[0]
    side = float(np.hypot(*top))
    return centre, side, math.degrees(math.atan2(top[1], top[0]))


def is_aligned_crop(size: tuple[int, int], landmarks: np.ndarray) -> bool:
    """Whether an image of ``size`` (w, h) is already the FFHQ crop of the face with these
    landmarks: square, and the face's FFHQ square nearly the image frame (same centre, same
    side, upright), within the tolerances above."""
    width, height = size
    if abs(width - height) > ALIGNED_ASPECT_TOLERANCE * max(width, height):
        return False
    side = (width + height) / 2
    centre, quad_side, angle = quad_geometry(ffhq_quad(landmarks))
    offset = np.hypot(*(centre - np.array([width / 2, height / 2])))
    return bool(
        offset <= ALIGNED_CENTRE_TOLERANCE * side
        and abs(quad_side / side - 1) <= ALIGNED_SIDE_TOLERANCE
        and abs(angle) <= ALIGNED_ANGLE_TOLERANCE
    )


def align_face(
    image: Image.Image, landmarks: np.ndarray, size: int = DEFAULT_CROP_SIZE
) -> Image.Image:
    """The ``size`` x ``size`` FFHQ crop of the face with ``landmarks`` in ``image`` (RGB)."""
    image = image.convert("RGB")
    quad = ffhq_quad(landmarks)
    quad_side = quad_geometry(quad)[1]

    # 1. A face many times larger than the output is first reduced by an integer factor, so
    #    the final resampling does not skip pixels (aliasing).
    shrink = int(quad_side / size / 2)
    if shrink > 1:
        reduced = (round(image.width / shrink), round(image.height / shrink))
        image = image.resize(reduced, Image.Resampling.LANCZOS)
        quad = quad / shrink
        quad_side /= shrink

    # 2. Work on the quad's bounding box plus a border, mirrored outwards where it leaves the image.
    border = max(round(quad_side * 0.1), 3)
    left, top = np.floor(quad.min(axis=0)).astype(int) - border
    right, bottom = np.ceil(quad.max(axis=0)).astype(int) + border
    region, origin = _padded_region(image, (left, top, right, bottom), quad_side)

    # 3. Resample the quad to 4x the output, then reduce with a Lanczos filter (FFHQ does the
    #    same): a bilinear quad transform straight to the output size would alias.
    corners = (quad - origin).flatten().tolist()
    working = size * 4
    warped = region.transform(
        (working, working), Image.Transform.QUAD, corners, Image.Resampling.BILINEAR
    )
    return warped.resize((size, size), Image.Resampling.LANCZOS)


def _padded_region(
    image: Image.Image, bounds: tuple[int, int, int, int], quad_side: float
) -> tuple[Image.Image, np.ndarray]:
    """The pixels inside ``bounds`` (left, top, right, bottom), with the parts outside the
    image filled by mirroring, faded towards a blur and the median colour; and the region's
    top-left corner in image coordinates."""
    left_edge, top_edge, right_edge, bottom_edge = bounds
    crop_box = (
        max(left_edge, 0),
        max(top_edge, 0),
        min(right_edge, image.width),
        min(bottom_edge, image.height),
    )
    region = image.crop(crop_box)
    pads = (
        crop_box[0] - left_edge,  # left
        crop_box[1] - top_edge,  # top
        right_edge - crop_box[2],  # right
        bottom_edge - crop_box[3],  # bottom
    )
    if max(pads) <= 0:
        return region, np.array(crop_box[:2], dtype=np.float64)
    pixels = np.asarray(region)
    pad_l, pad_t, pad_r, pad_b = (max(p, 0) for p in pads)
    # np.pad's "reflect" cannot pad past the array's own size; "symmetric" repeated is the same
    # mirror and works for any amount.
    padded = _mirror(pixels, ((pad_t, pad_b), (pad_l, pad_r)))
    height, width = padded.shape[:2]
    # Distance outside the original pixels, as a fraction of each pad (0 inside, 1 at the edge),
    # as one row and one column; only the bands outside the image are blended, below.
    xs, ys = np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32)
    fade_x = np.maximum((pad_l - xs) / max(pad_l, 1), (xs - (width - 1 - pad_r)) / max(pad_r, 1))
    fade_y = np.maximum((pad_t - ys) / max(pad_t, 1), (ys - (height - 1 - pad_b)) / max(pad_b, 1))
    radius = max(quad_side * 0.02, 1.0)
    margin = int(3 * radius) + 1  # what the blur of a band needs around it
    median = np.median(pixels[::4, ::4].reshape(-1, 3), axis=0)  # a sample is enough
    out = padded.copy()
    bands = (
        (0, pad_t, 0, width),
        (height - pad_b, height, 0, width),
        (0, height, 0, pad_l),
        (0, height, width - pad_r, width),
    )
    for top, bottom, left, right in bands:
        if bottom <= top or right <= left:
            continue
        outer = (max(top - margin, 0), min(bottom + margin, height),
                 max(left - margin, 0), min(right + margin, width))  # fmt: skip
        window = padded[outer[0] : outer[1], outer[2] : outer[3]]
        blurred = np.asarray(
            Image.fromarray(window).filter(ImageFilter.GaussianBlur(radius)), dtype=np.float32
        )[top - outer[0] : bottom - outer[0], left - outer[2] : right - outer[2]]
        fade = np.maximum(fade_y[top:bottom, None], fade_x[None, left:right])
        fade = np.clip(fade, 0.0, 1.0)[..., None]
        band = padded[top:bottom, left:right].astype(np.float32)
        band += (blurred - band) * np.clip(fade * 3.0, 0.0, 1.0)
        band += (median - band) * fade
        out[top:bottom, left:right] = np.clip(band.round(), 0, 255).astype(np.uint8)
    return Image.fromarray(out), np.array([left_edge, top_edge], dtype=np.float64)


def _mirror(pixels: np.ndarray, pads: tuple[tuple[int, int], tuple[int, int]]) -> np.ndarray:
    """Mirror-pad an (H, W, 3) array by any amount (repeating the mirror if needed)."""
    (top, bottom), (left, right) = pads
    while top or bottom or left or right:
        height, width = pixels.shape[:2]
        step = ((min(top, height), min(bottom, height)), (min(left, width), min(right, width)))
        pixels = np.pad(pixels, (*step, (0, 0)), mode="symmetric")
        top, bottom = top - step[0][0], bottom - step[0][1]
        left, right = left - step[1][0], right - step[1][1]
    return pixels
