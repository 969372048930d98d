"""The face pipeline's speed on the CPU: detection and alignment, their share of ``predict``,
and video frame sampling against decoding every frame, all in one process.

    python benchmarks/face_pipeline.py --out benchmarks/results/<machine>-<date>/face_pipeline.json
    python benchmarks/face_pipeline.py --quick          # a smoke run at the smallest sizes

1. **Photos.** scikit-image's astronaut (512 px), the same photo scaled to 1024 and 2000 px, and
   a group picture (the astronaut's aligned face pasted several times on a face-free canvas).
   Per picture: images/s of MTCNN detection alone (``FaceFinder.find``) and of detection plus
   FFHQ alignment as ``faces=detect`` does it (``FacePolicy("detect").crops``: detection, a
   first crop per face, the landmarks found again on those crops, the final crop); then the
   parts of the latter timed on their own (one ``align_face`` per face, MTCNN on the crops).
2. **predict.** ``score_inputs`` over a folder of JPEGs of those pictures with ``faces=off``
   and ``faces=detect`` (same files, detector, workers and batch size): both wall times, their
   ratio, and the face pipeline's share of the detect run, ``1 - t_off / t_detect``. The
   detector is the Quickstart's DenseNet121 (newest ``/tmp/qs/outputs/runs/*/checkpoints/
   best.ckpt``) if there is one, else an untrained one made on the spot. Then whether batching
   MTCNN pays: ``FaceFinder.find`` on 8 same-sized video frames in one call against 8 calls.
3. **Video.** A generated H.264 MP4 (the face moving over a panning background, libx264's
   default keyframe interval): ``sample_frames(path, 32)`` against decoding every frame with
   PyAV and keeping the same 32 (the naive baseline), both picking the same frame indices, on
   a 300-frame video and on a 3000-frame one, the latter also with a keyframe every 25 frames
   (1 s, as phones and streams write them); and the peak memory of sampling 32 frames from a
   short and from a long video, each measured in a fresh subprocess (``VmHWM`` of
   ``/proc/self/status``, reset after the imports).

Each timing is the median of ``--repeats`` runs (after an untimed warm-up); the figures being
compared are measured in this one process, one after the other. The CPU (model, AVX-512 or
not), torch's version and thread count, the date and the load average around each part are
printed and written beside the figures: the machine may be shared. It never asserts on time.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from quickstart_time import cpu_description  # noqa: E402

QUICKSTART_CKPTS = "/tmp/qs/outputs/runs/*/checkpoints/best.ckpt"
FRAMES = 32  # sample_frames' default, DeepfakeBench's convention
BATCH_FRAMES = 8  # deepinsight.inference.scoring.FRAME_CHUNK: frames per MTCNN call in predict

# (full, quick) settings.
SETTINGS = {
    "full": {
        "photo_sizes": (512, 1024, 2000),
        "group": ((1600, 1067), 5),
        "repeats": 5,
        "predict_photos": 24,
        "video": ((640, 360), 300),
        "memory": ((320, 180), 100, 3000),
    },
    "quick": {
        "photo_sizes": (512,),
        "group": ((640, 360), 2),
        "repeats": 1,
        "predict_photos": 4,
        "video": ((320, 180), 60),
        "memory": ((160, 90), 30, 300),
    },
}


# --- pictures -------------------------------------------------------------------------------


def background(size: tuple[int, int], seed: int = 0) -> Image.Image:
    """A smooth, face-free colour field."""
    rng = np.random.default_rng(seed)
    small = rng.integers(60, 200, size=(5, 7, 3), dtype=np.uint8)
    return Image.fromarray(small).resize(size, Image.Resampling.BICUBIC)


def astronaut(side: int = 512) -> Image.Image:
    from skimage import data

    photo = Image.fromarray(data.astronaut())
    return photo if side == 512 else photo.resize((side, side), Image.Resampling.LANCZOS)


def group_picture(face: Image.Image, size: tuple[int, int], count: int) -> Image.Image:
    """``count`` copies of the aligned ``face`` side by side, of different sizes, every other
    one mirrored: a group photo's worth of faces at realistic sizes."""
    canvas = background(size, seed=1)
    width, height = size
    slot = width // count
    for i in range(count):
        side = round(min(slot * 0.95, height * 0.6) * (0.75 + 0.25 * (i % 3) / 2))
        picture = face.resize((side, side), Image.Resampling.LANCZOS)
        if i % 2:
            picture = picture.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        top = (height - side) // 2 + round(height * 0.12 * math.sin(i * 2.0))
        canvas.paste(picture, (i * slot + (slot - side) // 2, top))
    return canvas


def video_frames(face: Image.Image, size: tuple[int, int], count: int) -> Iterator[Image.Image]:
    """The face (a third of the frame's height) moving over a slowly panning background."""
    width, height = size
    scenery = background((width * 3 // 2, height * 3 // 2), seed=2)
    side = height // 3 * 2
    face = face.resize((side, side), Image.Resampling.LANCZOS)
    for i in range(count):
        pan = i % (width // 2)
        frame = scenery.crop((pan, height // 8, pan + width, height // 8 + height))
        x = round((width - side) / 2 + (width - side) / 2.5 * math.sin(2 * math.pi * i / 90))
        y = round((height - side) / 2 + height / 10 * math.sin(2 * math.pi * i / 57))
        frame.paste(face, (x, y))
        yield frame


def write_video(path: Path, frames: Iterable[Image.Image], size: tuple[int, int],
                fps: int = 25, keyint: int | None = None) -> dict[str, Any]:  # fmt: skip
    """An H.264 MP4 (libx264, its default settings but for a ``keyint`` given: at most that
    many frames from one keyframe to the next), written as the frames come."""
    import av

    started = time.perf_counter()
    with av.open(str(path), "w") as container:
        options = {} if keyint is None else {"g": str(keyint)}
        stream = container.add_stream("libx264", rate=fps, options=options)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_image(frame)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    written_s = time.perf_counter() - started
    with av.open(str(path)) as container:
        packets = [p for p in container.demux(video=0) if p.size]
    return {
        "size": list(size),
        "fps": fps,
        "frames": len(packets),
        "keyframes": sum(p.is_keyframe for p in packets),
        "megabytes": round(path.stat().st_size / 1e6, 2),
        "written_s": round(written_s, 2),
    }


# --- timing ---------------------------------------------------------------------------------


WARM_UP = True  # --quick: no untimed first call (a smoke run, not figures to quote)


def median_s(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``fn`` over ``repeats`` calls, after one untimed call."""
    if WARM_UP:
        fn()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def load_average() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def machine() -> dict[str, Any]:
    import av
    import torch

    return {
        "date": datetime.now().strftime("%Y-%m-%d %H:%M"),
        "cpu": cpu_description(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "av": av.__version__,
        "python": platform.python_version(),
    }


# --- 1. photos ------------------------------------------------------------------------------


def photo_throughput(photos: dict[str, Image.Image], repeats: int) -> dict[str, Any]:
    from deepinsight.faces import FaceFinder, FacePolicy, align_face

    finder, policy = FaceFinder(), FacePolicy("detect")
    rows = {}
    for name, photo in photos.items():
        (faces,) = finder.find([photo])
        (crops,) = policy.crops([photo])
        detect_s = median_s(lambda photo=photo: finder.find([photo]), repeats)
        policy_s = median_s(lambda photo=photo: policy.crops([photo]), repeats)
        # The parts of policy.crops, each on its own: one align_face per face (it runs twice per
        # face: the first crop and the final one), and MTCNN on the first crops (the refinement).
        align_s = median_s(lambda p=photo, fs=faces: [align_face(p, f.landmarks) for f in fs],
                           repeats)  # fmt: skip
        first = [align_face(photo, f.landmarks) for f in faces]
        redetect_s = median_s(lambda first=first: finder.find(first), repeats) if first else 0.0
        rows[name] = {
            "size": list(photo.size),
            "faces": len(faces),
            "crops": len(crops),
            "detect_s": round(detect_s, 4),
            "detect_images_per_s": round(1 / detect_s, 2),
            "detect_align_s": round(policy_s, 4),
            "detect_align_images_per_s": round(1 / policy_s, 2),
            "align_face_all_faces_s": round(align_s, 4),
            "mtcnn_on_crops_s": round(redetect_s, 4),
        }
        r = rows[name]
        print(
            f"  {name:>16} {photo.width}x{photo.height}, {len(faces)} face(s): "
            f"detect {r['detect_images_per_s']:.2f} images/s ({detect_s * 1000:.0f} ms), "
            f"detect + align {r['detect_align_images_per_s']:.2f} images/s "
            f"({policy_s * 1000:.0f} ms; of which align_face {align_s * 1000:.0f} ms x2, "
            f"MTCNN on the crops {redetect_s * 1000:.0f} ms)",
            flush=True,
        )
    return rows


# --- 2. predict -----------------------------------------------------------------------------


def find_checkpoint(args, workdir: Path) -> tuple[Path, str]:
    if args.make_model is None:
        if args.ckpt is not None:
            return args.ckpt, "given"
        found = sorted(Path("/").glob(QUICKSTART_CKPTS.lstrip("/")))
        if found:
            return found[-1], "the Quickstart's (newest under /tmp/qs)"
    model = args.make_model or "densenet121"
    sys.path.insert(0, str(REPO / "tests"))
    from helpers.inference_fixtures import make_checkpoint

    path = make_checkpoint(workdir / f"{model}.ckpt", model=model, channels=1, image_size=64)
    return path, f"untrained {model}, 1 channel, 64 px (tests/helpers/inference_fixtures)"


def write_photos(photos: dict[str, Image.Image], count: int, folder: Path) -> list[Path]:
    """``count`` JPEGs cycling through the pictures; every other one mirrored, sizes +-4%."""
    folder.mkdir(parents=True, exist_ok=True)
    names, paths = list(photos), []
    for i in range(count):
        picture = photos[names[i % len(names)]]
        scale = 1 + 0.04 * ((i // len(names)) % 3 - 1)
        picture = picture.resize((round(picture.width * scale), round(picture.height * scale)),
                                 Image.Resampling.BILINEAR)  # fmt: skip
        if (i // len(names)) % 2:
            picture = picture.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        paths.append(folder / f"{i:02d}_{names[i % len(names)]}.jpg")
        picture.save(paths[-1], quality=90)
    return paths


def predict_share(args, photos: dict[str, Image.Image], count: int, workdir: Path,
                  repeats: int) -> dict[str, Any]:  # fmt: skip
    from deepinsight.inference import load_detector
    from deepinsight.inference.scoring import ScoringOptions, score_inputs

    ckpt, origin = find_checkpoint(args, workdir)
    detector = load_detector(ckpt, device="cpu")
    files = write_photos(photos, count, workdir / "photos")
    pixels = sum(math.prod(Image.open(p).size) for p in files)

    def run(faces: str) -> tuple[float, dict[str, int]]:
        options = ScoringOptions(faces=faces, num_workers=args.workers, batch_size=32)
        started = time.perf_counter()
        rows = [row for scored in score_inputs(detector, files, options) for row in scored.rows]
        wall = time.perf_counter() - started
        return wall, {"rows": len(rows), "errors": sum(r.error is not None for r in rows)}

    times: dict[str, list[float]] = {"off": [], "detect": []}
    counts = {}
    for _ in range(repeats):  # alternated, so a burst of other work falls on both
        for faces in ("off", "detect"):
            wall, counts[faces] = run(faces)
            times[faces].append(wall)
    t_off, t_detect = statistics.median(times["off"]), statistics.median(times["detect"])
    print(
        f"  {len(files)} JPEGs ({pixels / len(files) / 1e6:.2f} MP on average), "
        f"{detector.source.name} ({origin}), num_workers={args.workers}, batch_size=32:\n"
        f"  faces=off {t_off:.2f} s ({counts['off']['rows']} rows), faces=detect {t_detect:.2f} s "
        f"({counts['detect']['rows']} rows, {counts['detect']['errors']} without a face): "
        f"{t_detect / t_off:.2f}x; the face pipeline's share of the detect run: "
        f"{1 - t_off / t_detect:.0%}",
        flush=True,
    )
    return {
        "checkpoint": str(ckpt),
        "checkpoint_origin": origin,
        "files": len(files),
        "mean_megapixels": round(pixels / len(files) / 1e6, 3),
        "num_workers": args.workers,
        "batch_size": 32,
        "repeats": repeats,
        "off_s": [round(t, 3) for t in times["off"]],
        "detect_s": [round(t, 3) for t in times["detect"]],
        "rows": counts,
        "ratio_detect_over_off": round(t_detect / t_off, 3),
        "face_share": round(1 - t_off / t_detect, 3),
    }


def mtcnn_batching(video: Path, repeats: int) -> dict[str, Any]:
    from deepinsight.faces import FaceFinder
    from deepinsight.inference.video import sample_frames

    finder = FaceFinder()
    frames = [f.image for f in sample_frames(video, BATCH_FRAMES)]
    batched = median_s(lambda: finder.find(frames), repeats)
    separate = median_s(lambda: [finder.find([f]) for f in frames], repeats)
    found = sum(len(faces) for faces in finder.find(frames))
    print(
        f"  {len(frames)} frames of {frames[0].width}x{frames[0].height} ({found} faces): one "
        f"call {batched:.3f} s, {len(frames)} calls {separate:.3f} s: batched is "
        f"{separate / batched:.2f}x",
        flush=True,
    )
    return {
        "frames": len(frames),
        "frame_size": list(frames[0].size),
        "faces_found": found,
        "one_call_s": round(batched, 4),
        "separate_calls_s": round(separate, 4),
        "ratio_separate_over_batched": round(separate / batched, 3),
    }


# --- 3. video -------------------------------------------------------------------------------


def decode_every_frame(path: Path, count: int) -> list[int]:
    """The naive baseline: decode the whole video, keep (as pictures) the frames at the centres
    of ``count`` equal segments, the ones sample_frames picks."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        total = stream.frames
        n = min(count, total)
        targets = {int((i + 0.5) * total / n) for i in range(n)}
        picked = []
        for index, frame in enumerate(container.decode(stream)):
            if index in targets:
                frame.to_image()
                picked.append(index)
    return picked


def sampling_speed(video: Path, repeats: int) -> dict[str, Any]:
    from deepinsight.inference.video import sample_frames

    def sample() -> list[int]:
        return [frame.index for frame in sample_frames(video, FRAMES)]

    same = sample() == decode_every_frame(video, FRAMES)
    seek_s = median_s(sample, repeats)
    naive_s = median_s(lambda: decode_every_frame(video, FRAMES), repeats)
    print(
        f"  {video.name}: decode every frame and keep {FRAMES}: {naive_s:.3f} s, "
        f"sample_frames({FRAMES}): {seek_s:.3f} s: {naive_s / seek_s:.2f}x "
        f"(same frames picked: {same})",
        flush=True,
    )
    return {
        "frames": FRAMES,
        "decode_every_frame_s": round(naive_s, 4),
        "sample_frames_s": round(seek_s, 4),
        "ratio": round(naive_s / seek_s, 3),
        "same_frames_picked": same,
    }


# Run in a fresh interpreter per video. video.py is loaded from its file, not as
# deepinsight.inference.video, so the package's imports (torch and the rest) stay out of it.
MEMORY_PROBE = """
import importlib.util, sys
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])
spec = importlib.util.spec_from_file_location("video", sys.argv[1])
video = sys.modules["video"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(video)
import av  # noqa: F401
before = status("VmRSS")
try:  # Linux >= 4.0: "5" resets the high-water mark to the current RSS
    open("/proc/self/clear_refs", "w").write("5")
    reset = True
except OSError:
    reset = False
n = sum(1 for _ in video.sample_frames(sys.argv[2], int(sys.argv[3])))
print(before, status("VmHWM"), n, reset)
"""


def sampling_memory(video: Path) -> dict[str, Any]:
    from deepinsight.inference import video as video_module

    done = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, video_module.__file__, str(video), str(FRAMES)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    before, peak, sampled, reset = done.stdout.split()
    return {
        "rss_before_kb": int(before),
        "peak_kb": int(peak),
        "growth_kb": int(peak) - int(before),
        "frames_sampled": int(sampled),
        "peak_reset_after_imports": reset == "True",
    }


# --- main -----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run at the smallest sizes")
    parser.add_argument("--repeats", type=int, help="timings per figure (median)")
    parser.add_argument("--photos", type=int, help="JPEGs scored in the predict comparison")
    parser.add_argument("--workers", type=int, default=2, help="predict's num_workers")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads for parts 1 and 3 (predict's workers use 1 each)",
    )
    parser.add_argument("--ckpt", type=Path, help="the detector for the predict comparison")
    parser.add_argument("--make-model", help="score with an untrained MODEL made on the spot")
    parser.add_argument("--out", type=Path, help="write the figures here as JSON")
    args = parser.parse_args(argv)
    settings = SETTINGS["quick" if args.quick else "full"]
    global WARM_UP
    WARM_UP = not args.quick

    import torch

    # predict's DataLoader workers, where faces are found, run one torch thread each.
    default_threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        return measure(args, settings, default_threads)
    finally:
        torch.set_num_threads(default_threads)


def measure(args, settings: dict[str, Any], default_threads: int) -> dict[str, Any]:
    import torch

    from deepinsight.faces import FacePolicy

    started = time.perf_counter()
    repeats = args.repeats or settings["repeats"]
    record: dict[str, Any] = {"benchmark": "face_pipeline", **machine()}
    record["torch_threads_default"] = default_threads
    record["args"] = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    cpu = record["cpu"]
    print(
        f"{record['date']}, CPU: {cpu['model']} ({cpu['cores']} cores, AVX2 {cpu['avx2']}, "
        f"AVX-512 {cpu['avx512f']}), torch {record['torch']} ({record['torch_threads']} "
        f"thread(s); {default_threads} in predict's main process), PyAV {record['av']}, "
        f"load average {load_average()}",
        flush=True,
    )

    photo = astronaut()
    (crops,) = FacePolicy("detect").crops([photo])
    face = crops[0].image  # the astronaut's face, FFHQ-aligned, 256 px
    photos = {f"astronaut_{side}": astronaut(side) for side in settings["photo_sizes"]}
    group_size, group_faces = settings["group"]
    photos[f"group_{group_faces}_faces"] = group_picture(face, group_size, group_faces)

    with tempfile.TemporaryDirectory(prefix="face-pipeline-") as tmp:
        workdir = Path(tmp)
        print(f"1. detection and alignment, one picture per call, median of {repeats}:")
        record["photos"] = {"load_before": load_average(), "repeats": repeats}
        record["photos"]["rows"] = photo_throughput(photos, repeats)
        record["photos"]["load_after"] = load_average()

        print("2. their share of predict (score_inputs):", flush=True)
        count = args.photos or settings["predict_photos"]
        predict_repeats = 1 if args.quick else 2
        load = load_average()
        torch.set_num_threads(default_threads)  # predict's main process, which scores
        record["predict"] = predict_share(args, photos, count, workdir, predict_repeats)
        torch.set_num_threads(args.threads)
        record["predict"]["load_before"], record["predict"]["load_after"] = load, load_average()

        size, frames = settings["video"]
        video = workdir / f"moving_face_{size[0]}x{size[1]}_{frames}.mp4"
        record["video"] = {"file": write_video(video, video_frames(face, size, frames), size)}
        info = record["video"]["file"]
        print(
            f"   MTCNN batching, on frames of {video.name} ({info['frames']} frames, "
            f"{info['keyframes']} keyframe(s)):",
            flush=True,
        )
        record["mtcnn_batching"] = mtcnn_batching(video, repeats)

        print(f"3. video: {FRAMES} frames, median of {repeats}:", flush=True)
        record["video"]["load_before"] = load_average()
        record["video"]["sampling"] = sampling_speed(video, repeats)
        record["video"]["load_after"] = load_average()

        size, short, long = settings["memory"]
        record["memory"] = {}
        for frames in (short, long):
            path = workdir / f"moving_face_{size[0]}x{size[1]}_{frames}.mp4"
            info = write_video(path, video_frames(face, size, frames), size)
            memory = sampling_memory(path)
            record["memory"][str(frames)] = {"file": info, **memory}
            print(
                f"  {path.name} ({info['frames']} frames, {info['keyframes']} keyframe(s), "
                f"{info['megabytes']} MB): peak RSS while sampling {memory['frames_sampled']} "
                f"frames {memory['peak_kb'] / 1024:.1f} MiB, {memory['growth_kb'] / 1024:+.1f} "
                f"MiB over the {memory['rss_before_kb'] / 1024:.1f} MiB after the imports",
                flush=True,
            )
        # Seeking pays when the samples are further apart than the keyframes; libx264's default
        # puts a keyframe every 250 frames (10 s at 25 fps), phones and streams every 1-2 s.
        long_video = workdir / f"moving_face_{size[0]}x{size[1]}_{long}.mp4"
        record["video"]["sampling_long"] = sampling_speed(long_video, repeats)
        short_gops = workdir / f"moving_face_{size[0]}x{size[1]}_{long}_keyint25.mp4"
        info = write_video(short_gops, video_frames(face, size, long), size, keyint=25)
        print(f"  {short_gops.name}: {info['frames']} frames, {info['keyframes']} keyframes")
        record["video"]["sampling_long_keyint25"] = {
            "file": info,
            **sampling_speed(short_gops, repeats),
        }

    record["total_s"] = round(time.perf_counter() - started, 1)
    print(f"total {record['total_s']:.0f} s, load average {load_average()}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(record, indent=1) + "\n")
        print(f"-> {args.out}")
    return record


if __name__ == "__main__":
    main()
