"""predict on photos and videos as users have them: one row per face, per frame, per video."""

from __future__ import annotations

import csv
import io
import json

import pytest
from helpers.face_pictures import astronaut, background, place, write_video
from helpers.inference_fixtures import make_checkpoint, png_with_header_size, run_cli

from deepinsight.errors import EXIT_OK, EXIT_SOME_FILES_FAILED
from deepinsight.faces import FacePolicy
from deepinsight.inference.aggregate import aggregate_scores
from deepinsight.predict import main

COLUMNS = ["path", "kind", "frame", "time_s", "face", "box", "score", "prediction", "error"]


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """A photo, a 12-frame video of a moving face, and the model (trained on aligned faces)."""
    folder = tmp_path_factory.mktemp("media")
    photo = astronaut()
    photo.save(folder / "astronaut.jpg", quality=95)
    (crops,) = FacePolicy("detect").crops([photo])
    face = crops[0].image
    frames = [place(face, angle=3 * i - 15, scale=0.6, offset=(4 * i - 20, 0), canvas=320)
              for i in range(12)]  # fmt: skip
    write_video(folder / "clip.mp4", frames)
    ckpt = make_checkpoint(folder / "face.ckpt", image_size=64,
                           preprocessing={"crops": "aligned_faces"})  # fmt: skip
    return folder, ckpt


def predict_rows(ckpt, args, capsys):
    code, out, err = run_cli(main, [f"ckpt={ckpt}", "output=-", "num_workers=0", *args], capsys)
    rows = list(csv.DictReader(io.StringIO(out)))
    return code, rows, err


def test_photo_and_video_give_face_frame_and_video_rows(media, capsys):
    folder, ckpt = media
    inputs = f"inputs=[{folder / 'astronaut.jpg'},{folder / 'clip.mp4'}]"
    code, rows, err = predict_rows(ckpt, [inputs, "faces=auto", "frames=4"], capsys)
    assert code == EXIT_OK, err
    assert list(rows[0]) == COLUMNS
    assert [r["kind"] for r in rows] == ["face", "video", "frame", "frame", "frame", "frame"]
    photo = rows[0]
    assert photo["face"] == "0" and len(photo["box"].split()) == 4 and photo["error"] == ""
    frames = rows[2:]
    # Evenly spaced: the centres of 4 equal segments of 12 frames (10 frames per second).
    assert [int(r["frame"]) for r in frames] == [1, 4, 7, 10]
    assert [float(r["time_s"]) for r in frames] == pytest.approx([0.1, 0.4, 0.7, 1.0])
    assert all(r["face"] == "0" for r in frames)
    video_score = float(rows[1]["score"])
    assert video_score == pytest.approx(aggregate_scores([float(r["score"]) for r in frames]))
    assert "2 result(s) (1 faces, 4 frames)" in err


def test_the_confident_rule_and_json_rows(media, capsys):
    folder, ckpt = media
    args = [f"inputs={folder / 'clip.mp4'}", "frames=6", "video_aggregate=confident",
            "format=json"]  # fmt: skip
    code, out, err = run_cli(main, [f"ckpt={ckpt}", "num_workers=0", *args], capsys)
    assert code == EXIT_OK, err
    rows = json.loads(out)
    video, frames = rows[0], rows[1:]
    assert video["kind"] == "video" and len(frames) == 6
    assert isinstance(frames[0]["box"], list) and len(frames[0]["box"]) == 4
    expected = aggregate_scores([r["score"] for r in frames], "confident")
    assert video["score"] == pytest.approx(expected, abs=1e-8)


def test_bad_inputs_each_get_an_error_row_and_the_others_are_scored(media, tmp_path, capsys):
    folder, ckpt = media
    background(300).save(tmp_path / "no_face.png")
    write_video(tmp_path / "zero_frames.mp4", [])
    whole = (folder / "clip.mp4").read_bytes()
    (tmp_path / "truncated.mp4").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "not_a_video.mp4").write_text("this is text, not a video\n")
    png_with_header_size(tmp_path / "huge.png", 20_000, 20_000)  # 400 megapixels
    inputs = [folder / "astronaut.jpg", *sorted(tmp_path.iterdir())]
    listed = ",".join(str(p) for p in inputs)
    code, rows, err = predict_rows(ckpt, [f"inputs=[{listed}]", "faces=detect"], capsys)
    assert code == EXIT_SOME_FILES_FAILED
    by_name = {r["path"].rsplit("/", 1)[-1]: r for r in rows}
    assert by_name["astronaut.jpg"]["score"] != ""
    assert "no face found in the image" in by_name["no_face.png"]["error"]
    assert by_name["zero_frames.mp4"]["error"]
    assert by_name["truncated.mp4"]["error"]
    assert "not a readable video" in by_name["not_a_video.mp4"]["error"]
    # PIL refuses a header this large itself, before max_pixels is looked at.
    assert "decompression bomb" in by_name["huge.png"]["error"]
    assert len(rows) == 6
    assert "5 error(s)" in err


def test_heatmaps_are_named_after_the_input_and_readable(media, tmp_path, capsys):
    from PIL import Image

    folder, ckpt = media
    cams = tmp_path / "cams"
    inputs = f"inputs=[{folder / 'astronaut.jpg'},{folder / 'clip.mp4'}]"
    code, rows, err = predict_rows(
        ckpt, [inputs, "frames=2", "cam=true", f"cam_dir={cams}"], capsys
    )
    assert code == EXIT_OK, err
    names = sorted(p.name for p in cams.iterdir())
    frames = [int(r["frame"]) for r in rows if r["kind"] == "frame"]
    assert names == sorted(
        ["astronaut_face0.png", "astronaut_faces.png"]
        + [f"clip_frame{n:05d}_face0.png" for n in frames]
    )
    panel = Image.open(cams / "astronaut_face0.png")
    assert panel.height >= 256 and panel.width >= 2 * 256  # crop beside its heatmap
    boxes = Image.open(cams / "astronaut_faces.png")
    assert boxes.size == (512, 512)  # the photo, with its face's box drawn on it


