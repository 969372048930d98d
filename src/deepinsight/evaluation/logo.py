"""The leave-one-generator-out table: one row per held-out generator, from a sweep's runs.

``python -m deepinsight.train -m sweep=logo`` ends with this table (printed, and written to the
sweep folder as ``logo.md`` and ``logo.csv``), and ``python -m deepinsight.evaluation.logo DIR``
rebuilds it from any finished sweep folder. Each run's results.json says which generators it
trained and was tested on (``generators``); its test AUROC and AP, with their bootstrap 95% CIs,
are its held-out generator's figures. With several seeds a row gives the mean and the spread
(max - min) over seeds, and the table says whether each configuration's lead over another is
larger than that spread.
"""

from __future__ import annotations

import csv
import json
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from deepinsight.evaluation.per_generator import MEAN_ROW
from deepinsight.run_outputs import markdown_table

CSV_COLUMNS = ("configuration", "held_out", "seeds", "n", "auroc", "auroc_ci95", "auroc_spread",
               "ap", "ap_ci95", "ap_spread")  # fmt: skip


def collect(sweep_dir: Path) -> list[dict[str, Any]]:
    """One record per completed run of the sweep that held generators out."""
    runs = []
    for path in sorted(Path(sweep_dir).rglob("results.json")):
        results = json.loads(path.read_text())
        generators = results.get("generators") or {}
        if results.get("status") != "completed" or not generators.get("test"):
            continue
        test = results["test"]
        runs.append({
            "configuration": f"{results['model']} {results['data']}",
            "held_out": "+".join(generators["test"]),
            # Tested only on generators it trained on: the in-distribution reference.
            "in_distribution": set(generators["test"]) <= set(generators.get("train") or ()),
            "seed": results.get("seed"),
            "n": test["n"],
            "auroc": test["auroc"], "auroc_ci95": (test.get("ci95") or {}).get("auroc"),
            "ap": test["ap"], "ap_ci95": (test.get("ci95") or {}).get("ap"),
            # Tested on several generators: each one's AUROC (results.json's per_generator,
            # without its mean row).
            "per_generator": {row["generator"]: row["auroc"]
                              for row in results.get("per_generator") or ()
                              if row["generator"] != MEAN_ROW},
        })  # fmt: skip
    return runs


