"""The embedded demo dataset: deterministic, Kaggle layout, disjoint splits, unbiased, cached."""

from __future__ import annotations

import csv
import json
import logging
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from deepinsight.data import demo
from deepinsight.data.layouts import KAGGLE_IMAGE_DIR
from deepinsight.errors import DeepInsightError

# The layout, split and cache tests hold for either generator (they share all but the pixels);
# the hand-made one builds in well under a second, the default decoders in seconds.
TINY = dict(
    n_train=8, n_valid=4, n_test=4, image_size=32, artifact_strength=0.2, seed=0, generator="upconv"
)


def read_split(root: Path, split: str) -> tuple[list[str], list[list[str]]]:
    with open(root / f"{split}.csv", newline="") as handle:
        header, *rows = list(csv.reader(handle))
    return header, rows


def all_files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory) -> Path:
    return demo.build_demo_dataset(tmp_path_factory.mktemp("tiny"), **TINY)


def test_same_seed_gives_byte_identical_files(tiny_root, tmp_path):
    again = all_files(demo.build_demo_dataset(tmp_path / "again", **TINY))
    assert again == all_files(tiny_root)
    other = all_files(demo.build_demo_dataset(tmp_path / "other", **{**TINY, "seed": 1}))
    assert other.keys() == again.keys()
    changed = [name for name in again if name.endswith(".jpg") and again[name] != other[name]]
    assert len(changed) == TINY["n_train"] + TINY["n_valid"] + TINY["n_test"]


def test_splits_are_cut_from_disjoint_photos(tiny_root):
    manifest = json.loads((tiny_root / demo.MANIFEST_NAME).read_text())
    assert manifest["format_version"] == demo.FORMAT_VERSION
    assert manifest["params"] == TINY | {"jpeg_quality": demo.DEMO_DEFAULTS["jpeg_quality"]}
    used = {split: set() for split in demo.SPLITS}
    for image in manifest["images"]:
        used[image["split"]].add(image["source"])
    assert used["train"].isdisjoint(used["valid"])
    assert used["train"].isdisjoint(used["test"])
    assert used["valid"].isdisjoint(used["test"])
    for split, pool in demo.SOURCE_PHOTOS.items():
        assert used[split] <= set(pool)
    # The fixed pools themselves never share a photo, whatever the build size.
    pools = [set(pool) for pool in demo.SOURCE_PHOTOS.values()]
    assert sum(map(len, pools)) == len(set.union(*pools))


def test_each_photo_feeds_both_classes_equally(tiny_root):
    manifest = json.loads((tiny_root / demo.MANIFEST_NAME).read_text())
    for split in demo.SPLITS:
        images = [image for image in manifest["images"] if image["split"] == split]
        real = Counter(image["source"] for image in images if image["label_str"] == "real")
        fake = Counter(image["source"] for image in images if image["label_str"] == "fake")
        assert real == fake


