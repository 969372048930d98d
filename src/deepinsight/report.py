"""Compare finished runs the way the seed study's "Model Comparison" slide did.

Usage::

    python -m deepinsight.report DIR [DIR...] [output=PATH] [wandb=true|false|auto] [group=NAME]

Each DIR is a multirun directory (searched recursively for ``results.json``) or a run directory.
Writes ``comparison.csv``, ``comparison_by_variant.csv``, ``comparison.md``, ``roc_curves.png``
and ``pr_curves.png`` into ``output`` (default: the first DIR), and, when W&B is on, logs the
same table and figures to a W&B summary run. Reads only the run-directory contract
(docs/contracts.md): ``results.json``, ``test_predictions.csv`` and ``config.yaml``.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from deepinsight.analysis.plots import save_pr_curves, save_roc_curves
from deepinsight.errors import EXIT_OK, DeepInsightError, run_cli
from deepinsight.run_outputs import read_predictions

USAGE = (
    "usage: python -m deepinsight.report DIR [DIR...] "
    "[output=PATH] [wandb=true|false|auto] [group=NAME]"
)

METRICS = ("accuracy", "precision", "recall", "f1", "auroc", "ap")
# The seed's comparison table reports macro averages for precision, recall and F1.
RESULTS_KEY = {
    "accuracy": "accuracy",
    "precision": "macro_precision",
    "recall": "macro_recall",
    "f1": "macro_f1",
    "auroc": "auroc",
    "ap": "ap",
}
CSV_COLUMNS = ("run", "model", "data", "seed", *METRICS, "status")
VARIANT_COLUMNS = (
    "model",
    "data",
    "n_runs",
    "seeds",
    *(f"{m}_{s}" for m in METRICS for s in ("mean", "std")),
)
COMPLETED = "completed"
# Where a run's resolved config.yaml names its model, data variant and seed.
CONFIG_IDENTITY = ("model.net.name", "data.variant", "seed")


@dataclass(frozen=True)
class RunResult:
    """One run's row: where it lives, what it was, and its test metrics if it completed."""

    run: str
    run_dir: Path
    model: str | None
    data: str | None
    seed: int | None
    status: str
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None

    @property
    def completed(self) -> bool:
        return self.status == COMPLETED


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


def _contract_files(dirs: Sequence[Path], name: str) -> set[Path]:
    """Every ``name`` under ``dirs`` once, skipping W&B's and Hydra's own copies of files."""
    return {
        path.resolve()
        for directory in dirs
        for path in directory.rglob(name)
        if not {"wandb", ".hydra"} & set(path.relative_to(directory).parts)
    }


def find_results(dirs: Sequence[Path]) -> list[Path]:
    """Every run's results.json under ``dirs``; one clear error when there is none."""
    found = _contract_files(dirs, "results.json")
    if not found:
        listed = " ".join(str(d) for d in dirs)
        raise DeepInsightError(f"no results.json found under {listed}; is it a run directory?")
    return sorted(found)


def find_unfinished(dirs: Sequence[Path]) -> list[Path]:
    """Run directories (config.yaml written at start) without results.json: killed jobs."""
    started = {path.parent for path in _contract_files(dirs, "config.yaml")}
    finished = {path.parent for path in _contract_files(dirs, "results.json")}
    return sorted(started - finished)


def read_config(run_dir: Path):
    """The run's resolved config.yaml, or None when it is missing or unreadable."""
    from omegaconf import OmegaConf

    try:
        return OmegaConf.load(run_dir / "config.yaml")
    except (OSError, ValueError, yaml.YAMLError):
        return None


def _run_name(run_dir: Path, base: Path) -> str:
    relative = os.path.relpath(run_dir, base)
    return run_dir.name if relative == "." else Path(relative).as_posix()


