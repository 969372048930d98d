"""A frozen-backbone linear probe with and without ``model.cache_features``, same process.

    python benchmarks/probe_feature_cache.py --model resnet50 --epochs 5 --json out.json

Both runs are ``python -m deepinsight.train model=timm model.freeze_backbone=true`` on the demo
data (64 px), from the same weights file, differing only in ``model.cache_features``. The
weights are a random initialisation saved to a file (nothing downloads here), so the probe's
AUROC says nothing about pretrained features; what is compared is the time ``trainer.fit``
takes (``results.json`` ``timings.fit``) and that both runs reach the same test AUROC. The CPU
is printed beside the figures; it never asserts on time.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quickstart_time import cpu_description  # noqa: E402


def run(args, weights: Path, cache: bool, workdir: Path) -> dict[str, Any]:
    run_dir = workdir / f"cache-{cache}"
    done = subprocess.run(
        [sys.executable, "-m", "deepinsight.train", "model=timm", f"model.net.name={args.model}",
         f"model.net.pretrained_file={weights}", "model.freeze_backbone=true",
         f"model.cache_features={str(cache).lower()}", f"trainer.max_epochs={args.epochs}",
         "logger=none", "analysis.enabled=false", f"hydra.run.dir={run_dir}"],
        cwd=workdir, capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"cache_features={cache} failed:\n{done.stderr[-3000:]}")
    results = json.loads((run_dir / "results.json").read_text())
    return {
        "cache_features": cache,
        "fit_s": round(results["timings"]["fit"], 2),
        "test_s": round(results["timings"]["test"], 2),
        "test_auroc": results["test"]["auroc"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    import timm
    import torch
    from safetensors.torch import save_file

    workdir = Path(tempfile.mkdtemp(prefix="probe-cache-"))
    weights = workdir / "weights.safetensors"
    torch.manual_seed(0)
    save_file(timm.create_model(args.model).state_dict(), str(weights))
    # The baseline (no cache) first, then DeepInsight's cached probe, in this one process.
    plain = run(args, weights, False, workdir)
    cached = run(args, weights, True, workdir)
    report = {
        "benchmark": "probe_feature_cache",
        "model": args.model,
        "epochs": args.epochs,
        "data": "the default demo dataset, 64 px",
        "cpu": cpu_description(),
        "torch": torch.__version__,
        "without_cache": plain,
        "with_cache": cached,
        "fit_speedup": round(plain["fit_s"] / cached["fit_s"], 2),
    }
    print(f"CPU: {report['cpu']['model']} ({report['cpu']['cores']} cores)")
    print(f"{args.model}, frozen, {args.epochs} epochs on the demo data:")
    for label, result in (("without", plain), ("with", cached)):
        print(
            f"  fit {label} cache_features: {result['fit_s']:.1f} s "
            f"(test AUROC {result['test_auroc']})"
        )
    print(f"  ratio: {report['fit_speedup']:.2f}x")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
