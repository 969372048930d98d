"""Loading data from disk: the Kaggle layout, folder trees, bad files and bad roots."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest
from helpers.synthetic_data import KAGGLE_HEADER, write_folder_dataset, write_kaggle_dataset

from deepinsight.data.datamodule import DeepfakeDataModule, training_crops
from deepinsight.data.layouts import discover_splits
from deepinsight.errors import DeepInsightError


def test_kaggle_layout_labels_are_flipped_to_fake_is_one(tmp_path):
    root = write_kaggle_dataset(tmp_path, {"train": 3, "valid": 2, "test": 2})
    assert (root / "train.csv").read_text().splitlines()[0] == KAGGLE_HEADER
    found = discover_splits(root)
    assert found.layout == "kaggle"
    for samples in found.splits.values():
        for sample in samples:
            assert sample.path.is_file()
            # Kaggle files named REAL* carry label 1 (= real); DeepInsight says 0.
            assert sample.label == (0 if sample.path.name.startswith("REAL") else 1)
        assert sum(s.label for s in samples) == len(samples) // 2


def test_corrupt_files_are_skipped_with_a_warning_naming_each(tmp_path, caplog):
    root = write_kaggle_dataset(tmp_path, {"train": 4, "valid": 2, "test": 2})
    image_dir = root / "real_vs_fake" / "real-vs-fake" / "train"
    empty = image_dir / "real" / "REAL0000.jpg"
    empty.write_bytes(b"")
    truncated = image_dir / "fake" / "FAKE0001.jpg"
    truncated.write_bytes(truncated.read_bytes()[:200])
    text = image_dir / "fake" / "FAKE0002.jpg"
    text.write_text("this is not a jpeg")
    dm = DeepfakeDataModule(root=str(root), image_size=32, batch_size=4)
    with caplog.at_level(logging.WARNING):
        dm.setup()
    assert len(dm.dataset("train")) == 8 - 3
    for bad in (empty, truncated, text):
        assert any(str(bad) in record.getMessage() for record in caplog.records)
    images, labels, indices = next(iter(dm.train_dataloader()))
    assert images.shape == (4, 3, 32, 32) and images.min() >= 0 and images.max() <= 1
    # The Kaggle 140k files are FFHQ-aligned faces: checkpoints say so, for predict's faces=auto.
    assert dm.preprocessing["crops"] == "aligned_faces"


def test_what_the_training_images_are_is_recorded_for_inference(tmp_path):
    root = write_folder_dataset(tmp_path, {"train": 2, "valid": 2, "test": 2})
    dm = DeepfakeDataModule(root=str(root), image_size=32)
    dm.resolve()
    assert dm.preprocessing["crops"] == "whole_images"  # a folder tree: whole images by default
    dm = DeepfakeDataModule(root=str(root), image_size=32, crops="aligned_faces")
    dm.resolve()
    assert dm.preprocessing["crops"] == "aligned_faces"
    with pytest.raises(DeepInsightError, match="data.crops must be one of aligned_faces"):
        DeepfakeDataModule(root=str(root), crops="faces")
    # The demo is written in the Kaggle layout, but its pictures are not faces.
    assert training_crops(None, "kaggle", demo=True) == "whole_images"
    assert training_crops(None, "kaggle", demo=False) == "aligned_faces"
    assert training_crops("aligned_faces", "folders", demo=False) == "aligned_faces"


def test_corrupt_file_can_fail_instead(tmp_path):
    root = write_folder_dataset(tmp_path, {"train": 2, "valid": 2, "test": 2})
    bad = root / "valid" / "fake" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    dm = DeepfakeDataModule(root=str(root), image_size=32, on_bad_file="fail")
    with pytest.raises(DeepInsightError, match="broken.png"):
        dm.setup()


def test_folder_layout_accepts_val_alias(tmp_path):
    root = write_folder_dataset(tmp_path, {"train": 2, "val": 2, "test": 2})
    found = discover_splits(root)
    assert found.layout == "folders" and len(found.splits["valid"]) == 4


@pytest.mark.parametrize("problem", ["missing", "unknown"])
def test_bad_root_fails_with_one_line(tmp_path, problem):
    root = tmp_path / "nowhere"
    if problem == "unknown":
        (root / "images").mkdir(parents=True)
    with pytest.raises(DeepInsightError) as err:
        discover_splits(root)
    message = str(err.value)
    assert str(root) in message and "{train,valid,test}" in message and "\n" not in message


def test_single_class_or_empty_split_fails(tmp_path):
    root = write_folder_dataset(tmp_path, {"train": 2, "valid": 2, "test": 2})
    for image in (root / "test" / "fake").iterdir():
        image.unlink()
    with pytest.raises(DeepInsightError, match="test split has only real"):
        DeepfakeDataModule(root=str(root)).setup()
    for image in (root / "test" / "real").iterdir():
        image.unlink()
    with pytest.raises(DeepInsightError, match="test split has no readable images"):
        DeepfakeDataModule(root=str(root)).setup()


def test_cli_bad_root_prints_one_line_without_traceback(tmp_path):
    missing = tmp_path / "no-such-dir"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "deepinsight.train",
            f"data.root={missing}",
            "logger=none",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(missing) in errors[0]


def test_cli_unknown_group_option_lists_valid_ones(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "deepinsight.train",
            "model=resnet9000",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0
    for option in ("densenet121", "custom_cnn", "efficientnet"):
        assert option in proc.stderr


@pytest.mark.parametrize(("root", "demo"), [("demo", True), ("d", False), ("./demo", False)])
def test_config_defaults_and_datamodule_agree_on_demo_or_disk(root, demo):
    from omegaconf import OmegaConf

    import deepinsight.config  # noqa: F401  (registers the di.* resolvers)

    cfg = OmegaConf.create({"root": root, "source": "${di.if_demo:${root},demo,disk}"})
    assert cfg.source == ("demo" if demo else "disk")
    assert DeepfakeDataModule(root=root).uses_demo is demo


@pytest.mark.parametrize("root", [None, "", "null", "  "])
def test_an_unset_data_root_is_a_one_line_error_not_the_demo(root, compose):
    """`data.root=$DATA` with DATA unset must not quietly train and report on the demo."""
    with pytest.raises(DeepInsightError, match="data.root is empty"):
        DeepfakeDataModule(root=root)
    from deepinsight.train import train

    cfg = compose([f"data.root={'null' if root is None else repr(root)}"])
    with pytest.raises(DeepInsightError, match="data.root is empty.*data.root=demo"):
        train(cfg)
