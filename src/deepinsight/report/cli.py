"""``deepinsight-report``: the options, and the one call that writes every report file."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from deepinsight.cli import compose_command_config, known_options, run_command
from deepinsight.errors import EXIT_OK, DeepInsightError
from deepinsight.report.curves import write_curves, write_robustness_overlays
from deepinsight.report.markdown import render_markdown, runs_markdown
from deepinsight.report.runs import collect_runs
from deepinsight.report.tables import (
    CSV_COLUMNS,
    VARIANT_COLUMNS,
    load_seed_reference,
    run_rows,
    summarise_variants,
    write_csv,
)

CONFIG_NAME = "report"
USAGE = """usage: python -m deepinsight.report DIR [DIR ...] [key=value ...]

Compares finished runs: each DIR is a multirun or run directory, searched for results.json.
Example: python -m deepinsight.report outputs/multiruns/<time> output=reports/seed wandb=false
"""
WANDB_SWITCHES = {"true": True, "false": False, "auto": None}


@dataclass(frozen=True)
class ReportOptions:
    """The validated options of one report (documented in conf/report.yaml)."""

    dirs: list[Path]
    output: Path
    wandb: bool | None  # None = on when the runs logged to W&B (a wandb/ folder)
    group: str | None

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> ReportOptions:
        """Check every option; a bad one is a DeepInsightError naming it."""
        dirs = [Path(str(d)) for d in _as_list(cfg["dirs"])]
        if not dirs:
            raise DeepInsightError(f"no run directories given; {USAGE.splitlines()[0]}")
        for path in dirs:
            if not path.is_dir():
                raise DeepInsightError(f"not a directory: {path}")
        switch = str(cfg["wandb"]).lower()
        if switch not in WANDB_SWITCHES:
            raise DeepInsightError(f"wandb= takes true, false or auto, not '{cfg['wandb']}'")
        return cls(
            dirs=dirs,
            output=Path(str(cfg["output"] or dirs[0])),
            wandb=WANDB_SWITCHES[switch],
            group=str(cfg["group"]) if cfg["group"] else None,
        )


def _as_list(value: Any) -> list[Any]:
    # dirs=runs (one path, no brackets) is as natural to type as a list.
    return [value] if isinstance(value, str) else list(value or ())


def split_arguments(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """(directories, overrides): a plain argument names a directory, ``key=value`` an option.

    An argument with ``=`` that is not an option but an existing path is a directory too.
    """
    options = known_options(CONFIG_NAME)
    dirs: list[str] = []
    overrides: list[str] = []
    for token in argv:
        key = token.partition("=")[0].lstrip("+~")
        if "=" in token and (key in options or not Path(token).exists()):
            overrides.append(token)
        else:
            dirs.append(token)
    return dirs, overrides


def parse_args(argv: Sequence[str]) -> ReportOptions:
    """Positional DIRs plus Hydra overrides of conf/report.yaml."""
    dirs, overrides = split_arguments(argv)
    cfg = compose_command_config(CONFIG_NAME, overrides)
    cfg["dirs"] = [*dirs, *_as_list(cfg["dirs"])]
    return ReportOptions.from_config(cfg)


def build_report(options: ReportOptions) -> list[Path]:
    """Write every report file for ``options``; returns the paths written."""
    runs = collect_runs(options.dirs)
    output = options.output
    output.mkdir(parents=True, exist_ok=True)
    variants = summarise_variants(runs)
    written = [
        write_csv(output / "comparison.csv", CSV_COLUMNS, run_rows(runs)),
        write_csv(output / "comparison_by_variant.csv", VARIANT_COLUMNS, variants),
    ]
    figures = write_curves(runs, output) + write_robustness_overlays(runs, output)
    markdown = render_markdown(runs, variants, load_seed_reference(), figures)
    (output / "comparison.md").write_text(markdown, encoding="utf-8")
    written += [output / "comparison.md", *figures]
    dashboard = _write_dashboard_spec(runs, figures, output, options.group)
    written.append(dashboard)

    print("\n".join(runs_markdown(runs)))
    use_wandb = options.wandb
    if use_wandb is None:
        use_wandb = any((r.run_dir / "wandb").is_dir() for r in runs)
    if use_wandb:
        from wandb.errors import Error as WandbError

        from deepinsight.report.wandb_summary import log_to_wandb, wandb_group_and_project

        config_group, project = wandb_group_and_project(runs)
        tables = {
            "comparison": (CSV_COLUMNS, run_rows(runs)),
            "comparison_by_variant": (VARIANT_COLUMNS, variants),
        }
        try:
            folder = log_to_wandb(
                tables,
                figures,
                output,
                options.group or config_group,
                project,
                [r.run for r in runs],
            )
        except (WandbError, OSError) as err:
            # The files above are the report; a W&B hiccup must not lose them.
            print(f"warning: W&B summary run not logged: {err}", file=sys.stderr)
        else:
            if folder is not None:
                written.append(folder)
    _publish_dashboard(dashboard, enabled=use_wandb)
    return written


def _write_dashboard_spec(runs, figures, output: Path, group: str | None) -> Path:
    """wandb_report.json: the W&B Report of these runs, as a spec publishable later."""
    from deepinsight.report.wandb_dashboard import dashboard_spec, write_dashboard_spec
    from deepinsight.report.wandb_summary import wandb_group_and_project

    config_group, project = wandb_group_and_project(runs)
    spec = dashboard_spec(runs, figures, project, group or config_group)
    return write_dashboard_spec(spec, output)


def _publish_dashboard(spec: Path, enabled: bool) -> None:
    """Online: save the W&B Report and print its URL. Offline: say how to publish it later."""
    from deepinsight.config import wandb_mode
    from deepinsight.report.wandb_dashboard import PUBLISH_COMMAND, publish

    if not enabled or wandb_mode() != "online":
        print(f"W&B report spec: {spec}; publish it with: {PUBLISH_COMMAND.format(path=spec)}")
        return
    try:
        print(f"W&B report: {publish(spec)}")
    except Exception as err:  # noqa: BLE001 - any W&B failure: the spec on disk stays the report
        print(
            f"warning: W&B report not saved ({err}); retry: {PUBLISH_COMMAND.format(path=spec)}",
            file=sys.stderr,
        )


def run(argv: Sequence[str]) -> int:
    """Parse the arguments and write the report; returns the exit code."""
    for path in build_report(parse_args(argv)):
        print(f"wrote {path}")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Console entry point (``deepinsight-report``): exits with the exit code."""
    run_command(run, argv, USAGE, CONFIG_NAME)
