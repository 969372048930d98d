"""benchmarks/quickstart_time.py: its baseline is the pre-#14 Quickstart, and it names the CPU."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import quickstart_time  # noqa: E402


def test_baseline_overrides_give_the_old_quickstart(compose):
    cfg = compose(["model=densenet121", "data=grayscale", *quickstart_time.BASELINE])
    assert cfg.trainer.max_epochs == 7
    assert cfg.model.scheduler is None and cfg.model.scheduler_interval == "epoch"
    assert cfg.trainer.check_val_every_n_epoch == 1 and cfg.trainer.num_sanity_val_steps == 2
    assert cfg.data.demo.prebuilt is False  # the demo built on the spot, as before
    assert cfg.model.optimizer.lr == 1e-3


def test_cpu_description_names_the_vector_units():
    cpu = quickstart_time.cpu_description()
    assert cpu["cores"] >= 1
    assert {"model", "avx2", "avx512f", "avx512_bf16", "amx_bf16"} <= set(cpu)
    assert all(isinstance(cpu[k], bool) for k in ("avx2", "avx512f", "avx512_bf16", "amx_bf16"))
