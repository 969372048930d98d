"""An Optuna study belongs to one dataset: ``hparams_search=...`` refuses to mix two in one study.

A study is resumed by name from its SQLite file, and its sampler learns from every trial in it.
Trials on the demo and trials on the real 140k images must never share one: the demo's good
learning rates say nothing about the real data's. So the study's name and folder carry the
dataset's label (``di.dataset_label``), and the first trial records the dataset's identity in
the study (a user attribute); a later invocation on another dataset under the same study name
stops with one line before any trial trains (the trial it was asked for is closed as failed).
Hooked in as the Optuna sweeper's ``custom_search_space``, which the sweeper calls for every
trial it configures.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from deepinsight.data.demo import is_demo_root
from deepinsight.errors import EXIT_USER_ERROR

DATASET_ATTR = "deepinsight_dataset"


def dataset_identity(data: DictConfig | dict[str, Any]) -> str:
    """What makes two runs' data the same: the demo with its parameters, or the absolute root."""
    root = data["root"]
    if is_demo_root(root):
        demo = OmegaConf.to_container(data["demo"]) if OmegaConf.is_config(data) else data["demo"]
        params = {key: value for key, value in dict(demo or {}).items() if value is not None}
        return "demo " + json.dumps(params, sort_keys=True)
    return str(Path(str(root)).expanduser().resolve())


def check_study_dataset(config: DictConfig, trial: Any) -> None:
    """Record the study's dataset on its first trial; stop if a later one's differs."""
    current = dataset_identity(config.data)
    study = trial.study
    recorded = study.user_attrs.get(DATASET_ATTR)
    if recorded is None:
        study.set_user_attr(DATASET_ATTR, current)
        return
    if recorded != current:
        # The sweeper asked for this trial before calling here: close it as failed, so the study
        # holds no trial left "running" (samplers ignore failed trials).
        from optuna.trial import TrialState

        study.tell(trial, state=TrialState.FAIL)
        print(
            f"error: Optuna study '{study.study_name}' was run on {recorded}, not on {current}: "
            "its trials would mix two datasets; give this search its own "
            "hydra.sweeper.study_name and hydra.sweep.dir",
            file=sys.stderr,
        )
        raise SystemExit(EXIT_USER_ERROR)