def test_a_whole_image_model_warns_when_faces_are_detected(media, tmp_path, capsys):
    folder, _ = media
    whole = make_checkpoint(tmp_path / "whole.ckpt", preprocessing={"crops": "whole_images"})
    code, rows, err = predict_rows(
        whole, [f"inputs={folder / 'astronaut.jpg'}", "faces=detect"], capsys
    )
    assert code == EXIT_OK
    assert "was trained on whole images" in err and rows[0]["kind"] == "face"
    # faces=auto follows the model: whole images, one row, no warning.
    code, rows, err = predict_rows(whole, [f"inputs={folder / 'astronaut.jpg'}"], capsys)
    assert [r["kind"] for r in rows] == ["image"] and "warning" not in err
    # faces=off on a face model: scored whole, with a warning; a bad mode is one line.
    code, rows, err = predict_rows(
        media[1], [f"inputs={folder / 'astronaut.jpg'}", "faces=off"], capsys
    )
    assert rows[0]["kind"] == "image" and "faces=off scores each image whole" in err
    code, _, err = predict_rows(media[1], [f"inputs={folder}", "faces=maybe"], capsys)
    assert code == 2 and "faces must be one of auto, detect, off" in err


def test_evaluate_gives_video_and_frame_level_metrics(media, tmp_path, capsys):
    from deepinsight.evaluate import main as evaluate_main

    folder, ckpt = media
    (crops,) = FacePolicy("detect").crops([astronaut()])
    face = crops[0].image
    for label in ("real", "fake"):
        (tmp_path / "data" / label).mkdir(parents=True)
    for i in range(4):  # two real and two fake videos, each a face moving differently
        frames = [place(face, angle=5 * j - 8 + i, scale=0.5, offset=(3 * j * (i - 1), 0),
                        canvas=256) for j in range(4)]  # fmt: skip
        write_video(tmp_path / "data" / ("real", "fake")[i % 2] / f"v{i}.mp4", frames)
    background(200).save(tmp_path / "data" / "real" / "no_face.png")
    code, _, err = run_cli(
        evaluate_main,
        [f"ckpt={ckpt}", f"data.root={tmp_path / 'data'}", f"output={tmp_path / 'eval'}",
         "frames=3", "num_workers=0", "n_bootstrap=50", "name=clips"],
        capsys,
    )  # fmt: skip
    assert code == EXIT_OK, err
    out = tmp_path / "eval" / "clips"
    results = json.loads((out / "results.json").read_text())
    assert results["test"]["n"] == 4  # videos, each one score
    assert [s["path"].rsplit("/", 1)[-1] for s in results["skipped_files"]] == ["no_face.png"]
    frame_level = results["frame_level"]
    assert frame_level["n"] == 12 and frame_level["n_videos"] == 4
    assert "auroc" in frame_level and frame_level["ci95"]["auroc"] is not None
    assert frame_level["bootstrap"]["method"].startswith("percentile bootstrap over videos")
    frames = list(csv.DictReader((out / "frame_predictions.csv").open()))
    assert len(frames) == 12 and {r["label"] for r in frames} == {"0", "1"}
    # Each video's score is the mean of its frames' scores (video_aggregate=mean).
    videos = {r["path"]: float(r["score"]) for r in csv.DictReader(
        (out / "test_predictions.csv").open())}  # fmt: skip
    for path, score in videos.items():
        own = [float(r["score"]) for r in frames if r["path"] == path]
        assert score == pytest.approx(sum(own) / len(own), abs=1e-6)
    assert "frame-level AUROC" in err


def test_the_server_scores_each_face_and_refuses_a_faceless_upload(media):
    import base64

    from fastapi import HTTPException

    from deepinsight.serve.api import DetectorAPI

    folder, ckpt = media
    api = DetectorAPI(str(ckpt), max_pixels=None, max_batch_size=4, batch_timeout=0.0)
    api.setup("cpu")
    photo = base64.b64encode((folder / "astronaut.jpg").read_bytes()).decode()
    item = api.decode_request({"image": photo, "filename": "astronaut.jpg", "cam": True})
    (result,) = api.predict([item, item])[:1]
    assert result["batch_size"] == 2
    assert result["cam_face"] == 0 and result["cam_png"]  # whose heatmap it is
    (face,) = result["faces"]
    assert face["face"] == 0 and len(face["box"]) == 4
    assert result["score"] == face["score"]  # the image's score: its highest face score
    # The same face as predict scores it.
    code_rows = predict_rows_plain(ckpt, folder / "astronaut.jpg")
    assert face["score"] == pytest.approx(code_rows[0]["score"], abs=1e-5)
    buffer = io.BytesIO()
    background(200).save(buffer, format="PNG")
    with pytest.raises(HTTPException) as refused:
        api.decode_request({"image": base64.b64encode(buffer.getvalue()).decode()})
    assert refused.value.status_code == 422 and "no face found" in refused.value.detail


def predict_rows_plain(ckpt, path):
    from deepinsight.inference import ScoringOptions, load_detector, score_inputs

    detector = load_detector(str(ckpt), device="cpu")
    (scored,) = score_inputs(detector, [path], ScoringOptions(num_workers=0))
    return [{"score": r.score, "kind": r.kind} for r in scored.rows]
