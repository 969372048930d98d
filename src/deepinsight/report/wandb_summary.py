"""The report's W&B summary run: a copy of its tables and figures where the runs were logged.

The files the report writes stay the report; this run only mirrors them in W&B, in the group
and project the training runs used (read from their config.yaml).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from deepinsight.report.runs import RunResult, read_config


def wandb_group_and_project(runs: Sequence[RunResult]) -> tuple[str | None, str | None]:
    """The W&B group and project the runs logged to, from their resolved config.yaml."""
    from omegaconf import OmegaConf

    groups, projects = [], []
    for run in runs:
        config = read_config(run.run_dir)
        if config is not None:
            groups.append(OmegaConf.select(config, "logger.wandb.group", default=None))
            projects.append(OmegaConf.select(config, "logger.wandb.project", default=None))
    distinct_groups = sorted({g for g in groups if g})
    if len(distinct_groups) > 1:
        print(
            f"warning: runs span W&B groups {distinct_groups}; using '{distinct_groups[0]}' "
            "(pass group=NAME to choose)",
            file=sys.stderr,
        )
    project = next((p for p in projects if p), None)
    return (distinct_groups[0] if distinct_groups else None), project


def log_to_wandb(
    tables: Mapping[str, tuple[Sequence[str], Sequence[Mapping[str, Any]]]],
    figures: Sequence[Path],
    output: Path,
    group: str | None,
    project: str | None,
    run_names: Sequence[str],
) -> Path | None:
    """Log tables (name -> (columns, rows)) and figures to a W&B summary run.

    Returns the run's local folder.

    The mode is the training runs' rule (``deepinsight.config.wandb_mode``): offline unless W&B
    is set up online, so a report never waits on the network by surprise. The run's files go
    under ``output/wandb/``.
    """
    import wandb

    from deepinsight.config import wandb_mode

    summary_run = wandb.init(
        project=project or "deepinsight",
        group=group,
        job_type="report",
        name="comparison",
        dir=str(output),
        mode=wandb_mode(),
        config={"runs": list(run_names)},
        settings=wandb.Settings(console="off", init_timeout=30, save_code=False),
        reinit="create_new",  # never finish a run the caller may have open
    )
    try:
        logged: dict[str, Any] = {
            name: wandb.Table(
                columns=list(columns), data=[[row.get(c) for c in columns] for row in rows]
            )
            for name, (columns, rows) in tables.items()
        }
        logged.update({p.stem: wandb.Image(str(p)) for p in figures})
        summary_run.log(logged)
        run_folder = Path(summary_run.dir).parent if summary_run.dir else None
    finally:
        summary_run.finish()
    # finish() can return before W&B's service has written the offline .wandb file; shutting
    # the service down waits for it, so the files are complete when the report returns. Skipped
    # when the caller has a run of its own open, which the shutdown would cut short.
    if wandb.run is None:
        wandb.teardown()
    return run_folder
