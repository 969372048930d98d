"""Evaluate a trained detector (checkpoint or ONNX) on any labelled dataset DeepInsight reads.

    python -m deepinsight.evaluate ckpt=run/checkpoints/best.ckpt data.root=DIR
    deepinsight-evaluate ckpt=model.onnx data.root=[DIR_A,DIR_B] name=[a,b] output=eval

Each dataset gets OUTPUT/<name>/ in the run-directory contract (results.json with bootstrap 95%
CIs and calibration, test_predictions.csv, classification_report.txt, ROC/PR/confusion and
reliability figures); OUTPUT/cross_dataset.{csv,md} holds one row per dataset. Scores use the
model's own preprocessing and temperature, exactly as ``predict``, with its faces and videos
(``faces``, ``frames``, ``video_aggregate``; deepinsight.evaluation.media): a folder of labelled
videos gets video-level metrics and, in results.json's ``frame_level``, frame-level ones.
Unreadable files, and photos without a face, are skipped and named.
Exit codes: 0 evaluated; 2 bad arguments (nothing evaluated).

About 330 lines: one command with its per-dataset, per-generator and cross-dataset outputs
(the per-generator table itself lives in ``deepinsight.evaluation.per_generator``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
from tqdm import tqdm

from deepinsight.analysis.plots import write_test_plots
from deepinsight.cli import compose_command_config, run_command
from deepinsight.data.demo import check_data_root, is_demo_root, resolve_data_root
from deepinsight.data.layouts import Sample, discover_evaluation_split
from deepinsight.errors import EXIT_OK, DeepInsightError
from deepinsight.evaluation.media import (
    face_and_video_blocks,
    needs_face_pipeline,
    score_media,
    scoring_options,
)
from deepinsight.evaluation.per_generator import per_generator_rows, write_per_generator
from deepinsight.inference import iterate_batches, load_detector
from deepinsight.inference.detector import Detector
from deepinsight.inference.video import is_video_path
from deepinsight.metrics import summarize_predictions
from deepinsight.run_directory import uncertainty_and_calibration
from deepinsight.run_outputs import (
    markdown_table,
    write_classification_report,
    write_json,
    write_predictions,
    write_results,
)
from deepinsight.tracking.evaluation_run import EvaluationRun

CONFIG_NAME = "evaluate"
CROSS_DATASET = "cross_dataset"
TABLE_COLUMNS = (
    "name", "dataset", "split", "n", "skipped", "auroc", "auroc_ci95", "ap", "ap_ci95",
    "accuracy", "accuracy_ci95", "f1", "f1_ci95", "threshold", "ece", "brier", "data_root",
)  # fmt: skip


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return [value] if isinstance(value, (str, Path)) else list(value)


def _require_int(cfg: Mapping[str, Any], name: str, minimum: int) -> int:
    value = cfg[name]
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise DeepInsightError(f"{name} must be an integer >= {minimum}, not {value!r}")
    return value


@dataclass(frozen=True)
class Dataset:
    """One root to evaluate: its row name, layout and labelled images."""

    name: str
    layout: str
    root: Path
    split: str
    samples: list[Sample]


def resolve_datasets(cfg: Mapping[str, Any]) -> list[Dataset]:
    """Every ``data.root`` with its name and images; a problem with any is a DeepInsightError."""
    roots = [str(root) for root in _as_list(cfg["data"]["root"])]
    if not roots or roots == ["???"]:  # "???": OmegaConf's mark of a missing nested value
        raise DeepInsightError("data.root=... is required: DIR or [DIR,...], or demo")
    for root in roots:
        check_data_root(root)
    names = [str(name) for name in _as_list(cfg.get("name"))]
    if names and len(names) != len(roots):
        raise DeepInsightError(f"name has {len(names)} entries but data.root has {len(roots)}")
    layout = cfg["data"].get("layout") or "auto"
    datasets, used = [], set()
    for index, root in enumerate(roots):
        # `demo`: the embedded demo dataset (its test split by default), as in training.
        found = discover_evaluation_split(resolve_data_root(root), str(cfg["split"]), str(layout))
        ((split, samples),) = found.splits.items()
        default_name = "demo" if is_demo_root(root) else found.root.name or "dataset"
        name = names[index] if names else _unique(default_name, used)
        if name in used and names:
            raise DeepInsightError(f"name {name!r} is given twice; names must be unique")
        used.add(name)
        if not samples:
            raise DeepInsightError(f"{found.root} holds no image files to evaluate ({split})")
        datasets.append(Dataset(name, found.layout, found.root, split, samples))
    return datasets


def _unique(name: str, used: set[str]) -> str:
    candidate, suffix = name, 2
    while candidate in used:
        candidate, suffix = f"{name}_{suffix}", suffix + 1
    return candidate


def score_samples(
    detector: Detector,
    samples: Sequence[Sample],
    cfg: Mapping[str, Any],
    output: Callable[[Any], np.ndarray] | None = None,
) -> tuple[np.ndarray, dict[int, str]]:
    """P(fake) per sample (NaN where it could not be read), and the reasons of those.

    ``output``: what to compute per batch instead of ``detector.score`` (``detector.logits``).
    """
    output = output or detector.score
    scores = np.full(len(samples), np.nan, dtype=np.float64)
    errors: dict[int, str] = {}
    batches = iterate_batches(
        [s.path for s in samples],
        detector.preprocessing,
        cfg["batch_size"],
        cfg["num_workers"],
        cfg["max_pixels"],
    )
    disable = True if len(samples) <= cfg["batch_size"] else None  # a terminal only
    with tqdm(total=len(samples), unit="img", file=sys.stderr, disable=disable) as progress:
        for batch in batches:
            errors.update(batch.errors)
            if batch.images is not None:
                scores[batch.indices] = output(batch.images)
            progress.update(len(batch.indices) + len(batch.errors))
    return scores, errors


def evaluate_dataset(
    detector: Detector, dataset: Dataset, out_dir: Path, cfg: Mapping[str, Any]
) -> dict[str, Any]:
    """Score one dataset and write its evaluation directory; returns its results.json."""
    out_dir.mkdir(parents=True, exist_ok=True)
    options, media = scoring_options(cfg), None
    if needs_face_pipeline(detector, dataset.samples, options):
        media = score_media(detector, dataset.samples, options)
        scores, errors = media.scores, media.errors
    else:
        scores, errors = score_samples(detector, dataset.samples, cfg)
    skipped = [{"path": str(dataset.samples[i].path), "error": errors[i]} for i in sorted(errors)]
    for entry in skipped:
        print(f"warning: skipping {entry['path']} ({entry['error']})", file=sys.stderr)
    kept = [i for i in range(len(dataset.samples)) if i not in errors]
    if not kept:
        raise DeepInsightError(f"no image of {dataset.root} could be read")
    labels = np.array([dataset.samples[i].label for i in kept], dtype=np.int64)
    scores = scores[kept]
    paths = [dataset.samples[i].path for i in kept]
    title = f"{detector.spec.model_name} on {dataset.name}"

    summary = summarize_predictions(labels, scores, threshold=0.5)
    write_predictions(out_dir, paths, labels, scores)
    write_classification_report(out_dir, labels, scores, summary, title=title)
    if len(set(labels.tolist())) == 2:
        write_test_plots(out_dir, labels, scores, summary["confusion_matrix"], title=title)
    else:
        print(f"warning: {dataset.name} holds one class only: no curves", file=sys.stderr)
    results = {
        "status": "completed",
        "kind": "evaluation",
        "model": detector.spec.model_name,
        "data": dataset.name,
        "dataset": dataset.layout,
        "data_root": str(dataset.root),
        "split": dataset.split,
        "seed": None,
        "checkpoint": str(detector.source.resolve()),
        "runtime": detector.kind,
        "decision_threshold": {
            "value": detector.threshold,
            "rule": detector.spec.threshold_rule,
        },
        **uncertainty_and_calibration(
            out_dir,
            labels,
            scores,
            summary,
            detector.threshold,
            temperature=detector.spec.temperature,
            valid_calibration=None,
            settings=cfg,
            title=title,
        ),
        "skipped_files": skipped,
    }
    if media is not None:
        results.update(face_and_video_blocks(media, options, out_dir, cfg))
    groups = [dataset.samples[i].group for i in kept]
    if any(group is not None for group in groups):
        rows = per_generator_rows(
            [g or "" for g in groups], labels, scores, detector.threshold,
            cfg["n_bootstrap"], cfg["bootstrap_seed"],
        )  # fmt: skip
        results["per_generator"] = rows
        print(write_per_generator(out_dir, rows, f"{title} ({dataset.layout})"), end="")
    write_results(out_dir, results)
    if cfg["robustness"]:
        run_robustness_hook(detector, [dataset.samples[i] for i in kept], out_dir, cfg, title)
    return results


def run_robustness_hook(
    detector: Detector, samples: Sequence[Sample], out_dir: Path, cfg: Mapping[str, Any], name: str
) -> None:
    """``robustness=true``: the perturbation grid of ``deepinsight.evaluation``."""
    # Imported here: only robustness=true needs the perturbation and plotting stack.
    from deepinsight.evaluation.robustness_outputs import run_robustness

    run_robustness(
        detector,
        samples,
        out_dir,
        seed=cfg["robustness_seed"],
        batch_size=cfg["batch_size"],
        max_pixels=cfg["max_pixels"],
        name=name,
    )


def _ci(block: Mapping[str, Any], metric: str) -> str:
    interval = (block.get("ci95") or {}).get(metric)
    return "" if interval is None else f"[{interval[0]:.3f}, {interval[1]:.3f}]"


def table_row(dataset: Dataset, results: Mapping[str, Any]) -> dict[str, Any]:
    """One cross-dataset row: threshold-free metrics, then the stored decision threshold's."""
    test, decided = results["test"], results["test_at_decision_threshold"]
    return {
        "name": dataset.name,
        "dataset": dataset.layout,
        "split": dataset.split,
        "n": test["n"],
        "skipped": len(results["skipped_files"]),
        "auroc": test["auroc"],
        "auroc_ci95": _ci(test, "auroc"),
        "ap": test["ap"],
        "ap_ci95": _ci(test, "ap"),
        "accuracy": decided["accuracy"],
        "accuracy_ci95": _ci(decided, "accuracy"),
        "f1": decided["f1"],
        "f1_ci95": _ci(decided, "f1"),
        "threshold": decided["threshold"],
        "ece": results["calibration"]["test"]["ece_after"],
        "brier": results["calibration"]["test"]["brier_after"],
        "data_root": str(dataset.root),
    }