def test_csv_follows_the_kaggle_layout(tiny_root):
    for split in demo.SPLITS:
        first_line = (tiny_root / f"{split}.csv").read_text().splitlines()[0]
        assert first_line == ",original_path,id,label,label_str,path"
        _, rows = read_split(tiny_root, split)
        assert len(rows) == TINY[f"n_{split}"]
        assert [int(row[0]) for row in rows] == list(range(len(rows)))
        for _, original_path, _, label, label_str, rel_path in rows:
            assert (label, label_str) in {("1", "real"), ("0", "fake")}  # Kaggle: 1 = real
            assert rel_path.startswith(f"{split}/{label_str}/")
            assert original_path.split("@")[0] in demo.SOURCE_PHOTOS[split]
            file = tiny_root / "real_vs_fake" / "real-vs-fake" / rel_path
            with Image.open(file) as img:
                assert (img.format, img.mode) == ("JPEG", "RGB")
                assert img.size == (TINY["image_size"], TINY["image_size"])
        assert Counter(row[4] for row in rows) == {"real": len(rows) // 2, "fake": len(rows) // 2}


def image_features(root: Path, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(global statistics, checkerboard response, label 1 = fake) for every image of a split."""
    _, rows = read_split(root, split)
    size = demo.DEMO_DEFAULTS["image_size"]
    checkerboard = np.indices((size, size)).sum(0) % 2 * 2.0 - 1.0
    stats, responses = [], []
    for row in rows:
        path = root / KAGGLE_IMAGE_DIR / row[5]
        pixels = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64)
        gray = pixels.mean(axis=2)
        laplacian = 4 * gray[1:-1, 1:-1] - gray[:-2, 1:-1] - gray[2:, 1:-1]
        laplacian = laplacian - gray[1:-1, :-2] - gray[1:-1, 2:]
        # The floor keeps a flat (saturated) crop finite.
        stats.append(
            [
                *pixels.mean(axis=(0, 1)),
                *pixels.std(axis=(0, 1)),
                path.stat().st_size,
                np.log(laplacian.var() + 1e-3),
            ]
        )
        responses.append(abs((gray * checkerboard).mean()))
    labels = np.array([row[4] == "fake" for row in rows], dtype=int)
    return np.array(stats), np.array(responses), labels


@pytest.fixture(scope="module")
def guard_features(tmp_path_factory):
    """An upconv build big enough for an AUROC to mean something, at the default size and
    strength (the default generator's guard is in test_demo_decoders.py)."""
    params = {**demo.DEMO_DEFAULTS, "n_train": 400, "n_valid": 2, "n_test": 400}
    params["generator"] = "upconv"
    root = demo.build_demo_dataset(tmp_path_factory.mktemp("guard"), **params)
    return image_features(root, "train"), image_features(root, "test")


def probe_auroc(guard_features, columns: list[int]) -> float:
    (train_x, _, train_y), (test_x, _, test_y) = guard_features
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    probe.fit(train_x[:, columns], train_y)
    return roc_auc_score(test_y, probe.predict_proba(test_x[:, columns])[:, 1])


def test_brightness_contrast_and_jpeg_size_give_nothing_away(guard_features):
    # Per-channel mean and std, and the JPEG byte size.
    assert probe_auroc(guard_features, [0, 1, 2, 3, 4, 5, 6]) < 0.6


def test_sharpness_gives_nothing_away(guard_features):
    # Laplacian variance (the usual blur measure), alone and with the statistics above.
    assert probe_auroc(guard_features, [7]) < 0.6
    assert probe_auroc(guard_features, list(range(8))) < 0.6


def test_fakes_carry_the_periodic_fingerprint(guard_features):
    # The positive control for the two tests above: the label is in the data, as a
    # grid-locked checkerboard that one matched filter finds.
    _, (_, responses, labels) = guard_features
    assert roc_auc_score(labels, responses) > 0.8


def test_ensure_builds_once_then_reuses(tmp_path, monkeypatch, caplog):
    with caplog.at_level(logging.INFO, logger="deepinsight.data.demo"):
        root = demo.ensure_demo_dataset(tmp_path, **TINY)
    assert (root / demo.MANIFEST_NAME).is_file()
    assert root.parent == tmp_path and root.name.startswith(f"demo-v{demo.FORMAT_VERSION}-")
    assert [record.getMessage() for record in caplog.records if str(root) in record.getMessage()]
    assert list(tmp_path.iterdir()) == [root]  # no staging folder left behind

    def must_not_build(*args, **kwargs):
        raise AssertionError("the cached dataset was rebuilt")

    monkeypatch.setattr(demo, "build_demo_dataset", must_not_build)
    assert demo.ensure_demo_dataset(str(tmp_path), **TINY) == root
    with pytest.raises(AssertionError, match="rebuilt"):
        demo.ensure_demo_dataset(tmp_path, **{**TINY, "seed": 1})  # new params, new folder


def test_ensure_uses_the_winner_of_a_build_race(tmp_path, monkeypatch):
    real_build = demo.build_demo_dataset
    final = tmp_path / demo.demo_dataset_name({**demo.DEMO_DEFAULTS, **TINY})

    def build_while_another_process_finishes_first(dest, **params):
        real_build(final, **params)  # the other process renames its copy into place first
        (final / "winner").touch()
        return real_build(dest, **params)

    monkeypatch.setattr(demo, "build_demo_dataset", build_while_another_process_finishes_first)
    assert demo.ensure_demo_dataset(tmp_path, **TINY) == final
    assert (final / "winner").is_file()
    assert list(tmp_path.iterdir()) == [final]


def test_cache_location_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("DEEPINSIGHT_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert demo.default_cache_dir() == tmp_path / "xdg" / "deepinsight"
    monkeypatch.setenv("DEEPINSIGHT_CACHE", str(tmp_path / "mine"))
    assert demo.default_cache_dir() == tmp_path / "mine"
    root = demo.ensure_demo_dataset(**TINY)
    assert root.parent == tmp_path / "mine"


@pytest.mark.parametrize(
    "params", [{"n_train": 7}, {"image_size": 31}, {"artifact_strength": 1.5}, {"colour": 1}]
)
def test_bad_parameters_get_one_clear_error(tmp_path, params):
    with pytest.raises(DeepInsightError):
        demo.ensure_demo_dataset(tmp_path, **{**TINY, **params})
