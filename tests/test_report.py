"""The comparison report over a synthetic multirun: exact numbers, order, failures, W&B offline."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    confusion_matrix,
    precision_recall_fscore_support,
    roc_auc_score,
)

from deepinsight import report
from deepinsight.errors import EXIT_USER_ERROR
from deepinsight.report import curves

# (job folder, model, data, seed, class separation of the synthetic scores)
COMPLETED_RUNS = [
    ("0", "densenet121", "rgb", 1, 1.5),
    ("1", "densenet121", "grayscale", 1, 3.0),
    ("2", "custom_cnn", "rgb", 1, 0.7),
    ("3", "densenet121", "rgb", 2, 2.0),
]
FAILED_RUN = ("4", "densenet121", "augmented", 1)
KILLED_RUN = ("5", "custom_cnn", "rgb", 2)


@pytest.fixture(autouse=True)
def offline_wandb(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_SILENT", "true")
    for var in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(var, str(tmp_path / "wandb-home"))


def _metrics(labels: np.ndarray, scores: np.ndarray, threshold: float = 0.5) -> dict:
    predicted = (scores >= threshold).astype(int)
    precision, recall, f1, _ = precision_recall_fscore_support(labels, predicted, average="binary")
    macro = precision_recall_fscore_support(labels, predicted, average="macro")
    return {
        "auroc": roc_auc_score(labels, scores),
        "ap": average_precision_score(labels, scores),
        "accuracy": accuracy_score(labels, predicted),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "macro_precision": macro[0],
        "macro_recall": macro[1],
        "macro_f1": macro[2],
        "threshold": threshold,
        "n": int(labels.size),
        "confusion_matrix": confusion_matrix(labels, predicted).tolist(),
    }


def _write_run(run_dir: Path, model, data, seed, separation=None, group=None) -> None:
    """A run directory per docs/contracts.md; separation=None writes a failed run."""
    run_dir.mkdir(parents=True)
    identity = {"schema_version": 1, "model": model, "data": data, "seed": seed}
    if separation is None:
        results = {**identity, "status": "failed", "error": "CUDA out of memory\ntraceback..."}
    else:
        rng = np.random.default_rng(seed * 100 + int(separation * 10))
        labels = np.repeat([0, 1], 60)
        scores = 1 / (1 + np.exp(-(rng.normal(size=120) + separation * (2 * labels - 1))))
        with (run_dir / "test_predictions.csv").open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["path", "label", "score"])
            writer.writerows(
                (f"/data/test/{i},x.jpg", int(y), repr(float(s)))
                for i, (y, s) in enumerate(zip(labels, scores, strict=True))
            )
        results = {**identity, "status": "completed", "experiment": f"{model}_{data}"}
        results["test"] = _metrics(labels, scores)
    (run_dir / "results.json").write_text(json.dumps(results))
    _write_config(run_dir, model, data, seed, group)


def _write_config(run_dir: Path, model, data, seed, group=None) -> None:
    """The resolved config.yaml a job writes when it starts (only the keys the report reads)."""
    (run_dir / "config.yaml").write_text(
        f"seed: {seed}\nmodel:\n  net:\n    name: {model}\ndata:\n  variant: {data}\n"
        f"logger:\n  wandb:\n    project: di-test\n    group: {group or 'null'}\n"
    )


@pytest.fixture
def multirun(tmp_path) -> Path:
    root = tmp_path / "multirun" / "2024-05-01" / "12-00-00"
    for job, model, data, seed, separation in COMPLETED_RUNS:
        _write_run(root / job, model, data, seed, separation)
    _write_run(root / FAILED_RUN[0], *FAILED_RUN[1:])
    # A job killed before it could write results.json (e.g. out of host memory).
    (root / KILLED_RUN[0]).mkdir()
    _write_config(root / KILLED_RUN[0], *KILLED_RUN[1:])
    return root


def run_report(*argv: object) -> int:
    """The report's ``main`` in-process; like every tool's, it always exits with its code."""
    with pytest.raises(SystemExit) as exit_info:
        report.main([str(a) for a in argv])
    return exit_info.value.code


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_comparison_csv_equals_results_json_sorted_by_auroc(multirun, capsys):
    assert run_report(multirun) == 0

    rows = _read_csv(multirun / "comparison.csv")
    assert list(rows[0]) == list(report.CSV_COLUMNS)
    assert [(r["run"], r["status"]) for r in rows[-2:]] == [("4", "failed"), ("5", "unfinished")]
    assert (rows[-1]["model"], rows[-1]["data"], rows[-1]["seed"]) == ("custom_cnn", "rgb", "2")
    completed = rows[:-2]
    assert {r["run"] for r in completed} == {job for job, *_ in COMPLETED_RUNS}
    for row in completed:
        results = json.loads((multirun / row["run"] / "results.json").read_text())
        test = results["test"]
        assert row["status"] == "completed"
        assert (row["model"], row["data"], int(row["seed"])) == (
            results["model"],
            results["data"],
            results["seed"],
        )
        assert float(row["accuracy"]) == test["accuracy"]
        assert float(row["precision"]) == test["macro_precision"]
        assert float(row["recall"]) == test["macro_recall"]
        assert float(row["f1"]) == test["macro_f1"]
        assert float(row["auroc"]) == test["auroc"]
        assert float(row["ap"]) == test["ap"]
    aurocs = [float(r["auroc"]) for r in completed]
    assert aurocs == sorted(aurocs, reverse=True)
    assert rows[-1]["auroc"] == ""

    printed = capsys.readouterr().out
    assert "| run | model | data | seed |" in printed
    assert f"wrote {multirun / 'comparison.md'}" in printed


def test_markdown_lists_failed_run_variants_and_seed_reference(multirun):
    run_report(multirun)
    markdown = (multirun / "comparison.md").read_text()

    assert "**failed**: CUDA out of memory" in markdown
    assert "`5` (custom_cnn/rgb, seed 2): **unfinished**: no results.json" in markdown
    assert "traceback" not in markdown  # only the error's first line
    for reference in report.load_seed_reference():
        assert reference["variant"] in markdown
    assert len(report.load_seed_reference()) == 4
    assert "| DenseNet Model with Grayscale Images | seed study (n=20000) | 0.98 |" in markdown
    assert "0.9975" in markdown  # the seed's DenseNet ROC AUC, from the reference file
    assert "| DenseNet Model with Image augmentations | this report: not run |" in markdown


def test_repeated_seeds_are_summarised_as_mean_and_sample_std(multirun):
    run_report(multirun)
    by_variant = {
        (r["model"], r["data"]): r for r in _read_csv(multirun / "comparison_by_variant.csv")
    }

    repeated = by_variant[("densenet121", "rgb")]
    aurocs = [
        json.loads((multirun / job / "results.json").read_text())["test"]["auroc"] for job in "03"
    ]
    assert repeated["n_runs"] == "2"
    assert sorted(repeated["seeds"].split()) == ["1", "2"]
    assert float(repeated["auroc_mean"]) == pytest.approx(np.mean(aurocs))
    assert float(repeated["auroc_std"]) == pytest.approx(np.std(aurocs, ddof=1))
    assert by_variant[("custom_cnn", "rgb")]["auroc_std"] == ""  # one seed: no spread
    assert ("densenet121", "augmented") not in by_variant  # failed runs have no numbers
    markdown = (multirun / "comparison.md").read_text()
    assert f"{np.mean(aurocs):.4f} ± {np.std(aurocs, ddof=1):.4f}" in markdown


def test_figures_hold_one_curve_per_completed_run(multirun, tmp_path, monkeypatch):
    legends = {}

    def spy(name, plot):
        def wrapper(curves, path, **kwargs):
            legends[name] = plot(curves, path, **kwargs)
            return legends[name]

        return wrapper

    monkeypatch.setattr(curves, "save_roc_curves", spy("roc", curves.save_roc_curves))
    monkeypatch.setattr(curves, "save_pr_curves", spy("pr", curves.save_pr_curves))
    out = tmp_path / "report"
    assert run_report(multirun, f"output={out}") == 0

    assert not (multirun / "comparison.csv").exists()
    for name in ("roc", "pr"):
        assert len(legends[name]) == len(COMPLETED_RUNS)
        with Image.open(out / f"{name}_curves.png") as image:
            image.verify()
    # Each legend names its run and the AUROC results.json reports (same predictions).
    for row in _read_csv(out / "comparison.csv")[: len(COMPLETED_RUNS)]:
        expected = f"{row['run']}: {row['model']}/{row['data']} (AUROC = {float(row['auroc']):.4f})"
        assert expected in legends["roc"]


def test_missing_results_is_one_line_error_exit_2(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert run_report(tmp_path / "empty") == EXIT_USER_ERROR
    error = capsys.readouterr().err
    assert error.startswith("error: no results.json found") and error.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["colour=blue"], "bad argument: Could not override 'colour'. Valid options: dirs, "),
        (["wandb=maybe"], "wandb= takes true, false or auto, not 'maybe'"),
        (["output=[a,b"], "bad argument: "),
        (["{missing}"], "not a directory: "),
    ],
)
def test_user_errors_exit_2_with_one_line(multirun, tmp_path, capsys, args, message):
    argv = [a.format(missing=tmp_path / "missing") for a in args]
    assert run_report(multirun, *argv) == EXIT_USER_ERROR
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: ") and message in captured.err
    assert captured.err.count("\n") == 1


def test_no_directory_is_a_user_error(capsys):
    assert run_report("wandb=false") == EXIT_USER_ERROR
    assert "no run directories given" in capsys.readouterr().err


def test_directories_can_also_be_given_as_an_option(multirun, tmp_path):
    out = tmp_path / "by-option"
    assert run_report(f"dirs=[{multirun}]", f"output={out}", "wandb=false") == 0
    assert len(_read_csv(out / "comparison.csv")) == len(COMPLETED_RUNS) + 2


def test_help_lists_the_options(capsys):
    assert run_report("--help") == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: python -m deepinsight.report DIR")
    for option in ("dirs:", "output:", "wandb:", "group:"):
        assert option in out


def test_module_runs_as_a_command(multirun, tmp_path):
    out = tmp_path / "cli"
    result = subprocess.run(
        [sys.executable, "-m", "deepinsight.report", str(multirun), f"output={out}"],
        capture_output=True,
        text=True,
        env={**os.environ, "WANDB_MODE": "offline"},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "comparison.csv" in result.stdout
    assert len(_read_csv(out / "comparison.csv")) == len(COMPLETED_RUNS) + 2
    assert not (out / "wandb").exists()  # the runs had no wandb/ folder, so auto stays off


def test_wandb_summary_run_is_written_offline_in_the_runs_group(tmp_path):
    root = tmp_path / "sweep"
    for job, model, data, seed, separation in COMPLETED_RUNS[:2]:
        _write_run(root / job, model, data, seed, separation, group="seed-sweep-7")
        (root / job / "wandb").mkdir()  # the runs logged to W&B, so the report does too
    out = tmp_path / "report"

    assert run_report(root, f"output={out}") == 0

    offline_runs = list((out / "wandb").glob("offline-run-*"))
    assert len(offline_runs) == 1
    run_files = list(offline_runs[0].glob("run-*.wandb"))
    assert len(run_files) == 1
    raw = run_files[0].read_bytes()
    assert b"seed-sweep-7" in raw and b"comparison" in raw and b"report" in raw
    tables = list(
        (offline_runs[0] / "files" / "media" / "table").glob("comparison_[0-9]*.table.json")
    )
    assert len(tables) == 1
    table = json.loads(tables[0].read_text())
    assert table["columns"] == list(report.CSV_COLUMNS)
    assert len(table["data"]) == 2
    images = list((offline_runs[0] / "files" / "media" / "images").glob("*.png"))
    assert len(images) == 2  # roc_curves and pr_curves


def test_wandb_false_skips_the_summary_run(tmp_path):
    root = tmp_path / "sweep"
    _write_run(root / "0", *COMPLETED_RUNS[0][1:])
    (root / "0" / "wandb").mkdir()
    assert run_report(root, "wandb=false") == 0
    assert not (root / "wandb").exists()


def test_one_class_test_set_is_a_completed_run_without_auroc(tmp_path, capsys):
    """AUROC and AP are null (undefined) on a one-class test set; the run still completed."""
    root = tmp_path / "sweep"
    _write_run(root / "0", *COMPLETED_RUNS[0][1:])
    one_class = root / "1"
    _write_run(one_class, "custom_cnn", "rgb", 1, 1.0)
    with (one_class / "test_predictions.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "score"])
        writer.writerows((f"/data/test/{i}.jpg", 1, 0.05 * i) for i in range(20))
    one_class_results = json.loads((one_class / "results.json").read_text())
    one_class_results["test"].update(auroc=None, ap=None)
    (one_class / "results.json").write_text(json.dumps(one_class_results))
    broken = root / "2"
    _write_run(broken, "custom_cnn", "grayscale", 1, 1.0)
    broken_results = json.loads((broken / "results.json").read_text())
    del broken_results["test"]["macro_f1"]
    (broken / "results.json").write_text(json.dumps(broken_results))

    assert run_report(root, "wandb=false") == 0

    rows = {row["run"]: row for row in _read_csv(root / "comparison.csv")}
    assert [row["run"] for row in _read_csv(root / "comparison.csv")] == ["0", "1", "2"]
    assert rows["1"]["status"] == "completed"
    assert (rows["1"]["auroc"], rows["1"]["ap"]) == ("", "")
    assert float(rows["1"]["accuracy"]) == one_class_results["test"]["accuracy"]
    assert rows["2"]["status"] == "invalid"  # a metric that is always defined is missing
    variants = _read_csv(root / "comparison_by_variant.csv")
    (variant,) = [v for v in variants if (v["model"], v["data"]) == ("custom_cnn", "rgb")]
    assert variant["auroc_mean"] == "" and float(variant["accuracy_mean"]) > 0
    assert "no curve for 1: its test set holds one class" in capsys.readouterr().err
    assert (root / "roc_curves.png").is_file()
    markdown = (root / "comparison.md").read_text()
    assert "lacks test.macro_f1" in markdown
