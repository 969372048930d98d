"""predict: one row per file, scores = P(fake) from the checkpoint, errors reported, exit codes."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers.inference_fixtures import (
    ONE_THREAD_ENV,
    make_checkpoint,
    random_rgb,
    run_cli,
    write_broken_images,
    write_good_images,
)

from deepinsight.data.image_io import load_image
from deepinsight.data.transforms import build_eval_transform
from deepinsight.errors import EXIT_OK, EXIT_SOME_FILES_FAILED, EXIT_USER_ERROR
from deepinsight.inference import load_detector
from deepinsight.inference.results import COLUMNS
from deepinsight.predict import main

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "custom_cnn.ckpt", threshold=0.5)


@pytest.fixture
def photos(tmp_path) -> list[Path]:
    """Six RGB photos: four in photos/, two in photos/nested/."""
    paths = []
    for i in range(6):
        folder = tmp_path / "photos" / ("nested" if i >= 4 else "")
        folder.mkdir(parents=True, exist_ok=True)
        random_rgb(seed=i).save(folder / f"face{i}.png")
        paths.append(folder / f"face{i}.png")
    return paths


def predict(capsys, *args: str) -> tuple[int, list[dict[str, str]], str]:
    """Run predict to stdout in-process: (exit code, CSV rows, stderr)."""
    code, out, err = run_cli(main, ["output=-", "num_workers=0", *args], capsys)
    return code, list(csv.DictReader(io.StringIO(out))), err


def expected_scores(ckpt: Path, paths: list[Path]) -> list[float]:
    """P(fake) computed directly: load_image -> eval transform -> network -> sigmoid."""
    detector = load_detector(ckpt, device="cpu")
    transform = build_eval_transform(detector.preprocessing)
    batch = torch.stack([transform(load_image(p)) for p in paths])
    with torch.no_grad():
        return torch.sigmoid(detector.net(batch)).tolist()


def test_scores_every_mode_and_format_and_reports_broken_files(tmp_path, ckpt, capsys):
    good = write_good_images(tmp_path / "zoo")
    broken = write_broken_images(tmp_path / "zoo" / "broken")

    code, rows, err = predict(capsys, f"ckpt={ckpt}", f"inputs=[{tmp_path / 'zoo'}]")

    assert code == EXIT_SOME_FILES_FAILED == 3
    assert list(rows[0]) == list(COLUMNS)  # path,kind,frame,time_s,face,box,score,prediction,error
    assert {r["kind"] for r in rows} == {"image"}  # a model trained on whole images
    by_path = {Path(r["path"]): r for r in rows}
    assert set(by_path) == set(good) | set(broken)  # one row per file, nothing else
    for path in good:
        row = by_path[path]
        assert row["error"] == "", (path.name, row["error"])
        assert 0.0 <= float(row["score"]) <= 1.0
        assert row["prediction"] == ("fake" if float(row["score"]) >= 0.5 else "real")
    for path, reason in broken.items():
        row = by_path[path]
        assert reason in row["error"] and row["score"] == row["prediction"] == ""
    counts = {p: sum(r["prediction"] == p for r in rows) for p in ("fake", "real")}
    assert f"{counts['fake']} fake, {counts['real']} real, {len(broken)} error(s)" in err


def test_scores_equal_the_network_and_rows_keep_input_order(tmp_path, ckpt, photos, capsys):
    code, rows, _ = predict(
        capsys, f"ckpt={ckpt}", f"inputs=[{photos[3]},{tmp_path / 'photos'}]", "batch_size=4"
    )
    assert code == EXIT_OK
    # The explicit file first, then the folder walked in sorted order, without the duplicate.
    order = [photos[3], photos[0], photos[1], photos[2], photos[4], photos[5]]
    assert [Path(r["path"]) for r in rows] == order
    scores = [float(r["score"]) for r in rows]
    assert scores == pytest.approx(expected_scores(ckpt, order), abs=1e-6)
    assert len({round(s, 3) for s in scores}) > 1  # the images really were told apart


def test_threshold_override_changes_predictions(ckpt, photos, capsys):
    inputs = f"inputs=[{photos[0].parent}]"
    _, rows, err = predict(capsys, f"ckpt={ckpt}", inputs)
    assert "threshold 0.5 (stored)" in err
    scores = sorted(float(r["score"]) for r in rows)
    middle = (scores[2] + scores[3]) / 2  # three scores on each side
    _, rows_low, _ = predict(capsys, f"ckpt={ckpt}", inputs, "threshold=0.0")
    _, rows_mid, err = predict(capsys, f"ckpt={ckpt}", inputs, f"threshold={middle}")
    assert {r["prediction"] for r in rows_low} == {"fake"}  # score >= 0 always
    assert sorted(r["prediction"] for r in rows_mid) == ["fake"] * 3 + ["real"] * 3
    assert "(given)" in err
    assert [r["score"] for r in rows_mid] == [r["score"] for r in rows]


def test_json_output_to_a_file(tmp_path, ckpt, photos, capsys):
    output = tmp_path / "out" / "preds.json"
    code, out, err = run_cli(
        main,
        [f"ckpt={ckpt}", f"inputs={photos[0]}", f"output={output}", "format=json"],
        capsys,
    )
    assert code == EXIT_OK and out == ""
    rows = json.loads(output.read_text())
    whole_image = {"kind": "image", "frame": None, "time_s": None, "face": None, "box": None}
    assert rows == [
        {
            "path": str(photos[0]),
            **whole_image,
            "score": rows[0]["score"],
            "prediction": rows[0]["prediction"],
            "error": None,
        }
    ]
    assert rows[0]["score"] == pytest.approx(expected_scores(ckpt, [photos[0]])[0], abs=1e-6)
    assert str(output) in err


def test_json_to_stdout_reports_errors_as_null_scores(tmp_path, ckpt, capsys):
    broken = write_broken_images(tmp_path)
    empty = next(p for p, r in broken.items() if r == "empty")
    code, out, _ = run_cli(
        main, [f"ckpt={ckpt}", f"inputs=[{empty}]", "output=-", "format=json"], capsys
    )
    assert code == EXIT_SOME_FILES_FAILED
    whole_image = {"kind": "image", "frame": None, "time_s": None, "face": None, "box": None}
    assert json.loads(out) == [
        {"path": str(empty), **whole_image, "score": None, "prediction": None,
         "error": "empty file"}
    ]  # fmt: skip


def test_globs_folders_and_explicit_files(tmp_path, ckpt, photos, capsys):
    odd = tmp_path / "photo.data"  # no image extension: used only when named explicitly
    random_rgb().save(odd, format="PNG")
    (tmp_path / "photos" / "notes.txt").write_text("not an image")
    code, rows, _ = predict(
        capsys, f"ckpt={ckpt}", f"inputs=[{odd},'{tmp_path}/photos/**/face[45].png']"
    )
    assert code == EXIT_OK
    assert [Path(r["path"]) for r in rows] == [odd, photos[4], photos[5]]
    _, rows, _ = predict(capsys, f"ckpt={ckpt}", f"inputs={tmp_path}")
    assert odd not in {Path(r["path"]) for r in rows}  # folders are searched by extension
    assert len(rows) == len(photos)


def test_parallel_decoding_gives_the_same_rows(ckpt, photos, capsys):
    args = (f"ckpt={ckpt}", f"inputs=[{photos[0].parent}]", "batch_size=2")
    _, serial, _ = predict(capsys, *args)
    _, parallel, _ = predict(capsys, *args, "num_workers=2")
    assert parallel == serial and len(serial) == 6


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["inputs=[{photos}/missing.png]"], "input not found: "),
        (["inputs=['{photos}/*.nothing']"], "matches no image files"),
        (["inputs=[]"], "no inputs given"),
        (["threshold=1.5"], "threshold must be a number in [0, 1]"),
        (["format=xml"], "format must be one of"),
        (["batch_size=0"], "batch_size must be an integer >= 1"),
        (["colour=red"], "bad argument: Could not override 'colour'. Valid options: ckpt, "),
        (["+colour=red"], "unknown option(s) colour"),
        (["cam=true"], "cam=true needs cam_dir=DIR"),
        (["output={photos}"], "cannot write output"),
    ],
)
def test_user_errors_exit_2_with_one_line(ckpt, photos, capsys, args, message):
    argv = [f"ckpt={ckpt}", f"inputs=[{photos[0]}]"] + [
        a.format(photos=photos[0].parent) for a in args
    ]
    code, out, err = run_cli(main, argv, capsys)
    assert code == EXIT_USER_ERROR == 2
    assert out == ""
    assert err.startswith("error: ") and message in err
    assert err.count("\n") == 1  # one line, no traceback


def test_bad_checkpoints_exit_2_with_one_line(tmp_path, photos, capsys):
    not_a_model = tmp_path / "notes.ckpt"
    not_a_model.write_text("hello, I am a text file\n")
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1)}}, foreign)
    broken_zip = tmp_path / "broken.ckpt"
    broken_zip.write_bytes(b"PK\x03\x04" + b"\0" * 64)
    cases = {
        tmp_path / "missing.ckpt": "checkpoint not found",
        not_a_model: "neither a DeepInsight checkpoint (.ckpt) nor an ONNX model",
        foreign: "not a DeepInsight checkpoint (no 'deepinsight' metadata)",
        broken_zip: "not a readable checkpoint",
        tmp_path: "is not a file",
    }
    for path, message in cases.items():
        code, out, err = run_cli(main, [f"ckpt={path}", f"inputs=[{photos[0]}]"], capsys)
        assert code == EXIT_USER_ERROR, path
        assert message in err and err.count("\n") == 1, err


def test_non_finite_scores_are_errors_not_answers(tmp_path, photos, capsys):
    broken = make_checkpoint(tmp_path / "nan.ckpt")
    checkpoint = torch.load(broken, weights_only=True)
    checkpoint["state_dict"]["net.head.bias"].fill_(float("nan"))
    torch.save(checkpoint, broken)
    code, rows, _ = predict(capsys, f"ckpt={broken}", f"inputs=[{photos[0]}]")
    assert code == EXIT_SOME_FILES_FAILED
    assert rows[0]["score"] == "" and "non-finite score" in rows[0]["error"]


class _WritesAFileWhenUnpickled:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_checkpoint_holding_code_is_refused_without_running_it(tmp_path, photos, capsys):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.ckpt"
    make_checkpoint(evil)
    checkpoint = torch.load(evil, weights_only=True)
    checkpoint["deepinsight"]["threshold_rule"] = _WritesAFileWhenUnpickled(marker)
    torch.save(checkpoint, evil)

    code, _, err = run_cli(main, [f"ckpt={evil}", f"inputs=[{photos[0]}]"], capsys)

    assert code == EXIT_USER_ERROR
    assert "refusing to load" in err and "GLOBAL" in err and err.count("\n") == 1
    assert not marker.exists()


def test_invalid_metadata_is_named(tmp_path, photos, capsys):
    bad = make_checkpoint(tmp_path / "bad.ckpt")
    checkpoint = torch.load(bad, weights_only=True)
    checkpoint["deepinsight"]["preprocessing"]["resize"] = "bicubic"
    torch.save(checkpoint, bad)
    newer = make_checkpoint(tmp_path / "newer.ckpt")
    checkpoint = torch.load(newer, weights_only=True)
    checkpoint["deepinsight"]["format_version"] = 99
    torch.save(checkpoint, newer)
    wrong = make_checkpoint(tmp_path / "wrong.ckpt")
    checkpoint = torch.load(wrong, weights_only=True)
    checkpoint["deepinsight"]["model"]["kwargs"] = {"widths": [8, 16]}
    torch.save(checkpoint, wrong)
    for path, message in [
        (bad, "resize='bicubic'"),
        (newer, "newer DeepInsight (format_version 99"),
        (wrong, "weights do not fit a custom_cnn"),
    ]:
        code, _, err = run_cli(main, [f"ckpt={path}", f"inputs=[{photos[0]}]"], capsys)
        assert code == EXIT_USER_ERROR and message in err and err.count("\n") == 1, err


def test_command_line_as_documented(tmp_path, ckpt, photos):
    """The real entry point, with the list syntax from the README; no Hydra files in the cwd."""
    broken = write_broken_images(tmp_path / "bad")
    work = tmp_path / "cwd"
    work.mkdir()
    result = subprocess.run(
        [
            sys.executable, "-m", "deepinsight.predict", f"ckpt={ckpt}",
            f'inputs=[{photos[0]},{tmp_path / "photos" / "nested"},"{tmp_path}/bad/*.jpg"]',
            "output=preds.csv",
        ],
        cwd=work, capture_output=True, text=True, timeout=120, env=ONE_THREAD_ENV,
    )  # fmt: skip
    assert result.returncode == EXIT_SOME_FILES_FAILED, result.stderr
    rows = list(csv.DictReader((work / "preds.csv").open()))
    jpgs = sorted(p for p in broken if p.suffix == ".jpg")
    assert [Path(r["path"]) for r in rows] == [photos[0], photos[4], photos[5], *jpgs]
    assert sorted(p.name for p in work.iterdir()) == ["preds.csv"]  # no outputs/, .hydra, logs
    assert result.stdout == ""
    assert "5 result(s)" in result.stderr and "2 error(s)" in result.stderr


def test_runs_in_process_alongside_an_initialised_hydra(ckpt, photos, capsys):
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from deepinsight.config import config_dir

    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        code, rows, _ = predict(capsys, f"ckpt={ckpt}", f"inputs=[{photos[0]}]")
        assert GlobalHydra.instance().is_initialized()  # the caller's Hydra is left in place
    assert code == EXIT_OK and len(rows) == 1


def test_help_lists_the_options(capsys):
    code, out, _ = run_cli(main, ["--help"], capsys)
    assert code == EXIT_OK
    for option in ("ckpt:", "inputs:", "threshold:", "batch_size:", "max_pixels:", "cam_dir:"):
        assert option in out
