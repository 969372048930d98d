"""Training entry point: compose the config, instantiate, fit, test, write the run directory.

python -m deepinsight.train model=densenet121 data=grayscale
python -m deepinsight.train -m sweep=seed data.image_size=64 trainer.max_epochs=1
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any

import hydra
import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from deepinsight.analysis.embeddings import analyse_test_embeddings
from deepinsight.analysis.plots import write_test_plots
from deepinsight.config import config_dir
from deepinsight.errors import EXIT_USER_ERROR, DeepInsightError
from deepinsight.metrics import THRESHOLD_RULE, summarize_predictions
from deepinsight.run_outputs import (
    format_metrics_table,
    write_classification_report,
    write_predictions,
    write_results,
)
from deepinsight.tracking.loggers import (
    build_loggers,
    finish_wandb,
    log_run_config,
    log_test_artifacts,
)

log = logging.getLogger("deepinsight.train")

CONSOLE_METRICS = ("auroc", "ap", "accuracy", "precision", "recall", "f1", "macro_f1", "n")


def run_keys(cfg: DictConfig) -> dict[str, Any]:
    """The flat keys every run is identified and grouped by (results.json and W&B)."""
    return {
        "model": cfg.model.net.name,
        "data": cfg.data.variant,
        "experiment": cfg.get("experiment_name"),
        "seed": cfg.seed,
    }


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit on train, select on valid, evaluate the best checkpoint on test; return results.

    Everything is written to ``cfg.paths.output_dir`` (Hydra's run directory).
    """
    run_dir = Path(cfg.paths.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    L.seed_everything(cfg.seed, workers=True)

    if cfg.ckpt_path and not Path(cfg.ckpt_path).is_file():
        raise DeepInsightError(f"ckpt_path '{cfg.ckpt_path}' does not exist")
    datamodule = instantiate(cfg.data)
    datamodule.resolve()  # finds or builds the data and checks every image, before training
    model = instantiate(cfg.model, preprocessing=datamodule.preprocessing)
    loggers = build_loggers(cfg.get("logger"))
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c]
    trainer = instantiate(cfg.trainer, logger=loggers or False, callbacks=callbacks)
    keys = {**run_keys(cfg), "dataset": datamodule.dataset_name}
    log_run_config(loggers, cfg, keys)

    trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.ckpt_path)
    checkpoint = trainer.checkpoint_callback
    best = checkpoint.best_model_path if checkpoint and checkpoint.best_model_path else None
    trainer.test(model, datamodule=datamodule, ckpt_path=best, verbose=False)
    if not trainer.is_global_zero:
        return {}

    outputs = model.test_outputs
    test_set = datamodule.dataset("test")
    paths = [test_set.samples[int(i)].path for i in outputs["index"]]
    labels, scores = outputs["label"].numpy(), outputs["score"].double().numpy()
    summary = summarize_predictions(labels, scores, threshold=0.5)
    write_predictions(run_dir, paths, labels, scores)
    write_classification_report(run_dir, labels, scores, summary, title=cfg.run_name)

    results: dict[str, Any] = {
        "status": "completed",
        **keys,
        "data_root": str(datamodule.splits.root),
        "epochs_trained": int(trainer.current_epoch),
        "best_checkpoint": str(Path(best).resolve()) if best else None,
        "decision_threshold": {"value": model.decision_threshold, "rule": THRESHOLD_RULE},
        "test": summary,
        "test_at_decision_threshold": summarize_predictions(
            labels, scores, threshold=model.decision_threshold
        ),
    }
    figures = analyse_run(cfg, run_dir, model, datamodule, summary, labels, scores, results)
    write_results(run_dir, results)
    try:
        log_test_artifacts(loggers, summary, labels, scores, figures)
    except Exception as err:  # a tracker hiccup must not lose a finished run's results
        log.warning("could not log the test artifacts to the tracker: %s", err)
    weights = "best checkpoint" if best else "final weights"
    print(f"\nTest metrics ({cfg.run_name}, {weights}, threshold 0.5):")
    print(format_metrics_table(summary, CONSOLE_METRICS))
    print(f"Run directory: {run_dir.resolve()}")
    return results


def analyse_run(cfg, run_dir, model, datamodule, summary, labels, scores, results) -> list[Path]:
    """Per-run figures (ROC, PR, confusion matrix, feature PCA) and the linear-SVM probe."""
    if len(set(labels.tolist())) < 2:
        log.warning("the test predictions hold one class only: no curves or feature analysis")
        return []
    figures = write_test_plots(
        run_dir, labels, scores, summary["confusion_matrix"], title=cfg.run_name
    )
    if cfg.analysis.enabled:
        results["embedding_probe"] = analyse_test_embeddings(
            model.net,
            datamodule.eval_dataloader("train", cfg.analysis.max_samples, seed=cfg.seed),
            datamodule.eval_dataloader("test", cfg.analysis.max_samples, seed=cfg.seed),
            run_dir,
            max_samples=cfg.analysis.max_samples,
            device=model.device,
            title=cfg.run_name,
        )
        figures.append(run_dir / "embeddings_pca.png")
    return figures


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def record_failure(run_dir: Path, cfg: DictConfig, err: BaseException) -> None:
    """A failed job leaves a results.json saying so, so sweeps and reports can show it."""
    try:
        keys = run_keys(cfg)
    except Exception:  # the config itself may be what failed
        keys = {}
    run_dir.mkdir(parents=True, exist_ok=True)
    write_results(run_dir, {"status": "failed", "error": f"{type(err).__name__}: {err}", **keys})


def is_multirun() -> bool:
    try:
        return HydraConfig.get().mode == RunMode.MULTIRUN
    except ValueError:
        return False


def run_job(cfg: DictConfig) -> dict[str, Any] | None:
    """One job: train, and record failure so a multirun carries on with the next job."""
    run_dir = Path(cfg.paths.output_dir)
    multirun = is_multirun()
    job = f"job {HydraConfig.get().job.num} " if multirun else ""
    log.info(
        "%sstart: model=%s data=%s seed=%s dir=%s",
        job,
        cfg.model.net.name,
        cfg.data.variant,
        cfg.seed,
        run_dir,
    )
    started = time.monotonic()
    try:
        results = train(cfg)
    except (Exception, KeyboardInterrupt) as err:
        record_failure(run_dir, cfg, err)
        finish_wandb(exit_code=1)
        if isinstance(err, KeyboardInterrupt):
            raise
        if multirun:
            log.error(
                "%sfailed after %.0f s: %s: %s",
                job,
                time.monotonic() - started,
                type(err).__name__,
                err,
                exc_info=not isinstance(err, DeepInsightError),
            )
            return None
        if isinstance(err, DeepInsightError):
            print(f"error: {err}", file=sys.stderr)
            raise SystemExit(EXIT_USER_ERROR) from None
        raise
    finish_wandb()
    test = results.get("test", {})
    shown = " ".join(f"{key}={_fmt(test.get(key))}" for key in ("auroc", "ap", "f1", "accuracy"))
    log.info("%sdone in %.0f s: %s", job, time.monotonic() - started, shown)
    return results


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="train")
def main(cfg: DictConfig) -> None:
    run_job(cfg)


if __name__ == "__main__":
    main()
