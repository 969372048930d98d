"""The cross-generator benchmarks' trees: detection, labels, per-generator tables."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from helpers.synthetic_data import make_face_like
from PIL import Image

from deepinsight.data.layouts import discover_evaluation_split, discover_splits
from deepinsight.errors import DeepInsightError
from deepinsight.evaluation.per_generator import mean_row, per_generator_rows

RNG = np.random.default_rng(0)


def images(folder: Path, n: int, fake: bool) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(make_face_like(RNG, 16, fake)).save(folder / f"{i}.png")


def pair(folder: Path, n_real: int, n_fake: int, names=("0_real", "1_fake")) -> None:
    images(folder / names[0], n_real, False)
    images(folder / names[1], n_fake, True)


def counts(samples) -> dict[str, tuple[int, int]]:
    found: dict[str, list[int]] = {}
    for s in samples:
        found.setdefault(s.group, [0, 0])[s.label] += 1
    return {g: tuple(c) for g, c in found.items()}


def test_forensynths_test_tree_with_and_without_classes(tmp_path):
    root = tmp_path / "cnndetection_test"
    pair(root / "biggan", 2, 3)  # no class level
    pair(root / "progan" / "airplane", 1, 2)  # class level: pooled into the generator
    pair(root / "progan" / "cat", 2, 1)
    found = discover_evaluation_split(root)
    assert found.layout == "forensynths"
    ((split, samples),) = found.splits.items()
    assert split == "test"
    # 0_real -> 0 (real), 1_fake -> 1 (fake): DeepInsight's labels.
    assert counts(samples) == {"biggan": (2, 3), "progan": (3, 3)}


def test_genimage_val_split_with_the_optional_level(tmp_path):
    root = tmp_path / "genimage"
    for generator, extra in (("sdv14", ""), ("midjourney", "imagenet_midjourney")):
        base = root / generator / extra if extra else root / generator
        pair(base / "train", 1, 1, ("nature", "ai"))
        pair(base / "val", 2, 3, ("nature", "ai"))
    found = discover_evaluation_split(root)
    assert found.layout == "genimage"
    assert counts(found.splits["test"]) == {"midjourney": (2, 3), "sdv14": (2, 3)}
    assert counts(discover_evaluation_split(root, "train").splits["train"]) == {
        "midjourney": (1, 1), "sdv14": (1, 1),
    }  # fmt: skip


def test_one_genimage_generator_trains_with_a_held_out_validation(tmp_path):
    root = tmp_path / "sdv14"
    pair(root / "train", 40, 40, ("nature", "ai"))
    pair(root / "val", 5, 5, ("nature", "ai"))
    splits = discover_splits(root)
    assert splits.layout == "genimage"
    # Every 20th training image per class is held out for model selection; val is the test.
    assert counts(splits.splits["train"]) == {"sdv14": (38, 38)}
    assert counts(splits.splits["valid"]) == {"sdv14": (2, 2)}
    assert counts(splits.splits["test"]) == {"sdv14": (5, 5)}
    train = {s.path for s in splits.splits["train"]}
    assert not train & {s.path for s in splits.splits["valid"]}
    # evaluate reads the same folder: its val split by default.
    assert counts(discover_evaluation_split(root).splits["test"]) == {"sdv14": (5, 5)}


def test_wildrf_tests_per_platform_and_trains(tmp_path):
    root = tmp_path / "wildrf"
    pair(root / "train", 3, 3)
    pair(root / "val", 2, 2)
    for platform in ("reddit", "twitter"):
        pair(root / "test" / platform, 1, 2)
    assert counts(discover_evaluation_split(root).splits["test"]) == {
        "reddit": (1, 2), "twitter": (1, 2),
    }  # fmt: skip
    splits = discover_splits(root)
    assert splits.layout == "wildrf"
    assert [len(splits.splits[s]) for s in ("train", "valid", "test")] == [6, 4, 6]


def test_forensynths_training_tree_pools_classes(tmp_path):
    root = tmp_path / "forensynths"
    for split in ("train", "val"):
        for cls in ("car", "cat"):
            pair(root / split / cls, 2, 2)
    pair(root / "test" / "stylegan" / "car", 1, 1)
    pair(root / "test" / "gaugan", 2, 1)
    splits = discover_splits(root)
    assert splits.layout == "forensynths"
    assert counts(splits.splits["train"]) == {"train": (4, 4)}
    assert counts(splits.splits["test"]) == {"gaugan": (2, 1), "stylegan": (1, 1)}


def test_ambiguous_and_wrongly_named_layouts_are_one_line(tmp_path):
    # Kaggle's CSVs beside a ROOT/{train,valid,test}/{real,fake}/ tree: both layouts fit.
    root = tmp_path / "both"
    for split in ("train", "valid", "test"):
        pair(root / split, 1, 1, ("real", "fake"))
        (root / f"{split}.csv").write_text(",original_path,id,label,label_str,path\n")
    with pytest.raises(DeepInsightError, match=r"several layouts \(kaggle, folders\)") as err:
        discover_evaluation_split(root)
    assert "\n" not in str(err.value)
    assert discover_evaluation_split(root, layout="folders").layout == "folders"
    with pytest.raises(DeepInsightError, match="several layouts"):
        discover_splits(root)
    with pytest.raises(DeepInsightError, match="not in the genimage layout"):
        discover_evaluation_split(root, layout="genimage")
    with pytest.raises(DeepInsightError, match="unknown data.layout"):
        discover_evaluation_split(root, layout="imagenet")


def test_rows_and_the_mean_row():
    groups = ["a"] * 4 + ["b"] * 6
    labels = np.array([0, 0, 1, 1, 0, 0, 0, 1, 1, 1])
    scores = np.array([0.1, 0.6, 0.7, 0.9, 0.2, 0.3, 0.4, 0.45, 0.8, 0.9])
    rows = per_generator_rows(groups, labels, scores, 0.5, n_bootstrap=50, seed=0)
    a, b, mean = rows
    assert (a["generator"], a["n"], a["n_real"], a["n_fake"]) == ("a", 4, 2, 2)
    assert a["accuracy"] == 0.75 and a["real_accuracy"] == 0.5 and a["fake_accuracy"] == 1.0
    assert b["accuracy"] == pytest.approx(5 / 6) and b["fake_accuracy"] == pytest.approx(2 / 3)
    assert a["auroc"] == 1.0 and a["auroc_ci95"] is not None
    # The papers' mean: each generator once, whatever its size.
    for metric in ("auroc", "ap", "accuracy", "real_accuracy", "fake_accuracy"):
        assert mean[metric] == pytest.approx((a[metric] + b[metric]) / 2)
    assert mean == mean_row([a, b]) and mean["n"] == 10


def test_evaluate_writes_the_per_generator_table(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    from helpers.inference_fixtures import make_checkpoint, run_cli
    from helpers.wandb_offline import read_offline_run

    from deepinsight.evaluate import main as evaluate_main

    root = tmp_path / "cnndetection_test"
    pair(root / "biggan", 3, 3)
    pair(root / "crn" / "person", 2, 4)
    ckpt = make_checkpoint(tmp_path / "best.ckpt", "custom_cnn", 3, image_size=16)
    code, out, err = run_cli(
        evaluate_main,
        [f"ckpt={ckpt}", f"data.root={root}", f"output={tmp_path / 'eval'}", "num_workers=0",
         "n_bootstrap=50", "wandb=true"],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    (offline,) = (tmp_path / "eval" / "wandb").glob("offline-run-*")
    logged = {key for step in read_offline_run(offline).history for key in step}
    assert any(k.startswith("cnndetection_test/per_generator") for k in logged), sorted(logged)
    assert "| biggan | 6 |" in out and "| mean | 12 |" in out
    folder = tmp_path / "eval" / "cnndetection_test"
    with (folder / "per_generator.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["generator"] for r in rows] == ["biggan", "crn", "mean"]
    results = json.loads((folder / "results.json").read_text())
    assert results["dataset"] == "forensynths" and len(results["per_generator"]) == 3
    with (folder / "test_predictions.csv").open() as handle:
        predictions = {r["path"]: float(r["score"]) for r in csv.DictReader(handle)}
    crn = [p for p in predictions if "/crn/" in p]
    labels = [0 if "/0_real/" in p else 1 for p in crn]
    accuracy = np.mean([(predictions[p] >= 0.5) == y for p, y in zip(crn, labels)])
    assert float(rows[1]["accuracy"]) == pytest.approx(accuracy)


def test_training_reads_a_wildrf_tree(compose, tmp_path):
    from deepinsight.train import train

    root = tmp_path / "wildrf"
    pair(root / "train", 4, 4)
    pair(root / "val", 2, 2)
    pair(root / "test" / "reddit", 2, 2)
    pair(root / "test" / "twitter", 2, 2)
    cfg = compose(
        ["model=custom_cnn", f"data.root={root}", "data.layout=wildrf", "data.image_size=16",
         "data.batch_size=8", "trainer=cpu", "trainer.fast_dev_run=true", "logger=none",
         "analysis.enabled=false"],
        run_dir=tmp_path / "run",
    )  # fmt: skip
    results = train(cfg)
    assert results["status"] == "completed" and results["dataset"] == "wildrf"
    # The run's test split knows each image's platform: the per-generator table, as evaluate's.
    rows = results["per_generator"]
    assert [row["generator"] for row in rows] == ["reddit", "twitter", "mean"]
    assert [row["n"] for row in rows[:2]] == [4, 4]
    assert (tmp_path / "run" / "per_generator.md").is_file()
