"""benchmarks/face_pipeline.py runs end to end at its smallest settings (``--quick``) and writes
every figure; it never asserts on time, and neither does this."""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import face_pipeline  # noqa: E402


def test_quick_run_writes_every_figure(tmp_path):
    out = tmp_path / "face_pipeline.json"
    # In this process (torch is already imported), with an untrained custom CNN made on the spot.
    face_pipeline.main(["--quick", "--make-model", "custom_cnn", "--out", str(out)])
    record = json.loads(out.read_text())
    assert {"avx2", "avx512f"} <= set(record["cpu"]) and record["torch"]
    for row in record["photos"]["rows"].values():
        assert row["faces"] >= 1 and row["crops"] == row["faces"]
        assert row["detect_images_per_s"] > 0 and row["detect_align_images_per_s"] > 0
    predict = record["predict"]
    assert predict["rows"]["off"]["errors"] == 0 and predict["rows"]["detect"]["errors"] == 0
    assert predict["rows"]["detect"]["rows"] >= predict["rows"]["off"]["rows"] == predict["files"]
    assert predict["face_share"] < 1
    assert record["mtcnn_batching"]["ratio_separate_over_batched"] > 0
    for case in ("sampling", "sampling_long", "sampling_long_keyint25"):
        assert record["video"][case]["same_frames_picked"]
    memory = list(record["memory"].values())
    assert len(memory) == 2 and all(m["peak_kb"] >= m["rss_before_kb"] > 0 for m in memory)
