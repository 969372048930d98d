"""``robustness=true``: run the grid for one detector and write (and log) what it found."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from deepinsight.data.image_io import DEFAULT_MAX_PIXELS
from deepinsight.data.layouts import Sample
from deepinsight.evaluation.robustness import (
    CSV_COLUMNS,
    ROBUSTNESS_CSV,
    evaluate_robustness,
    write_robustness_csv,
)
from deepinsight.evaluation.robustness_plots import write_robustness_figures

log = logging.getLogger(__name__)


def log_robustness_to_wandb(rows: Sequence[Mapping[str, Any]], figures: Sequence[Path]) -> bool:
    """Log the table and figures to the active W&B run, if there is one; True if logged."""
    try:
        import wandb
    except ImportError:  # pragma: no cover - wandb is a dependency
        return False
    if wandb.run is None:
        return False
    table = wandb.Table(columns=list(CSV_COLUMNS), data=[[r[c] for c in CSV_COLUMNS] for r in rows])
    payload: dict[str, Any] = {"robustness/table": table}
    payload.update({f"robustness/{Path(f).stem}": wandb.Image(str(f)) for f in figures})
    wandb.log(payload)
    return True


def run_robustness(
    detector: Any,
    samples: Sequence[Sample],
    out_dir: Path,
    seed: int = 0,
    batch_size: int = 64,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    name: str = "",
) -> list[Path]:
    """Score ``samples`` under every perturbation; write robustness.csv and its figures into
    ``out_dir`` and log them to W&B when a run is active. Returns the files written."""
    out_dir = Path(out_dir)
    log.info("robustness grid: %d images, seed %d", len(samples), seed)
    rows = evaluate_robustness(detector, samples, seed, batch_size, max_pixels)
    csv_path = write_robustness_csv(rows, out_dir / ROBUSTNESS_CSV)
    figures = write_robustness_figures(rows, out_dir, name=name)
    log_robustness_to_wandb(rows, figures)
    return [csv_path, *figures]
