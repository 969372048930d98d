"""The README's Quickstart, timed as a new user runs it: empty cache, one process per run.

    python benchmarks/quickstart_time.py --seeds 42 1 2 --baseline --json out.json
    python benchmarks/quickstart_time.py --emulate-avx2        # on a CPU with AVX-512

Each run is ``python -m deepinsight.train model=densenet121 data=grayscale seed=N`` with a fresh
``$DEEPINSIGHT_CACHE``, timed from the outside (start-up included); ``results.json`` gives its
test AUROC with the bootstrap CI and its per-phase ``timings``. ``--baseline`` also runs, once,
the Quickstart as it was before issue 14 (7 epochs at the seed's constant lr, the demo built on
the spot instead of unpacked), in the same process, and prints both and their ratio.
``--emulate-avx2`` runs everything as a CPU without AVX-512 would (``ATEN_CPU_CAPABILITY=avx2
ONEDNN_MAX_CPU_ISA=AVX2`` and fp32), the issue's emulation of a typical laptop. It never
asserts on time; the CPU is printed beside every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

COMMAND = ["-m", "deepinsight.train", "model=densenet121", "data=grayscale"]
# The Quickstart before issue 14: the seed's schedule on the demo, and the demo built here.
BASELINE = ["trainer.max_epochs=7", "model.scheduler=null", "model.scheduler_interval=epoch",
            "trainer.num_sanity_val_steps=2", "trainer.check_val_every_n_epoch=1",
            "data.demo.prebuilt=false"]  # fmt: skip
AVX2 = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}


def cpu_description() -> dict[str, Any]:
    """The CPU's model name and whether it has the vector units the figures depend on."""
    flags, model = set(), platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return {
        "model": model,
        "cores": os.cpu_count(),
        "avx2": "avx2" in flags,
        "avx512f": "avx512f" in flags,
        "avx512_bf16": "avx512_bf16" in flags,
        "amx_bf16": "amx_bf16" in flags,
    }


def run_once(seed: int, extra: list[str], env: dict[str, str], workdir: Path) -> dict[str, Any]:
    run_dir = workdir / f"run-s{seed}-{len(extra)}"
    cache = Path(tempfile.mkdtemp(prefix="quickstart-cache-", dir=workdir))
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, *COMMAND, f"seed={seed}", f"hydra.run.dir={run_dir}", *extra],
        cwd=workdir, env={**env, "DEEPINSIGHT_CACHE": str(cache)},
        capture_output=True, text=True,
    )  # fmt: skip
    wall = time.perf_counter() - started
    if done.returncode != 0:
        return {"seed": seed, "error": done.stderr[-2000:], "wall_s": wall}
    results = json.loads((run_dir / "results.json").read_text())
    return {
        "seed": seed,
        "wall_s": round(wall, 1),
        "test_auroc": results["test"]["auroc"],
        "test_auroc_ci95": results["test"]["ci95"]["auroc"],
        "epochs": results["epochs_trained"],
        "timings": results.get("timings"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 1, 2])
    parser.add_argument("--baseline", action="store_true", help="also the pre-#14 Quickstart")
    parser.add_argument("--emulate-avx2", action="store_true", help="as a CPU without AVX-512")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    env = {**os.environ, "WANDB_SILENT": "true"}
    extra: list[str] = []
    if args.emulate_avx2:
        env.update(AVX2)
        extra.append("trainer.precision=32-true")
    out: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "cpu": cpu_description(),
        "emulated_avx2": args.emulate_avx2,
        "command": "python " + " ".join(COMMAND) + " seed=N " + " ".join(extra),
        "runs": [],
    }
    with tempfile.TemporaryDirectory(prefix="quickstart-") as tmp:
        for seed in args.seeds:
            run = run_once(seed, extra, env, Path(tmp))
            out["runs"].append(run)
            print(json.dumps(run), flush=True)
        if args.baseline:
            out["baseline"] = run_once(args.seeds[0], [*extra, *BASELINE], env, Path(tmp))
            out["baseline"]["overrides"] = BASELINE
            print(json.dumps(out["baseline"]), flush=True)
    cpu = out["cpu"]
    kind = "AVX-512" if cpu["avx512f"] else "AVX2 only" if cpu["avx2"] else "no AVX2"
    walls = [r["wall_s"] for r in out["runs"] if "error" not in r]
    print(f"CPU: {cpu['model']}, {cpu['cores']} cores, {kind}"
          f"{' (emulating AVX2)' if args.emulate_avx2 else ''}")  # fmt: skip
    for run in out["runs"]:
        print(f"  seed {run['seed']}: {run['wall_s']} s, test AUROC {run.get('test_auroc')}")
    if walls:
        out["median_wall_s"] = statistics.median(walls)
        print(f"Quickstart: median {out['median_wall_s']} s over {len(walls)} seeds")
    base = out.get("baseline")
    if base and "error" not in base and walls:
        out["speedup_over_baseline"] = base["wall_s"] / walls[0]
        print(f"pre-#14 Quickstart (seed {base['seed']}): {base['wall_s']} s, test AUROC "
              f"{base['test_auroc']}; ratio {out['speedup_over_baseline']:.2f}x")  # fmt: skip
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
