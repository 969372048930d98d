"""predict on a trained run's test split reproduces the run's own test_predictions.csv."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from helpers.inference_fixtures import run_cli

from deepinsight.errors import EXIT_OK
from deepinsight.export import main as export_main
from deepinsight.predict import main as predict_main

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def read_scores(rows) -> dict[Path, float]:
    return {Path(r["path"]).resolve(): float(r["score"]) for r in rows}


@pytest.mark.slow
def test_predict_reproduces_the_training_runs_test_scores(
    tiny_trained_run, tiny_dataset, tmp_path, capsys
):
    run_dir = tiny_trained_run
    with (run_dir / "test_predictions.csv").open() as handle:
        expected = read_scores(csv.DictReader(handle))
    best = run_dir / "checkpoints" / "best.ckpt"

    code, out, err = run_cli(
        predict_main, [f"ckpt={best}", f"inputs={tiny_dataset / 'test'}", "num_workers=0"], capsys
    )

    assert code == EXIT_OK, err
    scored = read_scores(csv.DictReader(io.StringIO(out)))
    assert set(scored) == set(expected) and len(scored) == 24
    assert max(abs(scored[p] - expected[p]) for p in expected) < 1e-5

    # The ONNX export of the trained weights (real BatchNorm statistics) agrees too.
    onnx_model = tmp_path / "best.onnx"
    assert run_cli(export_main, [f"ckpt={best}", f"output={onnx_model}"], capsys)[0] == EXIT_OK
    code, out, _ = run_cli(
        predict_main, [f"ckpt={onnx_model}", f"inputs={tiny_dataset / 'test'}"], capsys
    )
    scored = read_scores(csv.DictReader(io.StringIO(out)))
    assert code == EXIT_OK and set(scored) == set(expected)
    assert max(abs(scored[p] - expected[p]) for p in expected) < 1e-4
