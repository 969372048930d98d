"""Sweeps that scale out and restart: the submitit launchers and ``skip_completed``.

There is no SLURM here: the ``submitit_slurm`` preset is composed and turned into the sbatch
script submitit would submit. ``submitit_local`` really runs: a 2-job multirun whose second job
fails (its data folder does not exist yet), then the same command with ``skip_completed=true``
once the folder exists: the completed job is skipped and only the failed one runs again.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers.cli_runs import TINY, run_cli
from helpers.synthetic_data import write_folder_dataset
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from deepinsight.config import config_dir


# The presets keep the plugin's names; Hydra warns that it merges them onto its schemas.
@pytest.mark.filterwarnings(r"ignore:\s*'hydra/launcher/submitit_slurm' is validated")
def test_slurm_preset_asks_one_task_per_gpu_and_the_requeue_signal(tmp_path, monkeypatch):
    import submitit
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
    from submitit.slurm.slurm import SlurmExecutor

    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                "hydra/launcher=submitit_slurm",
                "trainer=ddp",
                "trainer.devices=4",
                "trainer.num_nodes=2",
                "hydra.launcher.partition=gpu",
                "hydra.launcher.account=mylab",
                f"hydra.sweep.dir={tmp_path}",
            ],
            return_hydra_config=True,
        )
    launcher = instantiate(cfg.hydra.launcher)
    assert type(launcher).__name__ == "SlurmLauncher"
    # The launcher's own translation into submitit parameters (SlurmLauncher.launch).
    params = dict(launcher.params)
    folder = params.pop("submitit_folder")
    monkeypatch.setattr(SlurmExecutor, "affinity", staticmethod(lambda: 1))  # no srun here
    executor = submitit.AutoExecutor(
        folder=folder, cluster="slurm", slurm_max_num_timeout=params.pop("max_num_timeout")
    )
    generic = set(OmegaConf.structured(BaseQueueConf).keys())
    executor.update_parameters(
        **{k if k in generic else f"slurm_{k}": v for k, v in params.items()}
    )
    sbatch = executor._executor._make_submission_file_text("python -m deepinsight.train", "x")
    for line in (
        "#SBATCH --nodes=2",
        "#SBATCH --ntasks-per-node=4",
        "#SBATCH --gpus-per-node=4",
        "#SBATCH --time=240",
        "#SBATCH --partition=gpu",
        "#SBATCH --account=mylab",
        "#SBATCH --signal=USR1@120",  # Lightning's SLURM auto-requeue signal
    ):
        assert line in sbatch.splitlines(), line
    # The trainer the job composes has as many devices and nodes as the allocation.
    assert cfg.trainer.devices == 4 and cfg.trainer.num_nodes == 2


@pytest.fixture(scope="module")
def restarted_sweep(tmp_path_factory):
    base = tmp_path_factory.mktemp("sweep")
    ready = write_folder_dataset(base / "ready", {"train": 8, "valid": 4, "test": 4})
    later = base / "later"
    sweep_dir = base / "multirun"
    args = [
        "-m",
        "hydra/launcher=submitit_local",
        *TINY,
        "trainer.max_epochs=1",
        f"data.root={ready},{later}",
        f"hydra.sweep.dir={sweep_dir}",
    ]
    first = run_cli(args, cwd=base, timeout=900)
    assert first.returncode == 0, first.stdout[-4000:]
    before = {job: (sweep_dir / job / "results.json").read_text() for job in ("0", "1")}
    shutil.copytree(ready, later)
    second = run_cli([*args, "skip_completed=true"], cwd=base, timeout=900)
    assert second.returncode == 0, second.stdout[-4000:]
    return sweep_dir, before


def results(sweep_dir: Path, job: str) -> dict:
    return json.loads((sweep_dir / job / "results.json").read_text())


@pytest.mark.slow
def test_submitit_local_runs_each_job_as_a_submitit_job(restarted_sweep):
    sweep_dir, before = restarted_sweep
    # submitit keeps one folder per job it ran, with its result: two jobs first, two again.
    assert len(list((sweep_dir / ".submitit").glob("*/*_result.pkl"))) == 4
    assert json.loads(before["0"])["status"] == "completed"
    first_try = json.loads(before["1"])
    assert first_try["status"] == "failed" and "does not exist" in first_try["error"]


@pytest.mark.slow
def test_skip_completed_reruns_only_the_failed_job(restarted_sweep):
    sweep_dir, before = restarted_sweep
    # Job 0 was left alone (byte for byte) and said so in its log; job 1 ran again and finished.
    assert (sweep_dir / "0" / "results.json").read_text() == before["0"]
    assert "skipped" in (sweep_dir / "0" / "train.log").read_text()
    assert results(sweep_dir, "1")["status"] == "completed"
