"""``hparams_search=densenet121``: a 2-trial Optuna study on tiny demo data, then one more trial.

The study lives in SQLite inside the sweep directory; running the command again must load it
and add to it, each trial in a run directory of its own, and the value Optuna records for a
trial must be that trial's best validation AUROC (the test split plays no part). The study
records its dataset, and the same study on other data is refused (checked in-process: the
refusal happens before any trial trains, so a third command would only repeat start-up).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.cli_runs import run_cli
from omegaconf import OmegaConf

pytestmark = [
    pytest.mark.slow,
    # optuna 2.x's storage module uses SQLAlchemy 1.4 APIs that 2.0 moved (pinned below 2).
    pytest.mark.filterwarnings("ignore::sqlalchemy.exc.MovedIn20Warning"),
]

TINY_DEMO_SEARCH = [
    "hparams_search=densenet121",
    "data.demo.n_train=32",
    "data.demo.n_valid=16",
    "data.demo.n_test=16",
    "data.demo.image_size=32",
    "data.image_size=32",
    "trainer=cpu",
    "trainer.max_epochs=1",
    "analysis.enabled=false",
    "logger=csv",
]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    base = tmp_path_factory.mktemp("optuna")
    sweep_dir = base / "search"
    env = {"DEEPINSIGHT_CACHE": str(base / "cache")}
    args = [*TINY_DEMO_SEARCH, f"hydra.sweep.dir={sweep_dir}"]
    first = run_cli([*args, "hydra.sweeper.n_trials=2"], cwd=base, env=env, timeout=900)
    assert first.returncode == 0, first.stdout[-4000:]
    trial_dirs_after_first = sorted(p.name for p in sweep_dir.iterdir() if p.is_dir())
    again = run_cli([*args, "hydra.sweeper.n_trials=1"], cwd=base, env=env, timeout=900)
    assert again.returncode == 0, again.stdout[-4000:]
    return sweep_dir, trial_dirs_after_first, again


def test_the_study_records_its_dataset(study):
    # The sweeper called the hook (hparams_study.check_study_dataset) for its trials.
    sweep_dir, _, _ = study
    import optuna

    from deepinsight.hparams_study import DATASET_ATTR

    storage = f"sqlite:///{sweep_dir / 'optuna.db'}"
    (summary,) = optuna.get_all_study_summaries(storage)
    assert summary.study_name == "densenet121-rgb-demo"
    recorded = optuna.load_study(study_name=summary.study_name, storage=storage).user_attrs
    assert recorded[DATASET_ATTR].startswith("demo ") and '"n_train": 32' in recorded[DATASET_ATTR]


def test_a_study_run_on_other_data_is_refused_in_one_line(capsys):
    # In-process, on an in-memory study: the hook as the sweeper calls it for each trial.
    import optuna

    from deepinsight.hparams_study import check_study_dataset

    study = optuna.create_study(study_name="densenet121-rgb-demo")
    trial = study.ask()
    check_study_dataset(
        OmegaConf.create({"data": {"root": "demo", "demo": {"n_train": 32}}}), trial
    )
    study.tell(trial, 0.9)
    other = OmegaConf.create({"data": {"root": "demo", "demo": {"n_train": 48}}})
    trial = study.ask()
    with pytest.raises(SystemExit) as stopped:
        check_study_dataset(other, trial)
    assert stopped.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "densenet121-rgb-demo" in errors[0]
    assert '"n_train": 48' in errors[0]
    # Nothing trained: the trial the sweeper had asked for is closed as failed, not left running.
    assert [t.state.name for t in study.trials] == ["COMPLETE", "FAIL"]


def load_trials(sweep_dir: Path):
    import optuna

    storage = f"sqlite:///{sweep_dir / 'optuna.db'}"
    (summary,) = optuna.get_all_study_summaries(storage)
    return optuna.load_study(study_name=summary.study_name, storage=storage).trials


def test_study_is_stored_in_the_sweep_dir_and_continues(study):
    sweep_dir, first_dirs, _ = study
    trials = load_trials(sweep_dir)
    assert [t.state.name for t in trials] == ["COMPLETE"] * 3
    assert len(first_dirs) == 2
    # The second invocation added a run directory and left the first two in place.
    run_dirs = sorted(p for p in sweep_dir.iterdir() if (p / "results.json").is_file())
    assert len(run_dirs) == 3 and set(first_dirs) < {p.name for p in run_dirs}


def test_each_trial_value_is_its_best_validation_auroc(study):
    sweep_dir, _, _ = study
    runs = {}
    for run in sweep_dir.iterdir():
        if (run / "results.json").is_file():
            cfg = OmegaConf.load(run / "config.yaml")
            params = (cfg.model.optimizer.lr, cfg.model.optimizer.weight_decay, cfg.data.batch_size)
            runs[params] = json.loads((run / "results.json").read_text())
    for trial in load_trials(sweep_dir):
        params = (
            trial.params["model.optimizer.lr"],
            trial.params["model.optimizer.weight_decay"],
            trial.params["data.batch_size"],
        )
        results = runs[params]  # the run directory that trained with this trial's parameters
        assert results["status"] == "completed" and results["model"] == "densenet121"
        assert trial.value == results["best_val_auroc"]
        assert 1e-5 <= params[0] <= 1e-2 and 1e-7 <= params[1] <= 1e-3 and params[2] in (16, 32, 64)


def test_best_result_is_written_for_the_sweep(study):
    sweep_dir, _, _ = study
    best = (sweep_dir / "optimization_results.yaml").read_text()
    assert "best_params" in best and "best_value" in best
