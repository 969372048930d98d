"""Labelled photos and videos through the face pipeline, for ``evaluate``.

Each sample (an image or a video file, labelled real or fake) gets one score:

- a photo: its highest face score (a photo is as fake as its most fake face), or its own score
  when it is scored whole;
- a video: its ``video`` row, the aggregate of its frame-face scores (``video_aggregate``).

A video's frame rows are kept too, each with its video's label, for frame-level metrics. A file
that cannot be used, or in which no face is found, has no score; evaluate names it as skipped.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from deepinsight.data.layouts import Sample
from deepinsight.faces.policy import face_mode
from deepinsight.inference.detector import Detector
from deepinsight.inference.scoring import ScoringOptions, face_policy, score_inputs
from deepinsight.inference.video import is_video_path
from deepinsight.metrics import summarize_predictions
from deepinsight.uncertainty import with_confidence_intervals


@dataclass
class MediaScores:
    """Per-sample scores (NaN where none), reasons for those, and every scored frame."""

    scores: np.ndarray
    errors: dict[int, str]
    frame_paths: list[str] = field(default_factory=list)
    frame_index: list[int] = field(default_factory=list)
    frame_faces: list[int | None] = field(default_factory=list)
    frame_labels: list[int] = field(default_factory=list)
    frame_scores: list[float] = field(default_factory=list)


def scoring_options(cfg: Mapping[str, Any]) -> ScoringOptions:
    """evaluate's config -> the face pipeline's options (the keys predict has too)."""
    return ScoringOptions(
        faces=face_mode(cfg.get("faces", "auto")),
        frames=int(cfg.get("frames", 32)),
        video_aggregate=str(cfg.get("video_aggregate", "mean")),
        batch_size=int(cfg["batch_size"]),
        num_workers=int(cfg["num_workers"]),
        max_pixels=cfg["max_pixels"],
        crop_size=int(cfg.get("crop_size", 256)),
        face_detector=dict(cfg.get("face_detector") or {}),
    )


def needs_face_pipeline(
    detector: Detector, samples: Sequence[Sample], options: ScoringOptions
) -> bool:
    """Whether faces are detected or videos are present; otherwise the plain image batches
    (``evaluate.score_samples``) give the same scores, faster."""
    return face_policy(detector, options).detects or any(is_video_path(s.path) for s in samples)


def score_media(
    detector: Detector, samples: Sequence[Sample], options: ScoringOptions
) -> MediaScores:
    """Score every sample through :func:`deepinsight.inference.scoring.score_inputs`."""
    result = MediaScores(np.full(len(samples), np.nan, dtype=np.float64), {})
    disable = True if len(samples) <= options.batch_size else None  # a terminal only
    scored = score_inputs(detector, [s.path for s in samples], options)
    with tqdm(total=len(samples), unit="file", file=sys.stderr, disable=disable) as progress:
        for index, (sample, item) in enumerate(zip(samples, scored)):
            progress.update(1)
            top = [r for r in item.rows if r.kind != "frame"]
            usable = [r.score for r in top if r.score is not None]
            if not usable:
                result.errors[index] = next((r.error for r in top if r.error), "no score")
                continue
            result.scores[index] = max(usable)
            for row in item.rows:
                if row.kind == "frame" and row.score is not None:
                    result.frame_paths.append(row.path)
                    result.frame_index.append(int(row.frame or 0))
                    result.frame_faces.append(row.face)
                    result.frame_labels.append(int(sample.label))
                    result.frame_scores.append(float(row.score))
    return result


def face_and_video_blocks(
    media: MediaScores, options: ScoringOptions, out_dir: Path, cfg: Mapping[str, Any]
) -> dict[str, Any]:
    """results.json's ``faces`` block and, for videos, ``frame_level`` (+ frame_predictions.csv).

    Frames of one video are not independent, so frame-level intervals resample videos, each
    with all its frames (a cluster bootstrap, ``deepinsight.uncertainty``).
    """
    blocks: dict[str, Any] = {
        "faces": {
            "mode": options.faces,
            "image_score": "the highest face score of the image",
            "video_score": options.video_aggregate,
            "frames_per_video": options.frames,
        }
    }
    if not media.frame_scores:
        return blocks
    labels = np.asarray(media.frame_labels, dtype=np.int64)
    scores = np.asarray(media.frame_scores, dtype=np.float64)
    summary = summarize_predictions(labels, scores, threshold=0.5)
    block = with_confidence_intervals(
        summary,
        labels,
        scores,
        int(cfg["n_bootstrap"]),
        int(cfg["bootstrap_seed"]),
        clusters=media.frame_paths,
    )
    block.pop("confusion_matrix", None)
    block["n_videos"] = len(set(media.frame_paths))
    block["note"] = "intervals resample videos, each with all its frames (frames are correlated)"
    blocks["frame_level"] = block
    with (out_dir / "frame_predictions.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["path", "frame", "face", "label", "score"])
        for row in zip(media.frame_paths, media.frame_index, media.frame_faces,
                       media.frame_labels, media.frame_scores):  # fmt: skip
            writer.writerow(["" if value is None else value for value in row])
    auroc = block.get("auroc")
    interval = (block.get("ci95") or {}).get("auroc")
    shown = "n/a" if auroc is None else f"{auroc:.4f}"
    if interval:
        shown += f" [{interval[0]:.3f}, {interval[1]:.3f}]"
    print(
        f"frame-level AUROC {shown} over {labels.size} frame faces of {block['n_videos']} videos",
        file=sys.stderr,
    )
    return blocks