def table_rows(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per configuration: one row per held-out generator (means over seeds), then ``mean``."""
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        if not run.get("in_distribution"):
            grouped[(run["configuration"], run["held_out"])].append(run)
    rows = []
    for configuration in sorted({key[0] for key in grouped}):
        own = [(held, grouped[(configuration, held)]) for c, held in sorted(grouped)
               if c == configuration]  # fmt: skip
        for held, seeded in own:
            rows.append(_row(configuration, held, seeded))
        # The mean over held-out generators, per seed, then over seeds: its spread is the
        # seed-to-seed spread of the protocol's headline number.
        seeds = sorted({run["seed"] for _, seeded in own for run in seeded}, key=str)
        per_seed = {
            metric: [
                np.mean([r[metric] for _, seeded in own for r in seeded if r["seed"] == seed])
                for seed in seeds
            ]
            for metric in ("auroc", "ap")
        }
        rows.append({
            "configuration": configuration, "held_out": "mean", "seeds": len(seeds),
            "n": sum(r["n"] for _, seeded in own for r in seeded[:1]),
            "auroc": float(np.mean(per_seed["auroc"])), "auroc_ci95": None,
            "auroc_spread": float(np.ptp(per_seed["auroc"])) if len(seeds) > 1 else None,
            "ap": float(np.mean(per_seed["ap"])), "ap_ci95": None,
            "ap_spread": float(np.ptp(per_seed["ap"])) if len(seeds) > 1 else None,
        })  # fmt: skip
    return rows


def _row(configuration: str, held: str, seeded: list[dict[str, Any]]) -> dict[str, Any]:
    row: dict[str, Any] = {"configuration": configuration, "held_out": held,
                           "seeds": len(seeded), "n": seeded[0]["n"]}  # fmt: skip
    for metric in ("auroc", "ap"):
        values = [r[metric] for r in seeded]
        row[metric] = float(np.mean(values))
        # One seed: its bootstrap CI. Several: the seeds' range is the honest spread.
        row[f"{metric}_ci95"] = seeded[0][f"{metric}_ci95"] if len(seeded) == 1 else None
        row[f"{metric}_spread"] = float(np.ptp(values)) if len(seeded) > 1 else None
    return row


def _cell(row: dict[str, Any], metric: str) -> str:
    text = f"{row[metric]:.4f}"
    if row[f"{metric}_ci95"]:
        low, high = row[f"{metric}_ci95"]
        text += f" [{low:.3f}, {high:.3f}]"
    if row[f"{metric}_spread"] is not None:
        text += f" ±{row[f'{metric}_spread'] / 2:.3f}"
    return text


def leads(rows: Sequence[dict[str, Any]]) -> list[str]:
    """For each pair of configurations of the same model (inputs and augmentations compared):
    is the gap in mean held-out AUROC larger than the seed-to-seed spread of both? (A spread not
    known, one seed: say so.)"""
    means = [r for r in rows if r["held_out"] == "mean"]
    lines = []
    for i, a in enumerate(means):
        for b in means[i + 1 :]:
            if a["configuration"].split()[0] != b["configuration"].split()[0]:
                continue
            best, other = (a, b) if a["auroc"] >= b["auroc"] else (b, a)
            gap = best["auroc"] - other["auroc"]
            spreads = [r["auroc_spread"] for r in (a, b) if r["auroc_spread"] is not None]
            if len(spreads) < 2:
                verdict = "seed spread unknown (one seed)"
            elif gap > max(spreads):
                verdict = f"larger than the seed spread ({max(spreads):.4f})"
            else:
                verdict = f"within the seed spread ({max(spreads):.4f})"
            lines.append(
                f"- {best['configuration']} leads {other['configuration']} by {gap:.4f} mean "
                f"held-out AUROC: {verdict}"
            )
    return lines


def in_distribution_lines(runs: Sequence[dict[str, Any]]) -> list[str]:
    """The runs tested on the generators they trained on, as a short table (or nothing), with
    each generator's AUROC where the run has its per-generator table."""
    own = [r for r in runs if r.get("in_distribution")]
    if not own:
        return []
    generators = sorted({g for r in own for g in r["per_generator"]})
    cells = [
        [r["configuration"], r["held_out"], r["seed"], r["n"],
         _cell({**r, "auroc_spread": None}, "auroc"),
         *(f"{r['per_generator'][g]:.4f}" if g in r["per_generator"] else ""
           for g in generators)]
        for r in own
    ]  # fmt: skip
    header = ["configuration", "tested on", "seed", "n", "AUROC", *generators]
    return [
        "",
        "In distribution (tested on the generators it trained on; per generator: AUROC on its "
        "images):",
        "",
        *markdown_table(header, cells),
    ]


def write_table(
    sweep_dir: Path, rows: Sequence[dict[str, Any]], runs: Sequence[dict[str, Any]] = ()
) -> str:
    """logo.csv and logo.md in ``sweep_dir``; returns the markdown."""
    with (sweep_dir / "logo.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(CSV_COLUMNS), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    cells = [[r["configuration"], r["held_out"], r["seeds"], r["n"], _cell(r, "auroc"),
              _cell(r, "ap")] for r in rows]  # fmt: skip
    lines = [
        "# Leave-one-generator-out",
        "",
        "Each row: trained on the other generators' images (their fakes, and the reals whose "
        "stand-in noise copies them), tested on the held-out generator's. One seed: bootstrap "
        "95% CI in brackets; several: the mean over seeds, ± half their range. `mean`: over "
        "held-out generators; a lead is compared with the seeds' full range.",
        "",
        *markdown_table(["configuration", "held out", "seeds", "n", "AUROC", "AP"], cells),
        "",
        *leads(rows),
        *in_distribution_lines(runs),
    ]
    text = "\n".join(lines).rstrip() + "\n"
    (sweep_dir / "logo.md").write_text(text, encoding="utf-8")
    return text


def report(sweep_dir: Path) -> str | None:
    """Collect, tabulate and write; None when the folder holds no fold's run."""
    runs = collect(sweep_dir)
    if not runs:
        return None
    return write_table(Path(sweep_dir), table_rows(runs), runs)


try:  # the sweep's end hook; hydra is always installed with deepinsight
    from hydra.experimental.callback import Callback
except ImportError:  # pragma: no cover
    Callback = object  # type: ignore[assignment,misc]


class LogoTable(Callback):  # type: ignore[misc]
    """Hydra callback (conf/sweep/logo.yaml): the table once every job has finished."""

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        text = report(Path(str(config.hydra.sweep.dir)))
        if text is None:
            print("no completed leave-one-generator-out run to tabulate", file=sys.stderr)
            return
        print(text, end="")


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m deepinsight.evaluation.logo SWEEP_DIR", file=sys.stderr)
        raise SystemExit(2)
    text = report(Path(args[0]))
    if text is None:
        print(f"error: no completed leave-one-generator-out run under {args[0]}", file=sys.stderr)
        raise SystemExit(2)
    print(text, end="")


if __name__ == "__main__":
    main()
