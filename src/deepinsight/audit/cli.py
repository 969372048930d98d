"""Audit a dataset for shortcuts a detector could learn instead of the face.

    python -m deepinsight.audit data.root=DIR [split=all] [output=DIR]

Reads every file's non-content features (``deepinsight.audit.features``), tests each group of
them with a cross-validated classifier (``deepinsight.audit.shortcuts``), prints one verdict
line per group and writes ``audit.json`` and ``audit.md``. Exit codes: 0 audited (whatever the
verdict); 2 bad arguments or no readable image.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import pandas as pd

from deepinsight.audit.features import file_features
from deepinsight.audit.shortcuts import audit_table, verdict_lines
from deepinsight.cli import compose_command_config, run_command
from deepinsight.data.demo import is_demo_root, resolve_data_root
from deepinsight.data.layouts import SPLITS, Sample, discover_evaluation_split, discover_splits
from deepinsight.errors import EXIT_OK, DeepInsightError, first_line
from deepinsight.run_outputs import write_json

CONFIG_NAME = "audit"
SPLIT_CHOICES = ("all", *SPLITS)


def audit_samples(
    samples: Sequence[Sample],
    num_workers: int = 0,
    flag_above: float = 0.6,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """The audit of labelled ``samples``: counts, skipped files, per-group results, verdict."""
    paths = [str(s.path) for s in samples]
    if num_workers > 0 and len(paths) > 256:
        with ProcessPoolExecutor(num_workers) as pool:
            rows = list(pool.map(_safe_features, paths, chunksize=256))
    else:
        rows = [_safe_features(p) for p in paths]
    kept = [i for i, row in enumerate(rows) if "error" not in row]
    skipped = [{"path": p, "error": row["error"]} for p, row in zip(paths, rows) if "error" in row]
    if not kept:
        raise DeepInsightError("no image could be read; nothing to audit")
    table = pd.DataFrame([rows[i] for i in kept])
    labels = np.array([samples[i].label for i in kept], dtype=np.int64)
    groups = audit_table(table, labels, flag_above, n_bootstrap, seed)
    twins = cross_class_duplicates(table["sha1"].tolist(), labels, [paths[i] for i in kept])
    verdict = verdict_lines(groups, flag_above)
    if twins["files"]:
        verdict.append(
            f"DUPLICATES: {twins['files']} files are byte-identical to a file of the other "
            f"class (e.g. {twins['example'][0]} and {twins['example'][1]}): the same image "
            "under both labels; a classifier's cross-validated AUROC then falls below 0.5"
        )
    return {
        "n": len(kept),
        "n_real": int((labels == 0).sum()),
        "n_fake": int((labels == 1).sum()),
        "flag_above": flag_above,
        "groups": groups,
        "verdict": verdict,
        "shortcut_found": any(g["flagged"] for g in groups.values()),
        "cross_class_duplicates": twins,
        "skipped_files": skipped,
    }


def cross_class_duplicates(
    digests: Sequence[str], labels: np.ndarray, paths: Sequence[str]
) -> dict[str, Any]:
    """How many files have a byte-identical copy labelled the other way, and one such pair."""
    first: dict[tuple[str, int], str] = {}
    for digest, label, path in zip(digests, labels.tolist(), paths):
        first.setdefault((digest, label), path)
    files, example = 0, None
    for digest, label, path in zip(digests, labels.tolist(), paths):
        other = first.get((digest, 1 - label))
        if other is not None:
            files += 1
            example = example or [other, path]
    return {"files": files, "example": example}


def _safe_features(path: str) -> dict[str, Any]:
    try:
        return file_features(path)
    except Exception as err:  # any unreadable file is skipped and named, as in training
        return {"error": first_line(err, limit=200)}


def audit_markdown(report: Mapping[str, Any], title: str) -> str:
    lines = [
        f"# Shortcut audit: {title}",
        "",
        f"{report['n']} images ({report['n_real']} real, {report['n_fake']} fake); "
        f"{len(report['skipped_files'])} unreadable skipped. Per group: cross-validated AUROC of "
        f"a classifier on those features alone, bootstrap 95% CI; above {report['flag_above']} "
        "is a shortcut.",
        "",
        "| group | AUROC | 95% CI | shortcut | strongest feature |",
        "|---|---|---|---|---|",
    ]
    for group, found in report["groups"].items():
        if found["auroc"] is None:
            lines.append(f"| {group} | — | — | not tested | {found['note']} |")
            continue
        ci = found["ci95"]
        span = f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "—"
        leak = found["strongest_feature"]["describe"]
        flag = "**yes**" if found["flagged"] else "no"
        lines.append(f"| {group} | {found['auroc']:.3f} | {span} | {flag} | {leak} |")
    twins = report["cross_class_duplicates"]
    if twins["files"]:
        lines += ["", f"**{twins['files']} files are byte-identical to a file of the other class**"
                  f" (e.g. `{twins['example'][0]}` and `{twins['example'][1]}`)."]  # fmt: skip
    return "\n".join(lines) + "\n"


def audit_split(cfg: Mapping[str, Any]) -> list[Sample]:
    """The labelled samples of ``split`` (all: every split) of ``data.root``."""
    if cfg["data"]["root"] == "???":
        raise DeepInsightError("data.root=... is required: a dataset folder, or demo")
    root = resolve_data_root(cfg["data"]["root"])  # `demo`: the embedded demo dataset
    layout, split = str(cfg["data"].get("layout") or "auto"), str(cfg["split"])
    if split not in SPLIT_CHOICES:
        raise DeepInsightError(f"split must be one of {SPLIT_CHOICES}, not {split!r}")
    if split == "all":
        try:
            found = discover_splits(str(root), layout)
            return [s for part in found.splits.values() for s in part]
        except DeepInsightError:
            split = "test"  # a tree without training splits: all of its images
    ((_, samples),) = discover_evaluation_split(str(root), split, layout).splits.items()
    return samples


def run(argv: Sequence[str]) -> int:
    cfg = compose_command_config(CONFIG_NAME, argv)
    samples = audit_split(cfg)
    if not samples:
        raise DeepInsightError(f"{cfg['data']['root']} holds no image files to audit")
    report = audit_samples(
        samples, int(cfg["num_workers"]), float(cfg["flag_above"]),
        int(cfg["n_bootstrap"]), int(cfg["seed"]),
    )  # fmt: skip
    root = Path(resolve_data_root(cfg["data"]["root"])).expanduser().resolve()
    label = "demo" if is_demo_root(cfg["data"]["root"]) else root.name or "dataset"
    output = Path(str(cfg["output"] or Path("audits") / label))
    write_audit(output, report, f"{root} ({cfg['split']})")
    print("\n".join(report["verdict"]))
    print(f"Audit: {output.resolve() / 'audit.md'}", file=sys.stderr)
    return EXIT_OK


def write_audit(output: Path, report: Mapping[str, Any], title: str) -> None:
    output.mkdir(parents=True, exist_ok=True)
    write_json(output / "audit.json", dict(report))
    (output / "audit.md").write_text(audit_markdown(report, title), encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Console entry point (``deepinsight-audit``)."""
    run_command(run, argv, __doc__ or "", CONFIG_NAME)
