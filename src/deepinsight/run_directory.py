"""One owner for what a run leaves in its directory once ``trainer.test`` has run.

``train.py`` calls :func:`write_test_outputs` and nothing else after testing: it writes
``test_predictions.csv``, ``classification_report.txt``, the figures and ``results.json``
(the contract in docs/contracts.md), sends the test artifacts to the tracker, and prints the
console summary. :func:`write_failure` is its twin for a job that did not finish.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from deepinsight.analysis.reliability import RELIABILITY_FILENAME, save_reliability_diagram
from deepinsight.analysis.run_analysis import analyse_run
from deepinsight.calibration import calibration_block, unscaled_scores
from deepinsight.evaluation.per_generator import per_generator_rows, write_per_generator
from deepinsight.metrics import THRESHOLD_RULE, summarize_predictions
from deepinsight.run_outputs import (
    format_metrics_table,
    write_classification_report,
    write_predictions,
    write_results,
)
from deepinsight.tracking.loggers import log_test_artifacts
from deepinsight.uncertainty import DEFAULT_N_BOOTSTRAP, DEFAULT_SEED, with_confidence_intervals

log = logging.getLogger(__name__)

CONSOLE_METRICS = ("auroc", "ap", "accuracy", "precision", "recall", "f1", "macro_f1", "n")


def write_test_outputs(
    run_dir: Path,
    *,
    trainer: Any,
    model: Any,
    datamodule: Any,
    run_keys: Mapping[str, Any],
    best_checkpoint: str | None,
    best_val_auroc: float | None = None,
    title: str,
    analysis: Mapping[str, Any],
    seed: int,
    timings: Mapping[str, float] | None = None,
    peak_gpu_memory_gib: float | None = None,
) -> dict[str, Any]:
    """Write the run directory from the model's gathered test outputs; return results.json.

    Call it on global rank 0 only, after ``trainer.test``. Test scores are the temperature
    scaled ones (``model.temperature``), as ``predict`` computes them from the checkpoint.
    ``timings`` (wall seconds per phase so far) goes into results.json with this function's
    own time added as ``outputs`` (analysis, figures, bootstrap).
    """
    started = time.perf_counter()
    outputs = model.test_outputs
    test_set = datamodule.dataset("test")
    samples = [test_set.samples[int(i)] for i in outputs["index"]]
    paths = [sample.path for sample in samples]
    labels, scores = outputs["label"].numpy(), outputs["score"].double().numpy()
    summary = summarize_predictions(labels, scores, threshold=0.5)
    write_predictions(run_dir, paths, labels, scores)
    write_classification_report(run_dir, labels, scores, summary, title=title)

    found = analyse_run(
        run_dir,
        labels,
        scores,
        summary["confusion_matrix"],
        title=title,
        settings=analysis,
        model=model,
        datamodule=datamodule,
        seed=seed,
    )
    results: dict[str, Any] = {
        "status": "completed",
        **run_keys,
        "data_root": str(datamodule.splits.root),
        "epochs_trained": int(trainer.current_epoch),
        "best_checkpoint": str(Path(best_checkpoint).resolve()) if best_checkpoint else None,
        "best_val_auroc": best_val_auroc,
        "decision_threshold": {"value": model.decision_threshold, "rule": THRESHOLD_RULE},
        **uncertainty_and_calibration(
            run_dir,
            labels,
            scores,
            summary,
            model.decision_threshold,
            temperature=getattr(model, "temperature", 1.0),
            valid_calibration=getattr(model, "val_calibration", None),
            settings=analysis,
            title=title,
        ),
    }
    if found.embedding_probe is not None:
        results["embedding_probe"] = found.embedding_probe
    groups = [sample.group for sample in samples]
    if None not in groups and len(set(groups)) > 1:
        # A test split that knows each image's generator (a benchmark layout, the mix demo):
        # the per-generator table, as evaluate writes it.
        results["per_generator"] = per_generator_rows(
            groups,
            labels,
            scores,
            model.decision_threshold,
            int(analysis.get("n_bootstrap", DEFAULT_N_BOOTSTRAP)),
            int(analysis.get("bootstrap_seed", DEFAULT_SEED)),
        )
        write_per_generator(Path(run_dir), results["per_generator"], title)
    if timings is not None:
        results["timings"] = {**timings, "outputs": round(time.perf_counter() - started, 2)}
    if peak_gpu_memory_gib is not None:
        results["peak_gpu_memory_gib"] = peak_gpu_memory_gib
    write_results(run_dir, results)
    try:
        reliability = Path(run_dir) / RELIABILITY_FILENAME
        figures = [*found.figures, *([reliability] if reliability.is_file() else [])]
        log_test_artifacts(trainer.loggers, summary, labels, scores, figures)
    except Exception as err:  # a tracker hiccup must not lose a finished run's results
        log.warning("could not log the test artifacts to the tracker: %s", err)

    weights = "best checkpoint" if best_checkpoint else "final weights"
    print(f"\nTest metrics ({title}, {weights}, threshold 0.5):")
    print(format_metrics_table(summary, CONSOLE_METRICS))
    print(f"Run directory: {Path(run_dir).resolve()}")
    return results


def uncertainty_and_calibration(
    run_dir: Path,
    labels: Any,
    scores: Any,
    summary: dict[str, Any],
    decision_threshold: float,
    *,
    temperature: float,
    valid_calibration: Mapping[str, float] | None,
    settings: Mapping[str, Any],
    title: str,
) -> dict[str, Any]:
    """results.json's ``test`` and ``test_at_decision_threshold`` blocks with bootstrap CIs,
    and its ``calibration`` block; draws ``reliability.png``.

    ``settings`` gives ``n_bootstrap`` and ``bootstrap_seed`` (the analysis node in training,
    the evaluate config in evaluate); evaluate and training share the defaults, so the same
    predictions get the same intervals from both.
    """
    n_bootstrap = int(settings.get("n_bootstrap", DEFAULT_N_BOOTSTRAP))
    seed = int(settings.get("bootstrap_seed", DEFAULT_SEED))
    at_threshold = summarize_predictions(labels, scores, threshold=decision_threshold)
    blocks = {
        "test": with_confidence_intervals(summary, labels, scores, n_bootstrap, seed),
        "test_at_decision_threshold": with_confidence_intervals(
            at_threshold, labels, scores, n_bootstrap, seed
        ),
        "calibration": calibration_block(labels, scores, temperature, valid_calibration),
    }
    if len(set(labels.tolist())) == 2:
        save_reliability_diagram(
            labels,
            scores,
            Path(run_dir) / RELIABILITY_FILENAME,
            title=f"Reliability: {title}",
            unscaled_scores=unscaled_scores(scores, temperature) if temperature != 1.0 else None,
        )
    return blocks


def write_failure(run_dir: Path, run_keys: Mapping[str, Any], err: BaseException) -> None:
    """A failed job leaves a results.json saying so, so sweeps and reports can show it."""
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    write_results(
        Path(run_dir), {"status": "failed", "error": f"{type(err).__name__}: {err}", **run_keys}
    )
