"""``deepinsight-report``: the options, and the one call that writes every report file."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from deepinsight.errors import EXIT_OK, DeepInsightError, run_cli
from deepinsight.report.curves import write_curves
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

USAGE = (
    "usage: python -m deepinsight.report DIR [DIR...] "
    "[output=PATH] [wandb=true|false|auto] [group=NAME]"
)


@dataclass(frozen=True)
class ReportOptions:
    dirs: list[Path]
    output: Path
    wandb: bool | None  # None = on when the runs logged to W&B (a wandb/ folder)
    group: str | None


def parse_args(argv: Sequence[str]) -> ReportOptions | None:
    """Positional DIRs plus ``key=value`` options; ``None`` when help was asked for."""
    dirs: list[Path] = []
    options: dict[str, str] = {}
    for token in argv:
        if token in ("-h", "--help"):
            return None
        key, sep, value = token.partition("=")
        if sep and key in ("output", "wandb", "group"):
            options[key] = value
        elif sep and not Path(token).exists():
            raise DeepInsightError(f"unknown option '{key}'; options are output=, wandb=, group=")
        else:
            dirs.append(Path(token))
    if not dirs:
        raise DeepInsightError(f"no run directories given; {USAGE}")
    for path in dirs:
        if not path.is_dir():
            raise DeepInsightError(f"not a directory: {path}")
    switches = {"true": True, "false": False, "auto": None}
    wandb_option = options.get("wandb", "auto").lower()
    if wandb_option not in switches:
        raise DeepInsightError(f"wandb= takes true, false or auto, not '{wandb_option}'")
    return ReportOptions(
        dirs=dirs,
        output=Path(options.get("output") or dirs[0]),
        wandb=switches[wandb_option],
        group=options.get("group") or None,
    )


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
    figures = write_curves(runs, output)
    markdown = render_markdown(runs, variants, load_seed_reference(), figures)
    (output / "comparison.md").write_text(markdown, encoding="utf-8")
    written += [output / "comparison.md", *figures]

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
    return written


def _main(argv: Sequence[str]) -> int:
    options = parse_args(argv)
    if options is None:
        print(USAGE)
        return EXIT_OK
    for path in build_report(options):
        print(f"wrote {path}")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point (``deepinsight-report``)."""
    return run_cli(lambda: _main(sys.argv[1:] if argv is None else argv))
