"""Training entry point: compose the config, instantiate, fit, test, write the run directory.

python -m deepinsight.train model=densenet121 data=grayscale
python -m deepinsight.train -m sweep=seed data.image_size=64 trainer.max_epochs=1
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hydra
import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from deepinsight.config import config_dir
from deepinsight.errors import DeepInsightError
from deepinsight.job import run_job, run_keys
from deepinsight.run_directory import write_test_outputs
from deepinsight.tracking.loggers import build_loggers, log_run_config


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
    return write_test_outputs(
        run_dir,
        trainer=trainer,
        model=model,
        datamodule=datamodule,
        run_keys=keys,
        best_checkpoint=best,
        title=cfg.run_name,
        analysis=cfg.analysis,
        seed=cfg.seed,
    )


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="train")
def main(cfg: DictConfig) -> None:
    run_job(cfg, train)


if __name__ == "__main__":
    main()
