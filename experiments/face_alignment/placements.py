"""How close the FFHQ crop of a face turned, scaled and moved inside a larger picture lands to
where it belongs, with MTCNN's first landmarks and with them found again on the upright crop
(``deepinsight.faces.policy.refine_landmarks``, what DeepInsight does).

The face is the astronaut's aligned crop (skimage), pasted at 5 angles x 3 scales; where its
crop belongs is known from the paste, so the error is exact: the largest distance between a
crop corner and where it should be, in pixels of the 256 px crop.

    python experiments/face_alignment/placements.py   # writes placements.json beside it
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
from helpers.face_pictures import astronaut, place  # noqa: E402

from deepinsight.faces import FaceFinder, FacePolicy, ffhq_quad  # noqa: E402
from deepinsight.faces.alignment import quad_geometry  # noqa: E402
from deepinsight.faces.policy import refine_landmarks  # noqa: E402

SIZE = 256
ANGLES = (-25, -10, 0, 10, 25)
SCALES = (0.5, 1.0, 2.0)
OFFSET = (37, -21)


def placed(points: np.ndarray, angle: float, scale: float, canvas: int) -> np.ndarray:
    """Where ``points`` of the crop land after ``place`` (scale, turn about the centre, move)."""
    side = round(SIZE * scale)
    p = np.asarray(points) * scale - side / 2
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    turned = np.stack([p[:, 0] * c + p[:, 1] * s, -p[:, 0] * s + p[:, 1] * c], 1)
    return turned + np.array([canvas // 2 + OFFSET[0], canvas // 2 + OFFSET[1]])


def worst_corner(quad: np.ndarray, truth: np.ndarray) -> float:
    return float(np.hypot(*(quad - truth).T).max() / quad_geometry(truth)[1] * SIZE)


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            flags = Path("/proc/cpuinfo").read_text()
            isa = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
            return f"{line.split(':', 1)[1].strip()} ({isa}, {os.cpu_count()} cores)"
    return platform.machine()


def main() -> None:
    torch.set_num_threads(1)
    finder = FaceFinder()
    crop = FacePolicy("detect").crops([astronaut()])[0][0].image
    (own,) = finder.find([crop])
    reference = refine_landmarks(finder, [(crop, own[0].landmarks)], SIZE)[0]
    rows = []
    for angle in ANGLES:
        for scale in SCALES:
            canvas = round(SIZE * scale * 1.8) + 64
            picture = place(crop, angle, scale, OFFSET, canvas=canvas)
            face = finder.find([picture])[0][0]
            again = refine_landmarks(finder, [(picture, face.landmarks)], SIZE)[0]
            truth = ffhq_quad(placed(reference, angle, scale, canvas))
            rows.append({
                "angle": angle, "scale": scale,
                "first_pass_px": worst_corner(ffhq_quad(face.landmarks), truth),
                "refined_px": worst_corner(ffhq_quad(again), truth),
            })  # fmt: skip
    summary = {
        key: {"median": float(np.median([r[key] for r in rows])),
              "max": float(max(r[key] for r in rows))}
        for key in ("first_pass_px", "refined_px")
    }  # fmt: skip
    record = {
        "what": "worst crop-corner error (px at 256) of the astronaut's face pasted at "
        f"angles {ANGLES} x scales {SCALES}, offset {OFFSET}",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu_model(),
        "torch": torch.__version__,
        "summary": summary,
        "placements": rows,
    }
    out = Path(__file__).with_name("placements.json")
    out.write_text(json.dumps(record, indent=1) + "\n")
    for key, values in summary.items():
        print(f"{key}: median {values['median']:.1f}, max {values['max']:.1f} px at 256")
    print(f"-> {out}")


if __name__ == "__main__":
    main()
