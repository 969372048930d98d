"""The W&B run of one ``evaluate`` call (``wandb=true``): per-dataset metrics, figures, the
cross-dataset table and, through ``wandb.run``, the robustness grid.

Offline unless W&B is set up online (``deepinsight.config.wandb_mode``), as for training, so an
evaluation never waits on the network by surprise. Files go under ``OUTPUT/wandb/``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from deepinsight.analysis.plots import (
    CONFUSION_MATRIX_FILENAME,
    PR_CURVE_FILENAME,
    ROC_CURVE_FILENAME,
)
from deepinsight.analysis.reliability import RELIABILITY_FILENAME

# results.json's test metrics that go to the run's summary, per dataset.
METRICS = ("auroc", "ap", "accuracy", "f1", "precision", "recall")
# The figures evaluate writes per dataset, logged as <name>/<file stem>.
FIGURES = (ROC_CURVE_FILENAME, PR_CURVE_FILENAME, CONFUSION_MATRIX_FILENAME, RELIABILITY_FILENAME)


class EvaluationRun:
    """One W&B run (job_type "evaluate") for every dataset of an ``evaluate`` call."""

    def __init__(self, output: Path, checkpoint: str, config: Mapping[str, Any]) -> None:
        import wandb

        from deepinsight.config import wandb_mode

        self._wandb = wandb
        self.run = wandb.init(
            project="deepinsight",
            job_type="evaluate",
            name=f"evaluate-{Path(checkpoint).stem}",
            dir=str(output),
            mode=wandb_mode(),
            config={"checkpoint": checkpoint, **{k: config[k] for k in config}},
            settings=wandb.Settings(console="off", init_timeout=30, save_code=False),
        )

    def log_dataset(self, name: str, results: Mapping[str, Any], out_dir: Path) -> None:
        """``<name>/<metric>`` (and its CI bounds) in the summary, and the dataset's figures."""
        test = results.get("test") or {}
        payload: dict[str, Any] = {}
        for metric in METRICS:
            if test.get(metric) is not None:
                payload[f"{name}/{metric}"] = test[metric]
            low_high = (test.get("ci95") or {}).get(metric)
            if low_high:
                payload[f"{name}/{metric}_ci95_low"], payload[f"{name}/{metric}_ci95_high"] = (
                    low_high
                )
        calibration = (results.get("calibration") or {}).get("test") or {}
        for key in ("ece_before", "ece_after", "brier_before", "brier_after"):
            if calibration.get(key) is not None:
                payload[f"{name}/{key}"] = calibration[key]
        for figure in FIGURES:
            path = out_dir / figure
            if path.is_file():
                payload[f"{name}/{path.stem}"] = self._wandb.Image(str(path))
        self.run.log(payload)

    def log_table(self, rows: Sequence[Mapping[str, Any]], key: str = "cross_dataset") -> None:
        """Rows of dicts as one W&B table (the cross-dataset one, or ``NAME/per_generator``)."""
        if not rows:
            return
        columns = list(rows[0])
        data = [[_plain_cell(r.get(c)) for c in columns] for r in rows]
        self.run.log({key: self._wandb.Table(columns=columns, data=data)})

    def finish(self) -> Path | None:
        """Finish the run; returns its local folder (for the offline files)."""
        folder = Path(self.run.dir).parent if self.run.dir else None
        self.run.finish()
        # finish() can return before the service has written the offline file; teardown waits.
        self._wandb.teardown()
        return folder


def _plain_cell(value: Any) -> Any:
    """A CI pair as text: W&B table cells hold scalars."""
    return f"[{value[0]:.4f}, {value[1]:.4f}]" if isinstance(value, (list, tuple)) else value
