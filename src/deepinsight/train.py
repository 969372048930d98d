"""Training entry point: compose the config, instantiate, fit, test, write the run directory.

python -m deepinsight.train model=densenet121 data=grayscale
python -m deepinsight.train -m sweep=paper data.image_size=64 trainer.max_epochs=1
python -m deepinsight.train hparams_search=densenet121      # Optuna: returns best val AUROC
"""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path
from typing import Any

import hydra
import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from deepinsight.config import config_dir
from deepinsight.data.demo import check_data_root
from deepinsight.distributed import RankGroup, adopt_job_argv, is_rank_zero
from deepinsight.job import run_job, run_keys
from deepinsight.resume import resolve_ckpt_path
from deepinsight.run_directory import write_test_outputs
from deepinsight.tracking.loggers import build_loggers, log_run_config

log = logging.getLogger(__name__)

# conf/hydra/launcher/submitit_{slurm,local}.yaml keep the plugin's option names on purpose (the
# names its docs use) and are complete on their own; Hydra 1.3 still merges them onto the
# plugin's schemas of the same name and warns each time that this is deprecated.
warnings.filterwarnings(
    "ignore", message=r"\s*'hydra/launcher/submitit_\w+' is validated against ConfigStore schema"
)


def run_audit(datamodule, run_dir: Path) -> None:
    """``audit=true``: the shortcut audit of every split, into the run directory."""
    from deepinsight.audit.cli import audit_samples, write_audit

    splits = datamodule.splits
    samples = [s for part in splits.splits.values() for s in part]
    report = audit_samples(samples, num_workers=datamodule.num_workers)
    write_audit(run_dir, report, f"{splits.root} (all splits)")
    for line in report["verdict"]:
        (log.warning if line.startswith("SHORTCUT") else log.info)("audit: %s", line)


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit on train, select on valid, evaluate the best checkpoint on test; return results.

    Everything is written to ``cfg.paths.output_dir`` (Hydra's run directory), by global rank 0
    only; under DDP every rank runs this same function in that directory.
    """
    # Before anything resolves the demo-or-disk defaults: an unset root is one line, not a trace.
    check_data_root(cfg.data.root)
    run_dir = Path(cfg.paths.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if is_rank_zero():
        (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    L.seed_everything(cfg.seed, workers=True)

    ckpt_path = resolve_ckpt_path(cfg.ckpt_path, run_dir)
    # Wall seconds per phase, for results.json's "timings": where a run's time goes.
    clock = PhaseClock()
    datamodule = instantiate(cfg.data)
    datamodule.resolve()  # finds or builds the data and checks every image, before training
    if cfg.get("audit") and is_rank_zero():
        run_audit(datamodule, run_dir)
    clock.lap("data")
    model = instantiate(cfg.model, preprocessing=datamodule.preprocessing)
    loggers = build_loggers(cfg.get("logger"))
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c]
    keys = {**run_keys(cfg), "dataset": datamodule.dataset_name}
    if datamodule.holds_out_generators:  # a leave-one-generator-out fold (sweep=logo)
        keys["generators"] = dict(datamodule.generator_fold)
    # Under DDP: the ranks Lightning starts run this very job; released when the job ends.
    with RankGroup(run_dir) as ranks:
        trainer = instantiate(cfg.trainer, logger=loggers or False, callbacks=callbacks)
        ranks.trainer = trainer
        log_run_config(loggers, cfg, keys)

        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
        clock.lap("fit")
        checkpoint = trainer.checkpoint_callback
        best = checkpoint.best_model_path if checkpoint and checkpoint.best_model_path else None
        trainer.test(model, datamodule=datamodule, ckpt_path=best, verbose=False)
        clock.lap("test")
        if not trainer.is_global_zero:
            return {}
        return write_test_outputs(
            run_dir,
            trainer=trainer,
            model=model,
            datamodule=datamodule,
            run_keys=keys,
            best_checkpoint=best,
            best_val_auroc=best_val_auroc(checkpoint),
            title=cfg.run_name,
            analysis=cfg.analysis,
            seed=cfg.seed,
            timings=clock.laps,
            peak_gpu_memory_gib=peak_gpu_memory_gib(model),
        )


def peak_gpu_memory_gib(model: Any) -> float | None:
    """Most GPU memory the run's tensors held (this process's device), or None off CUDA."""
    if model.device.type != "cuda":
        return None
    import torch

    return round(torch.cuda.max_memory_allocated(model.device) / 2**30, 3)


class PhaseClock:
    """Wall time of consecutive phases: ``lap(name)`` records the seconds since the last lap."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(now - self._last, 2)
        self._last = now


def best_val_auroc(checkpoint: Any) -> float | None:
    """The validation AUROC the best checkpoint was chosen by (None if selection used another)."""
    if checkpoint is None or checkpoint.monitor != "val/auroc":
        return None
    score = checkpoint.best_model_score
    return None if score is None else float(score)


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="train")
def _main(cfg: DictConfig) -> float | None:
    results = run_job(cfg, train)
    # The job's value for sweepers that optimise (hparams_search=...): validation, never test.
    return (results or {}).get("best_val_auroc")


def main() -> None:
    """Console entry point. A DDP rank started by Lightning first takes over its job's arguments."""
    adopt_job_argv()
    _main()


if __name__ == "__main__":
    main()