def load_run(results_path: Path, base: Path) -> RunResult:
    """Read one results.json; a file that breaks the contract becomes an ``invalid`` row."""
    run_dir = results_path.parent
    name = _run_name(run_dir, base)
    try:
        results = json.loads(results_path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        return RunResult(name, run_dir, None, None, None, "invalid", error=f"unreadable: {err}")
    if not isinstance(results, dict):
        return RunResult(name, run_dir, None, None, None, "invalid", error="not a JSON object")
    identity = (results.get("model"), results.get("data"), results.get("seed"))
    status = str(results.get("status", "unknown"))
    if status != COMPLETED:
        return RunResult(name, run_dir, *identity, status, error=results.get("error"))
    test = results.get("test") or {}
    missing = [key for key in RESULTS_KEY.values() if not isinstance(test.get(key), (int, float))]
    if missing:
        error = f"results.json lacks test.{', test.'.join(missing)}"
        return RunResult(name, run_dir, *identity, "invalid", error=error)
    metrics = {metric: test[key] for metric, key in RESULTS_KEY.items()}
    return RunResult(name, run_dir, *identity, COMPLETED, metrics=metrics)


def unfinished_run(run_dir: Path, base: Path) -> RunResult:
    """A row for a job that started (it wrote config.yaml) but never wrote results.json."""
    from omegaconf import OmegaConf

    config = read_config(run_dir)
    model, data, seed = (
        (None, None, None)
        if config is None
        else (OmegaConf.select(config, key, default=None) for key in CONFIG_IDENTITY)
    )
    error = "no results.json: the job was killed or is still running"
    return RunResult(
        _run_name(run_dir, base), run_dir, model, data, seed, "unfinished", error=error
    )


def _by_auroc(run: RunResult) -> tuple[float, str]:
    # Highest AUROC first; an undefined AUROC (one-class test set) sorts last.
    auroc = run.metrics.get("auroc")
    return (-auroc if auroc is not None else float("inf"), run.run)


def collect_runs(dirs: Sequence[Path]) -> list[RunResult]:
    """All runs under ``dirs``: completed ones by AUROC (best first), then the rest by name."""
    resolved = [d.resolve() for d in dirs]
    # Names are relative to the folder holding every DIR: the DIR itself when there is one.
    base = Path(os.path.commonpath(resolved))
    runs = [load_run(path, base) for path in find_results(resolved)]
    runs += [unfinished_run(run_dir, base) for run_dir in find_unfinished(resolved)]
    completed = sorted((r for r in runs if r.completed), key=_by_auroc)
    others = sorted((r for r in runs if not r.completed), key=lambda r: r.run)
    return completed + others


def summarise_variants(runs: Sequence[RunResult]) -> list[dict[str, Any]]:
    """Mean and sample std (ddof=1; None for a single run) per (model, data), best AUROC first."""
    groups: dict[tuple, list[RunResult]] = defaultdict(list)
    for run in runs:
        if run.completed:
            groups[(run.model, run.data)].append(run)
    rows = []
    for (model, data), members in groups.items():
        members = sorted(members, key=lambda r: (r.seed is None, r.seed or 0))
        row: dict[str, Any] = {
            "model": model,
            "data": data,
            "n_runs": len(members),
            "seeds": " ".join(str(r.seed) for r in members),
        }
        for metric in METRICS:
            values = np.array([r.metrics[metric] for r in members], dtype=float)
            row[f"{metric}_mean"] = float(values.mean())
            row[f"{metric}_std"] = float(values.std(ddof=1)) if len(values) > 1 else None
        rows.append(row)
    return sorted(rows, key=lambda row: -row["auroc_mean"])


def load_seed_reference() -> list[dict[str, str]]:
    """The seed study's published test numbers, shipped as package data."""
    source = resources.files("deepinsight.reference").joinpath("seed_results.csv")
    with source.open("r", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _write_csv(path: Path, columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> Path:
    # csv writes floats with repr, so every number reads back exactly as results.json holds it.
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def run_rows(runs: Sequence[RunResult]) -> list[dict[str, Any]]:
    """The comparison table as dicts keyed by CSV_COLUMNS (metrics blank for unfinished runs)."""
    return [
        {
            "run": r.run,
            "model": r.model,
            "data": r.data,
            "seed": r.seed,
            **r.metrics,
            "status": r.status,
        }
        for r in runs
    ]


def _fmt(value: Any) -> str:
    if value is None or value == "":
        return "—"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _mean_std(row: dict[str, Any], metric: str) -> str:
    mean, std = row[f"{metric}_mean"], row[f"{metric}_std"]
    return _fmt(mean) if std is None else f"{mean:.4f} ± {std:.4f}"


def _reference_value(text: str) -> str:
    # Keep the seed's own precision (its reports print 2 decimals), cut long ones to 4.
    decimals = text.partition(".")[2]
    return text if len(decimals) <= 4 else f"{float(text):.4f}"


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


def runs_markdown(runs: Sequence[RunResult]) -> list[str]:
    """The per-run table, the one printed to the console too."""
    header = ["run", "model", "data", "seed", *METRICS, "status"]
    rows = [
        [
            r.run,
            _fmt(r.model),
            _fmt(r.data),
            _fmt(r.seed),
            *(_fmt(r.metrics.get(m)) for m in METRICS),
            r.status,
        ]
        for r in runs
    ]
    return _md_table(header, rows)


def render_markdown(
    runs: Sequence[RunResult],
    variants: Sequence[dict[str, Any]],
    reference: Sequence[dict[str, str]],
    figures: Sequence[Path],
) -> str:
    """comparison.md: runs, variants (mean ± std), the seed's numbers alongside, and failures."""
    lines = [
        "# Model comparison (test split)",
        "",
        "Precision, recall and F1 are macro averages over real and fake, as in the seed "
        "study's table; AUROC and AP treat fake as the positive class.",
        "",
        "## Runs, best AUROC first",
        "",
        *runs_markdown(runs),
        "",
    ]

    lines += ["## Variants: mean ± std over seeds", ""]
    lines += _md_table(
        ["model", "data", "runs", "seeds", *METRICS],
        [
            [v["model"], v["data"], v["n_runs"], v["seeds"], *(_mean_std(v, m) for m in METRICS)]
            for v in variants
        ],
    )

    ours = {(v["model"], v["data"]): v for v in variants}
    side_by_side = []
    for ref in reference:
        side_by_side.append(
            [
                ref["variant"],
                f"seed study (n={ref['test_n']})",
                *(_reference_value(ref[RESULTS_KEY[m]]) for m in METRICS),
            ]
        )
        match = ours.get((ref["model"], ref["data"]))
        if match is None:
            side_by_side.append([ref["variant"], "this report: not run", *("—" for _ in METRICS)])
        else:
            side_by_side.append(
                [
                    ref["variant"],
                    f"this report ({match['n_runs']} run{'s' if match['n_runs'] > 1 else ''})",
                    *(_mean_std(match, m) for m in METRICS),
                ]
            )
    sources = sorted({ref["source"] for ref in reference})
    lines += ["", "## Against the seed study's published numbers", ""]
    lines += _md_table(["variant", "source", *METRICS], side_by_side)
    lines += ["", *(f"Seed numbers: {s}." for s in sources)]

    unfinished = [r for r in runs if not r.completed]
    if unfinished:
        lines += ["", "## Runs that did not complete", ""]
        lines += [
            f"- `{r.run}` ({r.model}/{r.data}, seed {r.seed}): **{r.status}**"
            + (f": {str(r.error).splitlines()[0][:300]}" if r.error else "")
            for r in unfinished
        ]
    if figures:
        lines += ["", "## Curves", "", *(f"![{p.stem}]({p.name})" for p in figures)]
    return "\n".join(lines) + "\n"


def write_curves(runs: Sequence[RunResult], output: Path) -> list[Path]:
    """roc_curves.png and pr_curves.png with every completed run that has test predictions."""
    curves = []
    for run in runs:
        if not run.completed:
            continue
        try:
            _, labels, scores = read_predictions(run.run_dir)
        except DeepInsightError as err:
            print(f"warning: no curve for {run.run}: {err}", file=sys.stderr)
            continue
        curves.append((f"{run.run}: {run.model}/{run.data}", labels, scores))
    if not curves:
        return []
    roc, pr = output / "roc_curves.png", output / "pr_curves.png"
    save_roc_curves(curves, roc, title="ROC curves (test)")
    save_pr_curves(curves, pr, title="Precision-recall curves (test)")
    return [roc, pr]


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


def build_report(options: ReportOptions) -> list[Path]:
    """Write every report file for ``options``; returns the paths written."""
    runs = collect_runs(options.dirs)
    output = options.output
    output.mkdir(parents=True, exist_ok=True)
    variants = summarise_variants(runs)
    written = [
        _write_csv(output / "comparison.csv", CSV_COLUMNS, run_rows(runs)),
        _write_csv(output / "comparison_by_variant.csv", VARIANT_COLUMNS, variants),
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

        from deepinsight.report_wandb import log_to_wandb

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


if __name__ == "__main__":
    raise SystemExit(main())
