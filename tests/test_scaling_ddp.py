"""DDP on CPU: two gloo processes per job under Hydra, two jobs in one multirun.

The data has a test and a validation split of 23 images, which two ranks cannot share evenly,
and W&B is set online against a closed local port (it must fall back to offline, once).
``helpers.run_probes.RankRecorder`` reports what each rank saw, so the ranks can be compared.
Job 0 is examined as a run; both jobs show that a multirun's jobs each run their own DDP group.
(One multirun serves both, which saves the suite a separate single run.)
"""

from __future__ import annotations

import csv
import json
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.cli_runs import TINY, run_cli
from helpers.synthetic_data import write_folder_dataset
from sklearn.metrics import roc_auc_score
from torchmetrics.classification import BinaryPrecisionRecallCurve

from deepinsight.calibration import choose_temperature, scale_logits
from deepinsight.checkpoint_info import DetectorSpec
from deepinsight.metrics import f1_maximising_threshold, summarize_predictions

pytestmark = pytest.mark.slow

# fp32: the probe re-computes validation logits outside Lightning's autocast, so its numbers
# equal the metric's only when training does not run in bf16 (the CPU default where native).
DDP_CPU = [
    "trainer=ddp",
    "trainer.accelerator=cpu",
    "trainer.devices=2",
    "trainer.precision=32-true",
]


@pytest.fixture(scope="module")
def uneven_dataset(tmp_path_factory) -> Path:
    """16 + 16 training images; 23 validation and 23 test images (one fake removed from each)."""
    root = write_folder_dataset(
        tmp_path_factory.mktemp("uneven"), {"train": 16, "valid": 12, "test": 12}
    )
    for split in ("valid", "test"):
        (root / split / "fake" / "fake_011.png").unlink()
    return root


@pytest.fixture(scope="module")
def ddp_sweep(uneven_dataset, tmp_path_factory):
    base = tmp_path_factory.mktemp("ddp")
    sweep_dir = base / "sweep"
    closed = socket.socket()  # bound, never listening: connections to it are refused
    closed.bind(("127.0.0.1", 0))
    with closed:
        proc = run_cli(
            [
                "-m",
                *TINY,
                *DDP_CPU,
                "logger=wandb",
                f"data.root={uneven_dataset}",
                "trainer.max_epochs=2",
                "seed=1,2",
                "+callbacks.recorder._target_=helpers.run_probes.RankRecorder",
                "+callbacks.recorder.out_dir=${paths.output_dir}/probes",
                f"hydra.sweep.dir={sweep_dir}",
            ],
            cwd=base,
            env={
                "WANDB_MODE": "online",
                "WANDB_BASE_URL": f"http://127.0.0.1:{closed.getsockname()[1]}",
                "WANDB_API_KEY": "0" * 40,
            },
            timeout=900,
        )
    assert proc.returncode == 0, proc.stdout[-4000:]
    return sweep_dir, proc.stdout


@pytest.fixture(scope="module")
def ddp_run(ddp_sweep):
    """Job 0 of the sweep, looked at as one run: its directory, its ranks' probes, the log."""
    sweep_dir, output = ddp_sweep
    run_dir, probes = sweep_dir / "0", sweep_dir / "0" / "probes"
    ranks = [json.loads((probes / f"rank{r}.json").read_text()) for r in (0, 1)]
    return run_dir, ranks, output


def image_files(root: Path, split: str) -> set[str]:
    return {str(p.resolve()) for p in (root / split).rglob("*.png")}


def test_both_ranks_ran_in_one_run_directory(ddp_run, tmp_path_factory):
    run_dir, ranks, _ = ddp_run
    assert [r["global_rank"] for r in ranks] == [0, 1]
    assert {r["world_size"] for r in ranks} == {2}
    # Rank 1 logs to its own file in the same directory, and nothing lands anywhere else.
    assert (run_dir / "train_ddp_process_1.log").is_file()
    assert not (run_dir.parent / "outputs").exists()
    # .hydra/ is rank 0's: the job name there is the main process's.
    assert "name: train\n" in (run_dir / ".hydra" / "hydra.yaml").read_text()


def test_only_rank_zero_writes_outputs_and_checkpoints(ddp_run):
    run_dir, ranks, _ = ddp_run
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    assert ranks[0]["checkpoint_writes"] >= 2 and ranks[1]["checkpoint_writes"] == 0
    assert len(list((run_dir / "wandb").glob("offline-run-*"))) == 1
    results = json.loads((run_dir / "results.json").read_text())
    assert results["status"] == "completed" and results["epochs_trained"] == 2


