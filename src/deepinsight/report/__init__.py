"""Compare finished runs the way the seed study's "Model Comparison" slide did.

    python -m deepinsight.report DIR [DIR...] [output=PATH] [wandb=true|false|auto] [group=NAME]

Each DIR is a multirun directory (searched recursively for ``results.json``) or a run directory.
Writes ``comparison.csv``, ``comparison_by_variant.csv``, ``comparison.md``, ``roc_curves.png``
and ``pr_curves.png`` into ``output`` (default: the first DIR), and, when W&B is on, logs the
same tables and figures to a W&B summary run. Runs holding ``robustness.csv`` add
``robustness_overlay_<kind>.png`` (their AUROC curves), and ``wandb_report.json`` specifies the
W&B Report of the comparison (``wandb_dashboard``: saved online, publishable later offline).
Reads only the run-directory contract (docs/contracts.md): ``results.json``,
``test_predictions.csv`` and ``config.yaml``.

The modules, in the order the data flows: ``runs`` (collect one row per run directory),
``tables`` (CSV rows, mean ± std per variant, the seed's numbers), ``markdown`` (comparison.md),
``curves`` (the figures), ``wandb_summary`` (the W&B copy) and ``cli`` (options, ``main``).
"""

from deepinsight.report.cli import ReportOptions, build_report, main
from deepinsight.report.runs import METRICS, RunResult, collect_runs, load_run
from deepinsight.report.tables import CSV_COLUMNS, VARIANT_COLUMNS, load_seed_reference

__all__ = [
    "CSV_COLUMNS",
    "METRICS",
    "VARIANT_COLUMNS",
    "ReportOptions",
    "RunResult",
    "build_report",
    "collect_runs",
    "load_run",
    "load_seed_reference",
    "main",
]
