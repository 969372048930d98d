"""export: ONNX models that score like their checkpoint and carry its metadata."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import onnx
import pytest
import torch
from helpers.inference_fixtures import (
    make_checkpoint,
    random_rgb,
    run_cli,
)

from deepinsight.errors import EXIT_OK, EXIT_USER_ERROR
from deepinsight.export import main as export_main
from deepinsight.inference import load_detector
from deepinsight.predict import main as predict_main

pytestmark = pytest.mark.usefixtures("one_torch_thread")

MODELS = ("custom_cnn", "densenet121", "efficientnet")


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("model", MODELS)
def test_onnx_scores_match_the_checkpoint(tmp_path, capsys, model, channels):
    ckpt = make_checkpoint(tmp_path / "best.ckpt", model, channels, threshold=0.37)
    output = tmp_path / "deploy" / "model.onnx"

    code, _, err = run_cli(export_main, [f"ckpt={ckpt}", "format=onnx", f"output={output}"], capsys)

    assert code == EXIT_OK and "max |onnx - torch| score" in err
    checkpoint_detector = load_detector(ckpt, device="cpu")
    onnx_detector = load_detector(output)
    assert onnx_detector.kind == "onnx" and onnx_detector.spec == checkpoint_detector.spec
    images = torch.rand(5, channels, 32, 32, generator=torch.Generator().manual_seed(1))
    expected = checkpoint_detector.score(images)
    assert expected.std() > 0.01  # scores spread out, so agreeing is not trivial
    for batch in (images, images[:1]):  # the batch axis is dynamic
        scores = onnx_detector.score(batch)
        assert scores.shape == (len(batch),)
        assert np.abs(scores - expected[: len(batch)]).max() < 1e-4


def test_metadata_props_hold_the_checkpoint_metadata(tmp_path, capsys):
    ckpt = make_checkpoint(tmp_path / "best.ckpt", "custom_cnn", 1, threshold=0.42)
    code, _, _ = run_cli(export_main, [f"ckpt={ckpt}"], capsys)

    output = tmp_path / "best.onnx"  # default: next to the checkpoint
    assert code == EXIT_OK and output.is_file()
    model = onnx.load(str(output))
    props = {p.key: json.loads(p.value) for p in model.metadata_props}
    stored = torch.load(ckpt, weights_only=True)["deepinsight"]
    # A checkpoint from before temperature scaling exports its implied T = 1 explicitly.
    assert "temperature" not in stored and props == {**stored, "temperature": 1.0}
    assert [i.name for i in model.graph.input] == ["image"]
    assert [o.name for o in model.graph.output] == ["score", "logit"]
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"


def test_predict_gives_the_same_rows_with_the_onnx_model(tmp_path, capsys):
    ckpt = make_checkpoint(tmp_path / "best.ckpt", "custom_cnn", 3, threshold=0.5)
    run_cli(export_main, [f"ckpt={ckpt}", f"output={tmp_path / 'model.onnx'}"], capsys)
    for i in range(4):
        random_rgb(seed=i).save(tmp_path / f"face{i}.jpg")
    rows = {}
    for model in (ckpt, tmp_path / "model.onnx"):
        code, out, err = run_cli(
            predict_main,
            [f"ckpt={model}", f"inputs=['{tmp_path}/*.jpg']", "num_workers=0"],
            capsys,
        )
        assert code == EXIT_OK, err
        rows[model.suffix] = list(csv.DictReader(io.StringIO(out)))
    ckpt_rows, onnx_rows = rows[".ckpt"], rows[".onnx"]
    assert [r["path"] for r in onnx_rows] == [r["path"] for r in ckpt_rows]
    assert [r["prediction"] for r in onnx_rows] == [r["prediction"] for r in ckpt_rows]
    ckpt_scores = np.array([float(r["score"]) for r in ckpt_rows])
    onnx_scores = np.array([float(r["score"]) for r in onnx_rows])
    assert np.abs(onnx_scores - ckpt_scores).max() < 1e-4


def test_cam_needs_a_torch_checkpoint(tmp_path, capsys):
    ckpt = make_checkpoint(tmp_path / "best.ckpt")
    run_cli(export_main, [f"ckpt={ckpt}"], capsys)
    random_rgb().save(tmp_path / "face.png")
    code, _, err = run_cli(
        predict_main,
        [f"ckpt={tmp_path / 'best.onnx'}", f"inputs={tmp_path / 'face.png'}", "cam=true",
         f"cam_dir={tmp_path / 'cams'}"],
        capsys,
    )  # fmt: skip
    assert code == EXIT_USER_ERROR and "cam=true needs a torch checkpoint" in err
    assert not (tmp_path / "cams").exists()


def test_export_user_errors_exit_2_with_one_line(tmp_path, capsys):
    ckpt = make_checkpoint(tmp_path / "best.ckpt")
    onnx_model = tmp_path / "model.onnx"
    run_cli(export_main, [f"ckpt={ckpt}", f"output={onnx_model}"], capsys)
    text = tmp_path / "notes.txt"
    text.write_text("not a model")
    cases = [
        ([f"ckpt={text}"], "neither a DeepInsight checkpoint"),
        ([f"ckpt={tmp_path / 'missing.ckpt'}"], "checkpoint not found"),
        ([f"ckpt={ckpt}", "format=tflite"], "format must be one of ('onnx',)"),
        ([f"ckpt={onnx_model}", f"output={tmp_path / 'again.onnx'}"], "already an exported onnx"),
        ([], "ckpt=... is required"),
    ]
    for argv, message in cases:
        code, _, err = run_cli(export_main, argv, capsys)
        assert code == EXIT_USER_ERROR and message in err and err.count("\n") == 1, err
