"""The robustness grid for finished training runs, written into each run directory.

    python -m deepinsight.evaluation.robustness_runs DIR [DIR ...] [seed=0] [max_samples=N]

Each run is scored on its own test split, read back from its resolved ``config.yaml`` (so the
demo data is rebuilt from its recorded settings), with its best checkpoint. The report then
finds ``robustness.csv`` beside ``results.json`` and overlays the runs' curves.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import numpy as np

from deepinsight.cli import compose_command_config, run_command
from deepinsight.errors import EXIT_OK, DeepInsightError

CONFIG_NAME = "robustness"
USAGE = """usage: python -m deepinsight.evaluation.robustness_runs DIR [DIR ...] [key=value ...]

Writes robustness.csv and robustness_*.png into every finished run directory under the DIRs.
"""


def test_samples(run_dir: Path) -> list:
    """The run's test split, located the way its training found it."""
    from hydra.utils import instantiate

    from deepinsight.config import register_resolvers
    from deepinsight.report.runs import read_config

    register_resolvers()
    config = read_config(run_dir)
    if config is None or "data" not in config:
        raise DeepInsightError(f"{run_dir} has no readable config.yaml naming its data")
    datamodule = instantiate(config.data, verify_images=False)
    return list(datamodule.resolve().splits["test"])


def subset(samples: list, max_samples: int | None, seed: int) -> list:
    """A seeded random subset in the original order (splits are stored class by class)."""
    if max_samples is None or len(samples) <= max_samples:
        return samples
    chosen = np.random.default_rng(seed).choice(len(samples), size=max_samples, replace=False)
    return [samples[i] for i in sorted(chosen.tolist())]


def robustness_for_run(
    run_dir: Path, seed: int, max_samples: int | None, batch_size: int, device: str
) -> list[Path]:
    """Score one finished run's best checkpoint on its test split under the grid."""
    from deepinsight.evaluation.robustness_outputs import run_robustness
    from deepinsight.inference import load_detector

    results = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
    checkpoint = results.get("best_checkpoint")
    if results.get("status") != "completed" or not checkpoint:
        raise DeepInsightError(f"{run_dir} did not complete; no checkpoint to score")
    detector = load_detector(checkpoint, device=device)
    samples = subset(test_samples(run_dir), max_samples, seed)
    name = f"{results.get('model')}/{results.get('data')}"
    return run_robustness(detector, samples, run_dir, seed=seed, batch_size=batch_size, name=name)


def run(argv: Sequence[str]) -> int:
    from deepinsight.report.runs import find_results

    dirs = [a for a in argv if "=" not in a]
    cfg = compose_command_config(CONFIG_NAME, [a for a in argv if "=" in a])
    dirs += [str(d) for d in cfg["dirs"] or ()]
    if not dirs:
        raise DeepInsightError(f"no run directories given; {USAGE.splitlines()[0]}")
    max_samples = None if cfg["max_samples"] is None else int(cfg["max_samples"])
    for results in find_results([Path(d) for d in dirs]):
        try:
            written = robustness_for_run(
                results.parent,
                int(cfg["seed"]),
                max_samples,
                int(cfg["batch_size"]),
                str(cfg["device"]),
            )
        except DeepInsightError as err:
            print(f"warning: skipped {results.parent}: {err}")
            continue
        print(f"wrote {written[0]}")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> NoReturn:
    run_command(run, argv, USAGE, CONFIG_NAME)


if __name__ == "__main__":
    main()