def test_every_test_image_predicted_exactly_once(ddp_run, uneven_dataset):
    run_dir, ranks, _ = ddp_run
    with (run_dir / "test_predictions.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 23
    assert {r["path"] for r in rows} == image_files(uneven_dataset, "test")
    # The ranks split the test set: disjoint shares that cover it.
    shares = [set(r["test_index"]) for r in ranks]
    assert not shares[0] & shares[1] and len(shares[0] | shares[1]) == 23
    assert sorted(len(s) for s in shares) == [11, 12]


def test_results_equal_scikit_learn_on_the_saved_predictions(ddp_run):
    run_dir, _, _ = ddp_run
    with (run_dir / "test_predictions.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    labels = [int(r["label"]) for r in rows]
    scores = [float(r["score"]) for r in rows]
    results = json.loads((run_dir / "results.json").read_text())
    assert results["test"]["n"] == 23
    assert results["test"]["auroc"] == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    expected = summarize_predictions(np.array(labels), np.array(scores, dtype=float), 0.5)
    assert results["test"]["confusion_matrix"] == expected["confusion_matrix"]


def test_validation_is_synced_and_calibration_agrees_everywhere(ddp_run):
    run_dir, ranks, _ = ddp_run
    assert len(ranks[0]["val_epochs"]) == len(ranks[1]["val_epochs"]) == 2
    for rank0, rank1 in zip(ranks[0]["val_epochs"], ranks[1]["val_epochs"]):
        index = rank0["index"] + rank1["index"]
        assert sorted(index) == list(range(23))  # every validation image, exactly once
        labels = torch.tensor(rank0["label"] + rank1["label"]).long()
        logits = torch.tensor(rank0["logit"] + rank1["logit"])
        # The logged (synced) AUROC is scikit-learn's on all the validation images, on both ranks,
        # computed on the float32 scores the metric saw (nearly equal logits may tie there).
        auroc = roc_auc_score(labels.numpy(), scale_logits(logits, rank0["temperature_used"]))
        assert rank0["val_auroc"] == pytest.approx(auroc, abs=1e-6)
        assert rank1["val_auroc"] == rank0["val_auroc"]
        # Temperature and threshold: one value on both ranks, the one all the images give.
        assert rank0["temperature"] == rank1["temperature"]
        temperature, _ = choose_temperature(logits, labels)
        assert rank0["temperature"] == pytest.approx(temperature, rel=1e-5)
        curve = BinaryPrecisionRecallCurve()
        curve.update(scale_logits(logits, rank0["temperature"]), labels)
        assert rank0["threshold"] == rank1["threshold"]
        assert rank0["threshold"] == pytest.approx(f1_maximising_threshold(curve), abs=1e-6)
    ckpt = torch.load(run_dir / "checkpoints" / "best.ckpt", weights_only=True)
    at_best = ranks[0]["val_epochs"][ckpt["epoch"]]
    assert DetectorSpec.stored_threshold(ckpt) == at_best["threshold"]
    assert DetectorSpec.stored_temperature(ckpt) == at_best["temperature"]
    results = json.loads((run_dir / "results.json").read_text())
    assert results["decision_threshold"]["value"] == at_best["threshold"]


def test_wandb_unreachable_falls_back_offline_and_warns_once(ddp_run):
    run_dir, _, output = ddp_run
    assert output.count("did not answer") == 1
    assert f"wandb sync {run_dir}/wandb/offline-run-*" in output
    (offline,) = (run_dir / "wandb").glob("offline-run-*")
    assert list(offline.glob("*.wandb"))


def test_multirun_jobs_each_run_ddp_in_their_own_directory(ddp_sweep):
    sweep_dir, output = ddp_sweep
    assert sorted(p.name for p in sweep_dir.iterdir() if p.is_dir()) == ["0", "1"]
    for job, seed in (("0", 1), ("1", 2)):
        run = sweep_dir / job
        results = json.loads((run / "results.json").read_text())
        assert results["status"] == "completed" and results["seed"] == seed
        assert (run / "train_ddp_process_1.log").is_file()
        with (run / "test_predictions.csv").open() as handle:
            assert len(list(csv.DictReader(handle))) == 23
    # Each job started its own rank 1, which ran that job only (not the sweep again).
    assert output.count("job 0 start") == 1 and output.count("job 1 start") == 1
    assert not (sweep_dir.parent / "outputs").exists()
