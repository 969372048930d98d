"""evaluate: a run's own test split reproduces its results.json; bare real/fake folders work."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import torch
from helpers.inference_fixtures import make_checkpoint, run_cli
from helpers.synthetic_data import write_folder_dataset

from deepinsight.data.layouts import discover_evaluation_split
from deepinsight.errors import EXIT_OK, EXIT_USER_ERROR
from deepinsight.evaluate import main as evaluate_main
from deepinsight.export import main as export_main

pytestmark = pytest.mark.usefixtures("one_torch_thread")

RUN_FILES = (
    "results.json", "test_predictions.csv", "classification_report.txt",
    "roc_curve.png", "pr_curve.png", "confusion_matrix.png", "reliability.png",
)  # fmt: skip


def bare_tree(source: Path, target: Path, broken: bool = True) -> Path:
    """TARGET/{real,fake}/ copied from a split folder, plus an unreadable 'image'."""
    for cls in ("real", "fake"):
        shutil.copytree(source / cls, target / cls)
    if broken:
        (target / "fake" / "broken.png").write_bytes(b"not an image")
    return target


@pytest.mark.slow
def test_evaluate_on_a_runs_own_test_split_equals_its_results(
    tiny_trained_run, tiny_dataset, tmp_path, capsys
):
    run_dir = tiny_trained_run
    trained = json.loads((run_dir / "results.json").read_text())
    best = run_dir / "checkpoints" / "best.ckpt"
    # Training fitted a temperature on validation, stored it, and it did not worsen val ECE.
    stored = torch.load(best, weights_only=True)
    assert stored["deepinsight"]["temperature"] == trained["calibration"]["temperature"] > 0
    valid = trained["calibration"]["valid"]
    assert valid["ece_after"] <= valid["ece_before"]
    assert (run_dir / "reliability.png").is_file()
    assert set(trained["test"]["ci95"]) >= {"auroc", "ap", "accuracy", "f1"}

    bare = bare_tree(tiny_dataset / "test", tmp_path / "other_generator")
    out = tmp_path / "eval"
    code, stdout, err = run_cli(
        evaluate_main,
        [f"ckpt={best}", f"data.root=[{tiny_dataset},{bare}]", f"output={out}", "num_workers=0"],
        capsys,
    )
    assert code == EXIT_OK, err
    own = json.loads((out / tiny_dataset.name / "results.json").read_text())
    for block in ("test", "test_at_decision_threshold"):
        assert own[block] == trained[block], block  # every metric and every CI, exactly
    assert own["decision_threshold"] == trained["decision_threshold"]
    assert own["calibration"]["test"] == trained["calibration"]["test"]
    assert all((out / tiny_dataset.name / name).is_file() for name in RUN_FILES)

    # The bare folder: the same images plus one broken file, skipped and named.
    other = json.loads((out / "other_generator" / "results.json").read_text())
    assert other["dataset"] == "real_fake" and other["split"] == "all"
    assert [Path(s["path"]).name for s in other["skipped_files"]] == ["broken.png"]
    assert "broken.png" in err and other["test"]["auroc"] == trained["test"]["auroc"]
    with (out / "cross_dataset.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["name"] for r in rows] == [tiny_dataset.name, "other_generator"]
    assert [r["skipped"] for r in rows] == ["0", "1"]
    assert "other_generator" in stdout and "[" in stdout  # the markdown table, with CIs

    # The exported model evaluates to the same numbers (scores agree within 1e-4).
    onnx_model = tmp_path / "best.onnx"
    assert run_cli(export_main, [f"ckpt={best}", f"output={onnx_model}"], capsys)[0] == EXIT_OK
    code, _, err = run_cli(
        evaluate_main,
        [f"ckpt={onnx_model}", f"data.root={tiny_dataset}", f"output={tmp_path / 'onnx'}"],
        capsys,
    )
    assert code == EXIT_OK, err
    exported = json.loads((tmp_path / "onnx" / tiny_dataset.name / "results.json").read_text())
    assert exported["runtime"] == "onnx"
    assert exported["test"]["auroc"] == pytest.approx(trained["test"]["auroc"], abs=1e-3)


@pytest.fixture
def split_tree(tmp_path) -> Path:
    return write_folder_dataset(tmp_path / "data", {"train": 2, "valid": 3, "test": 4})


def test_a_bare_folder_and_another_split_evaluate_with_names(split_tree, tmp_path, capsys):
    ckpt = make_checkpoint(tmp_path / "model.ckpt")
    bare = bare_tree(split_tree / "test", tmp_path / "bare", broken=False)
    out = tmp_path / "eval"
    code, _, err = run_cli(
        evaluate_main,
        [f"ckpt={ckpt}", f"data.root=[{split_tree},{bare}]", "name=[valid_split,bare]",
         "split=valid", f"output={out}", "num_workers=0", "n_bootstrap=50"],
        capsys,
    )  # fmt: skip
    assert code == EXIT_OK, err
    valid = json.loads((out / "valid_split" / "results.json").read_text())
    assert valid["split"] == "valid" and valid["test"]["n"] == 6
    assert valid["test"]["bootstrap"]["n_bootstrap"] == 50
    assert json.loads((out / "bare" / "results.json").read_text())["test"]["n"] == 8
    assert (out / "cross_dataset.md").read_text().count("\n| ") == 3  # header + 2 rows


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "data.root=... is required"),
        (["data.root=/no/such/dir"], "does not exist"),
        (["split=holdout"], "split must be one of"),
        (["name=[a,b]"], "name has 2 entries but data.root has 1"),
        (["n_bootstrap=0"], "n_bootstrap must be an integer >= 1"),
        (["colour=red"], "bad argument"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(split_tree, tmp_path, capsys, args, message):
    ckpt = make_checkpoint(tmp_path / "model.ckpt")
    root = (
        []
        if any(a.startswith("data.root") for a in args) or not args
        else [f"data.root={split_tree}"]
    )
    code, _, err = run_cli(evaluate_main, [f"ckpt={ckpt}", *root, *args], capsys)
    assert code == EXIT_USER_ERROR
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_help_lists_the_documented_options(capsys):
    code, out, _ = run_cli(evaluate_main, ["--help"], capsys)
    assert code == EXIT_OK
    assert all(key in out for key in ("ckpt:", "root:", "split:", "n_bootstrap:", "robustness:"))


def test_layout_discovery_for_evaluation(split_tree, tmp_path):
    assert discover_evaluation_split(split_tree).splits.keys() == {"test"}
    assert discover_evaluation_split(split_tree, "train").layout == "folders"
    bare = bare_tree(split_tree / "test", tmp_path / "bare", broken=False)
    found = discover_evaluation_split(bare)
    assert found.layout == "real_fake" and len(found.splits["all"]) == 8


def test_robustness_true_writes_the_grid_beside_the_results(split_tree, tmp_path, capsys):
    ckpt = make_checkpoint(tmp_path / "model.ckpt")
    out = tmp_path / "eval"
    code, _, err = run_cli(
        evaluate_main,
        [f"ckpt={ckpt}", f"data.root={split_tree}", "name=d", f"output={out}", "num_workers=0",
         "n_bootstrap=20", "robustness=true"],
        capsys,
    )  # fmt: skip
    assert code == EXIT_OK, err
    with (out / "d" / "robustness.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert {"jpeg", "blur", "resize", "noise"} <= {row["perturbation"] for row in rows}
    assert all(row["n"] == "8" for row in rows)


def test_evaluate_logs_metrics_figures_and_the_grid_to_one_wandb_run(
    tiny_dataset, tmp_path, capsys, monkeypatch
):
    from helpers.wandb_offline import read_offline_run

    monkeypatch.setenv("WANDB_MODE", "offline")
    ckpt = make_checkpoint(tmp_path / "model.ckpt")
    out = tmp_path / "eval"
    args = [f"ckpt={ckpt}", f"data.root={tiny_dataset}", "name=demo", f"output={out}"]
    args += ["num_workers=0", "wandb=true", "robustness=true"]
    code, _, err = run_cli(evaluate_main, args, capsys)
    assert code == EXIT_OK, err
    offline = list((out / "wandb").glob("offline-run-*"))
    assert len(offline) == 1 and "W&B run:" in err
    run = read_offline_run(offline[0])
    assert run.job_type == "evaluate" and run.config["checkpoint"] == str(ckpt)
    logged = {key for step in run.history for key in step}
    for key in ("demo/auroc", "demo/auroc_ci95_low", "demo/ece_after", "demo/roc_curve",
                "cross_dataset", "robustness/table", "robustness/robustness_jpeg"):  # fmt: skip
        assert any(k == key or k.startswith(key + "/") for k in logged), (key, sorted(logged))


def test_evaluate_rejects_a_non_boolean_wandb_flag(tiny_dataset, tmp_path, capsys):
    ckpt = make_checkpoint(tmp_path / "model.ckpt")
    code, _, err = run_cli(
        evaluate_main, [f"ckpt={ckpt}", f"data.root={tiny_dataset}", "wandb=maybe"], capsys
    )
    assert code == EXIT_USER_ERROR and "wandb must be true or false" in err