def _cell(value: Any) -> str:
    if value is None or value == "":
        return "—"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def write_cross_dataset_table(
    out_dir: Path, rows: Sequence[Mapping[str, Any]], source: str
) -> Path:
    """cross_dataset.csv (every column) and cross_dataset.md (value [CI] cells)."""
    import csv

    with (out_dir / f"{CROSS_DATASET}.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(TABLE_COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
    header = ["dataset", "layout", "split", "n", "skipped", "AUROC", "AP", "accuracy", "F1", "ECE",
              "Brier"]  # fmt: skip
    cells = []
    for row in rows:
        line = [row["name"], row["dataset"], row["split"], row["n"], row["skipped"]]
        line += [f"{_cell(row[m])} {row[m + '_ci95']}".strip() for m in ("auroc", "ap")]
        line += [f"{_cell(row[m])} {row[m + '_ci95']}".strip() for m in ("accuracy", "f1")]
        cells.append([*line, _cell(row["ece"]), _cell(row["brier"])])
    lines = [
        f"# Cross-dataset evaluation of {source}",
        "",
        "AUROC and AP are threshold-free; accuracy and F1 (fake class) use the model's stored "
        "decision threshold. Brackets: bootstrap 95% CI over images. ECE and Brier: after "
        "temperature scaling.",
        "",
        *markdown_table(header, cells),
    ]
    path = out_dir / f"{CROSS_DATASET}.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def evaluate(cfg: Mapping[str, Any]) -> Path:
    """Evaluate ``cfg["ckpt"]`` on every ``cfg["data"]["root"]``; returns the output folder."""
    for key, minimum in (("batch_size", 1), ("num_workers", 0), ("n_bootstrap", 1)):
        _require_int(cfg, key, minimum)
    if cfg["max_pixels"] is not None:
        _require_int(cfg, "max_pixels", 1)
    for flag in ("robustness", "wandb"):
        if not isinstance(cfg[flag], bool):
            raise DeepInsightError(f"{flag} must be true or false, not {cfg[flag]!r}")
    scoring_options(cfg)  # bad face or video options: one line before any work
    datasets = resolve_datasets(cfg)
    if cfg["robustness"] and any(is_video_path(s.path) for d in datasets for s in d.samples):
        raise DeepInsightError("robustness=true perturbs images only; this data holds videos")
    detector = load_detector(str(cfg["ckpt"]), device=str(cfg["device"]))
    output = Path(str(cfg["output"] or Path("evaluations") / Path(str(cfg["ckpt"])).stem))
    output.mkdir(parents=True, exist_ok=True)
    # Opened before the datasets, so the robustness grid logs into it too (through wandb.run).
    tracker = EvaluationRun(output, str(cfg["ckpt"]), cfg) if cfg["wandb"] else None
    rows = []
    try:
        for dataset in datasets:
            print(
                f"evaluating {detector.describe()} on {dataset.name} ({dataset.root})",
                file=sys.stderr,
            )
            results = evaluate_dataset(detector, dataset, output / dataset.name, cfg)
            rows.append(table_row(dataset, results))
            if tracker is not None:
                tracker.log_dataset(dataset.name, results, output / dataset.name)
                tracker.log_table(results.get("per_generator", []), f"{dataset.name}/per_generator")
        if tracker is not None:
            tracker.log_table(rows)
    finally:
        folder = tracker.finish() if tracker is not None else None
    if folder is not None:
        print(f"W&B run: {folder}", file=sys.stderr)
    write_json(output / "evaluate_config.json", {k: cfg[k] for k in cfg})
    table = write_cross_dataset_table(output, rows, str(detector.source))
    print(table.read_text(), end="")
    print(f"Evaluation directory: {output.resolve()}", file=sys.stderr)
    return output


def run(argv: Sequence[str]) -> int:
    """Parse ``key=value`` arguments and evaluate; returns the exit code."""
    evaluate(compose_command_config(CONFIG_NAME, argv))
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Console entry point (``deepinsight-evaluate``): exits with the exit code."""
    run_command(run, argv, __doc__ or "", CONFIG_NAME)


if __name__ == "__main__":
    main()
