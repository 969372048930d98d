"""The saved W&B view of a sweep: a W&B Report built with ``wandb-workspaces``.

The report holds the comparison table with each run's 95% bootstrap intervals, AUROC and AP by
variant (bars: mean over seeds, whiskers: seed-to-seed std), the overlaid ROC and PR curves and
the robustness curves (figures the report's summary run logs under their file stems).

Online, ``python -m deepinsight.report`` saves it and prints its URL. Offline (the default on
a fresh machine) it writes ``wandb_report.json`` beside ``comparison.md``: a plain spec, from
which one command builds and saves the same report once W&B is reachable::

    python -m deepinsight.report.wandb_dashboard OUTPUT/wandb_report.json [--entity NAME]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from deepinsight.report.runs import RunResult

SPEC_FILENAME = "wandb_report.json"
SPEC_VERSION = 1
# The W&B keys the training runs log (deepinsight.tracking.loggers) and group by.
METRIC_KEYS = {"auroc": "test/auroc", "ap": "test/ap"}
VARIANT_CONFIG_KEY = "data"
CURVE_KEYS = ("roc_curves", "pr_curves")
PUBLISH_COMMAND = "python -m deepinsight.report.wandb_dashboard {path}"


def _interval(run: RunResult, metric: str) -> str:
    """``0.9714 [0.957, 0.984]`` from results.json's test.ci95, or the point value alone."""
    value = run.metrics.get(metric)
    if value is None:
        return "—"
    try:
        results = json.loads((run.run_dir / "results.json").read_text(encoding="utf-8"))
        low, high = results["test"]["ci95"][metric]
    except (OSError, ValueError, KeyError, TypeError):
        return f"{value:.4f}"
    return f"{value:.4f} [{low:.3f}, {high:.3f}]"


def comparison_markdown(runs: Sequence[RunResult]) -> str:
    """The runs table of the W&B report: AUROC and AP with their 95% intervals."""
    lines = [
        "| run | model | data | seed | AUROC [95% CI] | AP [95% CI] |",
        "|---|---|---|---|---|---|",
    ]
    for run in runs:
        if run.completed:
            cells = [run.run, run.model, run.data, run.seed]
            cells += [_interval(run, "auroc"), _interval(run, "ap")]
            lines.append("| " + " | ".join("—" if c is None else str(c) for c in cells) + " |")
    return "\n".join(lines)


def dashboard_spec(
    runs: Sequence[RunResult],
    figures: Sequence[Path],
    project: str | None,
    group: str | None,
    entity: str | None = None,
) -> dict[str, Any]:
    """The report as plain data: what to show, where the runs live, which keys to read."""
    stems = [Path(f).stem for f in figures]
    return {
        "format_version": SPEC_VERSION,
        "title": f"DeepInsight comparison: {group}" if group else "DeepInsight comparison",
        "entity": entity or os.environ.get("WANDB_ENTITY") or None,
        "project": project or "deepinsight",
        "group": group,
        "variant_config_key": VARIANT_CONFIG_KEY,
        "metrics": dict(METRIC_KEYS),
        "comparison_markdown": comparison_markdown(runs),
        "curve_keys": [k for k in CURVE_KEYS if k in stems],
        "robustness_keys": [s for s in stems if s.startswith("robustness_")],
    }


def _filters(group: str | None, job_type: str) -> str:
    condition = f"JobType = '{job_type}'"
    return f"Group = '{group}' and {condition}" if group else condition


def build_wandb_report(spec: Mapping[str, Any], entity: str | None = None):
    """The ``wandb_workspaces`` Report object for ``spec``; builds offline, saves online."""
    import wandb_workspaces.reports.v2 as wr

    entity = entity or spec.get("entity") or ""
    project, group = spec["project"], spec.get("group")
    variant = wr.Config(spec["variant_config_key"])
    training = wr.Runset(
        entity=entity,
        project=project,
        name="training runs",
        filters=_filters(group, "train"),
        groupby=[f"config.{spec['variant_config_key']}"],
    )
    summary = wr.Runset(
        entity=entity, project=project, name="report", filters=_filters(group, "report")
    )
    bars = [
        wr.BarPlot(
            title=f"{name.upper()} by variant (mean, std over seeds)",
            metrics=[key],
            groupby=variant,
            groupby_aggfunc="mean",
            groupby_rangefunc="stddev",
            range_x=(0.0, 1.0),
        )
        for name, key in spec["metrics"].items()
    ]
    blocks = [
        wr.H1(text=spec["title"]),
        wr.H2(text="Comparison (test split, 95% bootstrap CIs)"),
        wr.MarkdownBlock(text=spec["comparison_markdown"]),
        wr.H2(text="AUROC and AP by variant"),
        wr.PanelGrid(runsets=[training], panels=bars),
    ]
    if spec["curve_keys"]:
        blocks += [
            wr.H2(text="ROC and PR curves, every run overlaid"),
            wr.PanelGrid(
                runsets=[summary],
                panels=[wr.MediaBrowser(title="curves", media_keys=list(spec["curve_keys"]))],
            ),
        ]
    if spec["robustness_keys"]:
        blocks += [
            wr.H2(text="Robustness: AUROC under JPEG, blur, resizing and noise"),
            wr.PanelGrid(
                runsets=[summary],
                panels=[
                    wr.MediaBrowser(title="robustness", media_keys=list(spec["robustness_keys"]))
                ],
            ),
        ]
    return wr.Report(project=project, entity=entity, title=spec["title"], blocks=blocks)


def write_dashboard_spec(spec: Mapping[str, Any], output: Path) -> Path:
    path = Path(output) / SPEC_FILENAME
    path.write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")
    return path


def publish(spec_path: Path, entity: str | None = None) -> str:
    """Build the report from a saved spec and save it to W&B (needs W&B online); its URL."""
    from deepinsight.errors import DeepInsightError

    try:
        spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise DeepInsightError(f"cannot read the W&B report spec {spec_path}: {err}") from None
    if spec.get("format_version") != SPEC_VERSION:
        raise DeepInsightError(f"{spec_path} is not a DeepInsight W&B report spec")
    if not (entity or spec.get("entity")):
        import wandb

        entity = wandb.Api().default_entity
    report = build_wandb_report(spec, entity=entity).save()
    return str(report.url)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m deepinsight.report.wandb_dashboard SPEC``: publish an offline-built report."""
    from deepinsight.errors import DeepInsightError

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("spec", type=Path, help=f"the {SPEC_FILENAME} a report wrote")
    parser.add_argument("--entity", default=None, help="W&B entity (default: your default)")
    args = parser.parse_args(argv)
    try:
        print(publish(args.spec, args.entity))
    except DeepInsightError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
