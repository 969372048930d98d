"""Leave-one-generator-out on the demo: generator identity, folds, and the held-out table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from deepinsight.data import demo_decoders
from deepinsight.data.datamodule import DeepfakeDataModule
from deepinsight.data.demo import MANIFEST_NAME, build_demo_dataset
from deepinsight.data.layouts import KAGGLE_IMAGE_DIR
from deepinsight.errors import DeepInsightError
from deepinsight.evaluation.logo import LogoTable, report

TINY_MIX = {"n_train": 16, "n_valid": 8, "n_test": 40, "image_size": 32,
            "artifact_strength": 0.2, "seed": 3, "generator": "mix"}  # fmt: skip


@pytest.fixture(scope="module")
def mix_cache(tmp_path_factory):
    """A tiny mix demo in a cache folder of its own, decoders trained for a few steps only."""
    patch = pytest.MonkeyPatch()
    patch.setattr(demo_decoders, "TRAIN_STEPS", 3)
    patch.setattr(demo_decoders, "TRAIN_CROPS", 16)
    cache = tmp_path_factory.mktemp("mix_cache")
    first = build_demo_dataset(tmp_path_factory.mktemp("mix_first"), **TINY_MIX)
    # sweep=logo enlarges the test split: the other splits must stay image for image the same.
    fewer = build_demo_dataset(tmp_path_factory.mktemp("mix_fewer"), **{**TINY_MIX, "n_test": 16})
    # A DataModule builds (and later finds) the same parameters' dataset in the cache.
    dm = DeepfakeDataModule(root="demo", image_size=32, cache_dir=str(cache),
                            demo={**TINY_MIX, "prebuilt": False})  # fmt: skip
    again = dm.resolve().root
    patch.undo()
    return cache, first, again, fewer


def manifest_images(root: Path) -> list[dict]:
    return json.loads((root / MANIFEST_NAME).read_text())["images"]


def test_every_fake_records_its_generator_deterministically(mix_cache):
    _, first, again, fewer = mix_cache
    images = manifest_images(first)
    fakes = [image for image in images if image["label_str"] == "fake"]
    reals = [image for image in images if image["label_str"] == "real"]
    makers = {image["generator"] for image in fakes}
    # Spread over the learned decoders and the hand-made up-convolution, which has no decoder.
    assert makers <= set(demo_decoders.MIX_GENERATORS) and len(makers) >= 4
    assert demo_decoders.HANDMADE in makers
    assert all(("decoder" in i) == (i["generator"] != "upconv") for i in fakes)
    # A real names the generator whose artifact its stand-in noise copies, and no maker.
    assert all(i["generator"] is None and i["stand_in"] in makers for i in reals)
    # The same seed gives the same generators (and the same files).
    for key in ("generator", "stand_in"):
        assert [i[key] for i in manifest_images(again)] == [i[key] for i in images]
    assert (first / "train.csv").read_text() == (again / "train.csv").read_text()
    # A larger test split leaves train and valid as they were, file for file.
    for split in ("train", "valid"):
        assert (first / f"{split}.csv").read_text() == (fewer / f"{split}.csv").read_text()
        for path in sorted((first / KAGGLE_IMAGE_DIR / split).rglob("*.jpg")):
            twin = fewer / path.relative_to(first)
            assert twin.read_bytes() == path.read_bytes(), path


@pytest.mark.parametrize("held_out", ["bilinear", "upconv"])
def test_a_fold_never_trains_on_the_held_out_generators_fakes(mix_cache, held_out):
    cache, *_ = mix_cache
    train = [g for g in demo_decoders.MIX_GENERATORS if g != held_out]
    dm = DeepfakeDataModule(
        root="demo", image_size=32, cache_dir=str(cache),
        demo={**TINY_MIX, "prebuilt": False, "train_generators": train,
              "test_generators": [held_out]},
    )  # fmt: skip
    splits = dm.resolve().splits
    for split in ("train", "valid"):
        groups = {s.group for s in splits[split] if s.label == 1}
        assert held_out not in groups and groups <= set(train)
    test_fakes = [s for s in splits["test"] if s.label == 1]
    assert test_fakes and {s.group for s in test_fakes} == {held_out}
    # Real images go with the generator their stand-in noise copies: the held-out one's reals
    # are tested, never trained on (else its residual spectrum would mean "real").
    for split in ("train", "valid"):
        assert held_out not in {s.group for s in splits[split] if s.label == 0}
    assert {s.group for s in splits["test"] if s.label == 0} == {held_out}
    # The photos stay disjoint across splits, as without a fold.
    whole = DeepfakeDataModule(root="demo", image_size=32, cache_dir=str(cache),
                               demo={**TINY_MIX, "prebuilt": False}).resolve().splits  # fmt: skip
    for split in ("train", "valid", "test"):
        assert {s.path for s in splits[split]} <= {s.path for s in whole[split]}
    assert dm.holds_out_generators and dm.generator_fold["test"] == [held_out]


def test_an_unknown_generator_is_one_line(mix_cache):
    cache, *_ = mix_cache
    dm = DeepfakeDataModule(
        root="demo",
        image_size=32,
        cache_dir=str(cache),
        demo={**TINY_MIX, "prebuilt": False, "test_generators": ["vae"]},
    )
    with pytest.raises(DeepInsightError, match="unknown generator.*vae.*this demo has bilinear"):
        dm.resolve()


def test_the_logo_sweep_trains_on_every_other_generator(compose):
    cfg = compose(["sweep=logo", "data.demo.test_generators=[upsample]"])
    assert cfg.data.demo.generator == "mix"
    others = ["transposed", "bilinear", "transposed3", "upconv"]
    assert list(cfg.data.demo.train_generators) == others


def write_run(
    folder: Path, data: str, held_out: str, seed: int, auroc: float, model: str = "densenet121"
) -> None:
    folder.mkdir(parents=True)
    others = [g for g in demo_decoders.MIX_DECODERS if g != held_out]
    results = {
        "status": "completed", "model": model, "data": data, "seed": seed,
        "generators": {"train": others, "test": [held_out]},
        "test": {"n": 200, "auroc": auroc, "ap": auroc - 0.01,
                 "ci95": {"auroc": [auroc - 0.05, auroc + 0.05], "ap": [0.5, 0.9]}},
    }  # fmt: skip
    (folder / "results.json").write_text(json.dumps(results))


def test_the_held_out_table_has_a_row_per_generator_the_mean_and_the_seed_spread(tmp_path):
    sweep = tmp_path / "sweep"
    number = 0
    for data, base in (("rgb", 0.6), ("rgb+npr", 0.8)):
        for index, held_out in enumerate(demo_decoders.MIX_DECODERS):
            for seed, jitter in ((42, 0.0), (43, 0.02)):
                write_run(sweep / str(number), data, held_out, seed, base + 0.01 * index + jitter)
                number += 1
    # Another model: compared with neither (leads are within one model).
    write_run(sweep / "other", "rgb", "bilinear", 42, 0.5, model="custom_cnn")
    (sweep / "99").mkdir()  # a job that failed before writing results: skipped
    # Trained and tested on every generator: reported apart, not a held-out row.
    write_run(sweep / "in", "rgb+npr", "bilinear", 42, 0.99)
    every = list(demo_decoders.MIX_DECODERS)
    results = json.loads((sweep / "in" / "results.json").read_text())
    results["generators"] = {"train": every, "test": every}
    results["per_generator"] = [{"generator": g, "auroc": 0.9 + 0.01 * i}
                                for i, g in enumerate([*every, "mean"])]  # fmt: skip
    (sweep / "in" / "results.json").write_text(json.dumps(results))
    LogoTable().on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep)}}}))
    text = (sweep / "logo.md").read_text()
    held_out_part = text.split("In distribution")[0]
    lines = [
        line for line in held_out_part.splitlines() if line.startswith("| densenet121 rgb+npr")
    ]
    assert len(lines) == 5 and "| mean |" in lines[-1]
    # Mean over generators (0.8 + 0.015) and seeds (+0.01): 0.825, ± half the 0.02 spread.
    assert "0.8250 ±0.010" in lines[-1]
    assert "densenet121 rgb+npr leads densenet121 rgb by 0.2000 mean held-out AUROC: larger" in text
    assert "leads custom_cnn" not in text and "custom_cnn rgb leads" not in text
    assert "In distribution" in text and "0.9900 [0.940, 1.040]" in text
    # Each generator's own AUROC, in name order (bilinear first: 0.92), and no "mean" column.
    (in_row,) = [line for line in text.split("In distribution")[1].splitlines() if "0.9900" in line]
    assert in_row.endswith("| 0.9200 | 0.9000 | 0.9300 | 0.9100 |") and "0.9400" not in in_row
    rows = (sweep / "logo.csv").read_text().splitlines()
    assert len(rows) == 1 + 2 * 5 + 2  # and custom_cnn's one generator and its mean
    assert report(tmp_path / "empty") is None
