"""The robustness grid: identity levels, seeding, the CSV schema and its figures."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from helpers.synthetic_data import write_folder_dataset
from PIL import Image

from deepinsight.data.layouts import discover_splits
from deepinsight.evaluation.perturbations import PERTURBATIONS, perturb
from deepinsight.evaluation.robustness import (
    CSV_COLUMNS,
    ROBUSTNESS_CSV,
    conditions,
    read_robustness_csv,
)
from deepinsight.evaluation.robustness_outputs import run_robustness
from deepinsight.evaluation.robustness_plots import HEATMAP_FILENAME, curve_filename, grid_matrix


@pytest.fixture
def image() -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (48, 40, 3), dtype=np.uint8), mode="RGB")


def pixels(img: Image.Image) -> np.ndarray:
    return np.asarray(img, dtype=np.int16)


@pytest.mark.parametrize(("kind", "level"), [("blur", 0), ("resize", 1), ("noise", 0)])
def test_identity_levels_leave_pixels_unchanged(image, kind, level):
    assert np.array_equal(pixels(perturb(image, [(kind, level)], seed=0, index=0)), pixels(image))


@pytest.mark.parametrize(("kind", "level"), [("blur", 1), ("resize", 0.5), ("noise", 5)])
def test_other_levels_change_pixels_and_keep_size(image, kind, level):
    out = perturb(image, [(kind, level)], seed=0, index=0)
    assert out.size == image.size
    assert not np.array_equal(pixels(out), pixels(image))


def test_jpeg_100_is_a_real_encode_close_to_the_input(image):
    smooth = image.resize((12, 10)).resize(image.size, Image.Resampling.BILINEAR)
    at_100 = pixels(perturb(smooth, [("jpeg", 100)], seed=0, index=0))
    at_30 = pixels(perturb(smooth, [("jpeg", 30)], seed=0, index=0))
    error_100 = np.abs(at_100 - pixels(smooth)).mean()
    assert 0 < error_100 < 2.0  # not the identity, but close
    assert np.abs(at_30 - pixels(smooth)).mean() > error_100


def test_perturbations_are_seeded_per_image(image):
    steps = [("blur", 1.0), ("noise", 5.0), ("jpeg", 50.0)]
    first = pixels(perturb(image, steps, seed=3, index=7))
    assert np.array_equal(first, pixels(perturb(image, steps, seed=3, index=7)))
    assert not np.array_equal(first, pixels(perturb(image, steps, seed=4, index=7)))
    assert not np.array_equal(first, pixels(perturb(image, steps, seed=3, index=8)))


class EdgeDetector:
    """Scores high-frequency energy: a detector of the synthetic fakes' checkerboard."""

    preprocessing = {"image_size": 32, "channels": 3, "resize": "bilinear_antialias"}
    threshold = 0.5

    def score(self, images: torch.Tensor) -> np.ndarray:
        edges = (images[..., 1:] - images[..., :-1]).abs().mean(dim=(1, 2, 3))
        return torch.sigmoid((edges - 0.05) * 60).numpy()


def test_grid_csv_schema_figures_and_determinism(tmp_path):
    root = write_folder_dataset(tmp_path / "data", {"train": 1, "valid": 1, "test": 8})
    samples = discover_splits(root).splits["test"]
    written = run_robustness(EdgeDetector(), samples, tmp_path / "a", seed=1, batch_size=5)
    csv_path = tmp_path / "a" / ROBUSTNESS_CSV
    with csv_path.open() as handle:
        assert tuple(csv.DictReader(handle).fieldnames) == CSV_COLUMNS
    rows = read_robustness_csv(csv_path)
    assert len(rows) == len(conditions()) == 18 + 25
    assert {r["n"] for r in rows} == {len(samples)}
    kinds = {r["perturbation"] for r in rows}
    assert kinds == {*PERTURBATIONS, "jpeg+blur"}
    by_key = {(r["perturbation"], r["level"]): r for r in rows}
    # Identity conditions share one set of scores; blur 3 wipes out the checkerboard.
    assert by_key[("blur", "0")]["auroc"] == by_key[("noise", "0")]["auroc"] == 1.0
    assert by_key[("blur", "3")]["auroc"] < 0.9
    assert by_key[("jpeg+blur", "90x0")]["auroc"] == by_key[("jpeg", "90")]["auroc"]
    assert not np.isnan(grid_matrix(rows)).any()
    for kind in PERTURBATIONS:
        assert (tmp_path / "a" / curve_filename(kind)) in written
    assert (tmp_path / "a" / HEATMAP_FILENAME).stat().st_size > 0
    # Same seed, different batching: the same table.
    run_robustness(EdgeDetector(), samples, tmp_path / "b", seed=1, batch_size=16)
    assert (tmp_path / "b" / ROBUSTNESS_CSV).read_text() == csv_path.read_text()


def test_robustness_runs_scores_each_finished_run_on_its_own_test_split(tmp_path, capsys):
    from helpers.inference_fixtures import make_checkpoint

    from deepinsight.evaluation import robustness_runs

    root = write_folder_dataset(tmp_path / "data", {"train": 1, "valid": 1, "test": 3})
    run = tmp_path / "sweep" / "0"
    (run / "checkpoints").mkdir(parents=True)
    checkpoint = make_checkpoint(run / "checkpoints" / "best.ckpt", image_size=32)
    results = {"status": "completed", "best_checkpoint": str(checkpoint), "model": "custom_cnn"}
    (run / "results.json").write_text(json.dumps({**results, "data": "rgb"}))
    (run / "config.yaml").write_text(
        "data:\n  _target_: deepinsight.data.datamodule.DeepfakeDataModule\n"
        f"  variant: rgb\n  root: {root}\n  image_size: 32\n"
    )
    failed = tmp_path / "sweep" / "1"
    failed.mkdir()
    (failed / "results.json").write_text(json.dumps({"status": "failed"}))

    assert robustness_runs.run([str(tmp_path / "sweep"), "device=cpu", "max_samples=4"]) == 0
    rows = read_robustness_csv(run / ROBUSTNESS_CSV)
    assert {r["n"] for r in rows} == {4}
    assert (run / HEATMAP_FILENAME).is_file()
    assert "skipped" in capsys.readouterr().out and not (failed / ROBUSTNESS_CSV).exists()


def test_grid_is_logged_to_an_active_wandb_run_only(tmp_path, monkeypatch):
    import wandb
    from helpers.wandb_offline import read_offline_run

    from deepinsight.evaluation.robustness_outputs import log_robustness_to_wandb

    monkeypatch.setenv("WANDB_MODE", "offline")
    rows = [
        {"perturbation": "jpeg", "level": "90", "auroc": 0.9, "ap": 0.8, "accuracy": 0.7, "n": 4}
    ]
    figure = tmp_path / "robustness_jpeg.png"
    Image.new("RGB", (8, 8)).save(figure)
    assert wandb.run is None and not log_robustness_to_wandb(rows, [figure])
    run = wandb.init(
        project="t", dir=str(tmp_path), mode="offline", settings=wandb.Settings(console="off")
    )
    try:
        assert log_robustness_to_wandb(rows, [figure])
    finally:
        run.finish()
        wandb.teardown()
    logged = {key for step in read_offline_run(tmp_path).history for key in step}
    # Media are logged as nested keys (e.g. robustness/table/_type).
    for key in ("robustness/table", "robustness/robustness_jpeg"):
        assert any(k.startswith(key) for k in logged), (key, sorted(logged))
