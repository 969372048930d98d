"""comparison.md: the runs, the variants (mean ± std), the seed's numbers, and failures."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from deepinsight.report.runs import METRICS, RESULTS_KEY, RunResult
from deepinsight.report.tables import lead_over_spread
from deepinsight.run_outputs import markdown_table


def _fmt(value: Any) -> str:
    if value is None or value == "":
        return "—"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _with_ci(run: RunResult, metric: str) -> str:
    """``0.9714 [0.957, 0.984]``: the value and its bootstrap 95% CI, when the run has one."""
    interval = run.ci.get(metric)
    value = _fmt(run.metrics.get(metric))
    return value if interval is None else f"{value} [{interval[0]:.3f}, {interval[1]:.3f}]"


def _mean_std(row: dict[str, Any], metric: str) -> str:
    mean, std = row[f"{metric}_mean"], row[f"{metric}_std"]
    return _fmt(mean) if std is None else f"{mean:.4f} ± {std:.4f}"


def _reference_value(text: str) -> str:
    # Keep the seed's own precision (its reports print 2 decimals), cut long ones to 4.
    decimals = text.partition(".")[2]
    return text if len(decimals) <= 4 else f"{float(text):.4f}"


def runs_markdown(runs: Sequence[RunResult]) -> list[str]:
    """The per-run table, the one printed to the console too."""
    header = ["run", "model", "data", "seed", *METRICS, "status"]
    rows = [
        [
            r.run,
            _fmt(r.model),
            _fmt(r.data),
            _fmt(r.seed),
            *(_with_ci(r, m) for m in METRICS),
            r.status,
        ]
        for r in runs
    ]
    return markdown_table(header, rows)


def _against_reference(
    variants: Sequence[dict[str, Any]], reference: Sequence[dict[str, str]]
) -> list[list[str]]:
    """Per seed variant: the seed's published row, then this report's (or "not run")."""
    ours = {(v["model"], v["data"]): v for v in variants}
    rows = []
    for ref in reference:
        rows.append(
            [
                ref["variant"],
                f"seed study (n={ref['test_n']})",
                *(_reference_value(ref[RESULTS_KEY[m]]) for m in METRICS),
            ]
        )
        match = ours.get((ref["model"], ref["data"]))
        if match is None:
            rows.append([ref["variant"], "this report: not run", *("—" for _ in METRICS)])
        else:
            rows.append(
                [
                    ref["variant"],
                    f"this report ({match['n_runs']} run{'s' if match['n_runs'] > 1 else ''})",
                    *(_mean_std(match, m) for m in METRICS),
                ]
            )
    return rows


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
        "study's table; AUROC and AP treat fake as the positive class. Brackets: bootstrap "
        "95% CI over test images (accuracy, macro F1, AUROC, AP; see docs/contracts.md).",
        "",
        "## Runs, best AUROC first",
        "",
        *runs_markdown(runs),
        "",
    ]

    lines += ["## Variants: mean ± std over seeds", ""]
    lines += markdown_table(
        ["model", "data", "runs", "seeds", *METRICS],
        [
            [v["model"], v["data"], v["n_runs"], v["seeds"], *(_mean_std(v, m) for m in METRICS)]
            for v in variants
        ],
    )
    verdict = lead_over_spread(variants)
    if verdict:
        lines += ["", verdict]

    sources = sorted({ref["source"] for ref in reference})
    lines += ["", "## Against the seed study's published numbers", ""]
    against = _against_reference(variants, reference)
    lines += markdown_table(["variant", "source", *METRICS], against)
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
