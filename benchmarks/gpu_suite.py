"""The prepared GPU check (issues 7 and 14): one script, figures as JSON, resumable.

    python benchmarks/gpu_suite.py --out $OUT/gpu_suite.json          # on the GPU machine
    python benchmarks/gpu_suite.py --dry-run --out /tmp/suite.json     # CPU, tiny sizes

A rerun with the same ``--out`` (copy the last JSON back there first) keeps every step that
already has a result and measures only the rest, so a budget spent in one call continues in
the next; ``--fresh`` measures everything again. Each step is recorded in the JSON even when it
fails (then with its error). In order:

1. ``pytest -m gpu`` (the CUDA tests);
2. the real command end to end: ``python -m deepinsight.train experiment=densenet121_grayscale``
   on a generated 20k/4k/4k Kaggle-shaped set at 224 px, 2 epochs, cache build included, with
   Lightning's SimpleProfiler (``gpu_end_to_end.end_to_end``): per-phase times, training and
   validation images/s, data-wait fraction, peak memory, run directory complete, and the
   projected ``-m sweep=paper`` wall time at the full size;
3. a ``torch.profiler`` trace of 20 training steps per model at batch 32, with what bounds each
   (``gpu_end_to_end.profile_training``; traces saved beside the JSON);
then the earlier steps: training throughput of the three models at 224 px, batch 32,
bf16-mixed: eager contiguous, eager channels_last, compiled with CUDA graphs
(``reduce-overhead``) and compiled in the default mode, each through Lightning and a plain
loop (``train_throughput.py``), with peak GPU memory; batch 128;
the fraction of step time spent waiting for data in a bare ``DeepfakeDataModule`` +
``DeepfakeClassifier`` + ``Trainer`` run (rgb and augmented); inference images/s (bf16 for
validation, fp32 for test); the input pipeline (ImageFolder + PIL against DeepInsight's loader
and nvJPEG, ``loader_throughput.py``); and a projection of ``-m sweep=paper`` from the
throughput figures (step 2's projection comes from the real command and is the one to quote).

A step that would overrun ``--budget-s`` is skipped and says so. Imports only torch,
torchvision, lightning, timm, numpy, PIL and DeepInsight's data and model modules: the GPU
machine has no Hydra, OmegaConf or W&B (``benchmarks/README.md`` says how to carry them for
steps 1 and 2). ``--dry-run`` runs every step on the CPU at tiny sizes (step 1 only collects), so a
test can check the script end to end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

HERE = Path(__file__).resolve().parent
MODELS = ("densenet121", "efficientnet", "custom_cnn")
# (channels_last, compile) per training configuration: compile is False, True (torch's default
# mode) or a mode name. CUDA graphs (reduce-overhead) first: DenseNet121 at batch 32 issues
# about 1,700 kernels a step, and pytorch/pytorch#96191 measured graphs 2.5x faster there.
TRAIN_CONFIGS = ((False, False), (True, False), (True, "reduce-overhead"), (True, True))
# The seed sweep (conf/sweep/seed.yaml) and its data (the Kaggle split sizes).
SWEEP = {
    "variants": {
        "densenet121_rgb": ("densenet121", 3),
        "densenet121_augmented": ("densenet121", 3),
        "densenet121_grayscale": ("densenet121", 1),
        "custom_cnn_rgb": ("custom_cnn", 3),
    },
    "epochs": 20,
    "train": 100_000,
    "valid": 20_000,
    "test": 20_000,
    "analysis_images": 4_000,  # analysis.max_samples train + test embeddings
}


class Suite:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.started = time.perf_counter()
        self.device = "cpu" if args.dry_run else "cuda"
        self.size = 32 if args.dry_run else 224
        self.results: dict[str, Any] = {"environment": environment(args), "steps": {}}
        # Steps measured by an earlier call with the same --out, reused unless --fresh.
        self.earlier: dict[str, Any] = {}
        if args.out.is_file() and not args.fresh:
            self.earlier = json.loads(args.out.read_text()).get("steps", {})

    def measured_before(self, name: str) -> Any:
        """An earlier call's result for step ``name``, if it had one (not an error or a skip)."""
        record = self.earlier.get(name) or {}
        if "result" not in record or "error" in record:
            return None
        rows = record["result"] if isinstance(record["result"], list) else []
        if any("skipped" in row or "error" in row for row in rows if isinstance(row, dict)):
            return None  # a step of rows (training throughput) with rows still to measure
        return record

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def step(self, name: str, estimate_s: float, fn, *a) -> Any:
        """Run one step; record its result, duration or error; skip it if over budget."""
        earlier = self.measured_before(name)
        if earlier is not None:
            self.results["steps"][name] = {**earlier, "from_earlier_call": True}
            print(f"[{self.elapsed():5.0f} s] {name}: measured by an earlier call", flush=True)
            return earlier["result"]
        if self.elapsed() + estimate_s > self.args.budget_s:
            self.results["steps"][name] = {"skipped": f"over the {self.args.budget_s} s budget"}
            print(f"[{self.elapsed():5.0f} s] {name}: skipped (budget)", flush=True)
            return None
        print(f"[{self.elapsed():5.0f} s] {name} ...", flush=True)
        start = time.perf_counter()
        try:
            value = fn(*a)
            record = {"result": value}
        except Exception as err:  # one failing step must not lose the others' figures
            value = None
            record = {"error": f"{type(err).__name__}: {err}", "trace": traceback.format_exc()}
            print(record["trace"], file=sys.stderr)
        record["seconds"] = time.perf_counter() - start
        self.results["steps"][name] = record
        self.save()
        return value

    def save(self) -> None:
        self.results["elapsed_s"] = self.elapsed()
        self.args.out.parent.mkdir(parents=True, exist_ok=True)
        self.args.out.write_text(json.dumps(self.results, indent=1, default=str) + "\n")


def environment(args) -> dict[str, Any]:
    env = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_cores": os.cpu_count(),
        "dry_run": args.dry_run,
    }
    if torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(0)
        env["gpu_memory_gib"] = torch.cuda.get_device_properties(0).total_memory / 2**30
    return env


def run_pytest(dry_run: bool) -> dict[str, Any]:
    # Only the files that hold GPU tests: collecting the others would import W&B, ONNX and
    # Grad-CAM, which the GPU machine may lack, and a collection error stops the whole run.
    files = sorted(
        str(p.relative_to(HERE.parent))
        for p in (HERE.parent / "tests").glob("test_*.py")
        if "pytest.mark.gpu" in p.read_text()
    )
    cmd = [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider", *files]
    if dry_run:
        cmd.append("--collect-only")
    done = subprocess.run(cmd, cwd=HERE.parent, capture_output=True, text=True, timeout=300)
    tail = (done.stdout + done.stderr).strip().splitlines()[-15:]
    return {"command": " ".join(cmd[1:]), "returncode": done.returncode, "tail": tail}


def loader(suite: Suite, root: Path, cache: Path) -> dict[str, Any]:
    import loader_throughput

    args = SimpleNamespace(
        n=suite.args.loader_images, workers=suite.args.workers, image_size=suite.size,
        batch_size=32, variant="rgb", gpu_decode=not suite.args.dry_run,
    )  # fmt: skip
    return loader_throughput.run(root, cache, args)


def measure_training(suite: Suite, model: str, channels_last: bool, compile_: bool,
                     batch_size: int = 32) -> dict[str, Any]:  # fmt: skip
    """One row of training throughput (Lightning and the plain loop); an error is a row too."""
    import train_throughput

    args = train_throughput.parser().parse_args([])
    args.device, args.model, args.image_size = suite.device, model, suite.size
    args.batch_size, args.channels_last, args.compile = batch_size, channels_last, compile_
    args.precision = "bf16-mixed"
    args.steps, args.warmup = (2, 1) if suite.args.dry_run else (40, 10)
    args.repeats = 1 if compile_ or suite.args.dry_run else 2
    try:
        row = train_throughput.measure(args)
    except Exception as err:
        row = {"model": model, "channels_last": channels_last, "compile": compile_,
               "batch_size": batch_size, "error": f"{type(err).__name__}: {err}"}  # fmt: skip
    rate, ratio = row.get("lightning_images_per_s", 0), row.get("lightning_over_plain", 0)
    print(f"    {model} batch={batch_size} channels_last={channels_last} compile={compile_}: "
          f"{rate:.0f} img/s Lightning, {ratio:.3f}x plain", flush=True)  # fmt: skip
    return row


def train(suite: Suite) -> list[dict[str, Any]]:
    """Every model eager (contiguous, channels_last) first, then compiled, within the budget.

    Rows an earlier call measured (see ``Suite``) are kept, so a rerun measures the rest."""
    earlier = [
        *((suite.earlier.get("train_partial") or {}).get("result") or []),
        *((suite.earlier.get("train_throughput") or {}).get("result") or []),
    ]
    done = {
        (r["model"], r["channels_last"], r["compile"]): r
        for r in earlier
        if "lightning_images_per_s" in r
    }
    rows = []
    for channels_last, compile_ in TRAIN_CONFIGS:
        if compile_ and suite.args.dry_run:
            continue  # compiling on the CPU takes minutes: the code path is the same
        for model in suite.args.models:
            if (model, channels_last, compile_) in done:
                rows.append(done[(model, channels_last, compile_)])
                continue
            # Compiling DenseNet121 or EfficientNet can take minutes: start one only with room.
            if compile_ and suite.elapsed() + 150 > suite.args.budget_s:
                rows.append({"model": model, "compile": True, "skipped": "budget"})
                continue
            rows.append(measure_training(suite, model, channels_last, compile_))
            suite.results["steps"]["train_partial"] = {"result": rows}
            suite.save()
    suite.results["steps"].pop("train_partial", None)
    return rows


def batch_scaling(suite: Suite) -> list[dict[str, Any]]:
    """Eager channels_last at batch 128: on the H200 at batch 32, DenseNet121 reached only 570
    images/s (2026-11-27), which looks launch-bound (about 120 small convolutions per step)."""
    batch = 8 if suite.args.dry_run else 128
    return [measure_training(suite, m, True, False, batch) for m in suite.args.models]


def data_wait(suite: Suite, root: Path, variant: str) -> dict[str, Any]:
    """Fraction of training wall time spent waiting for the next batch, in the real pipeline."""
    import lightning as L

    from deepinsight.data.datamodule import DeepfakeDataModule
    from deepinsight.lightning_module import DeepfakeClassifier

    class WaitTimer(L.Callback):
        def __init__(self) -> None:
            self.waits: list[float] = []
            self.steps: list[float] = []
            self.last_end: float | None = None

        def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
            # The wait since the last step ended: fetching (or waiting for) the batch and its
            # copy to the GPU. Epoch boundaries count too, as they do in a real run.
            now = time.perf_counter()
            if self.last_end is not None and trainer.global_step >= warmup:
                self.waits.append(now - self.last_end)
            self.start = now

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            self.last_end = time.perf_counter()
            if trainer.global_step > warmup:
                self.steps.append(self.last_end - self.start)

    dm = DeepfakeDataModule(
        variant=variant, root=str(root), image_size=suite.size, batch_size=32,
        num_workers=suite.args.workers, pin_memory=True,
    )  # fmt: skip
    model = DeepfakeClassifier(
        net={"name": suite.args.models[0], "in_chans": 3}, channels_last=True
    )
    steps, warmup = (8, 2) if suite.args.dry_run else (150, 10)
    timer = WaitTimer()
    trainer = L.Trainer(
        accelerator="gpu" if suite.device == "cuda" else "cpu", devices=1,
        precision="bf16-mixed", max_steps=steps, limit_val_batches=0, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        callbacks=[timer], num_sanity_val_steps=0,
    )  # fmt: skip
    trainer.fit(model, datamodule=dm)
    wait, step = sum(timer.waits), sum(timer.steps)
    return {
        "variant": variant,
        "steps_timed": len(timer.steps),
        "wait_fraction": wait / (wait + step) if wait + step else None,
        "images_per_s": 32 * len(timer.steps) / (wait + step) if wait + step else None,
    }


def inference(suite: Suite) -> dict[str, dict[str, float]]:
    """Forward-only images/s: bf16 autocast (validation) and fp32 (test, as test_step runs)."""
    from deepinsight.models import create_model

    out: dict[str, dict[str, float]] = {}
    for model_name in dict.fromkeys(m for m, _ in SWEEP["variants"].values()):
        if model_name not in suite.args.models:
            continue
        net = create_model(model_name, in_chans=3).to(suite.device).eval()
        net = net.to(memory_format=torch.channels_last)
        batch = torch.rand(64, 3, suite.size, suite.size, device=suite.device)
        batch = batch.contiguous(memory_format=torch.channels_last)
        out[model_name] = {}
        for label, dtype in (("bf16", torch.bfloat16), ("fp32", None)):
            n = 2 if suite.args.dry_run else 30
            with (
                torch.inference_mode(),
                torch.autocast(
                    suite.device, dtype=dtype or torch.float32, enabled=dtype is not None
                ),
            ):
                for i in range(n + 3):
                    if i == 3:
                        sync(suite)
                        start = time.perf_counter()
                    net(batch)
                sync(suite)
            out[model_name][label] = n * 64 / (time.perf_counter() - start)
    return out


def sync(suite: Suite) -> None:
    if suite.device == "cuda":
        torch.cuda.synchronize()


def projection(train_rows, infer, loader_result) -> dict[str, Any]:
    """Wall time of the seed sweep from measured rates (the default: eager, channels_last)."""
    if not train_rows or not infer:
        return {"error": "needs the training and inference figures"}
    rates = {}
    for row in train_rows:
        if row.get("channels_last") and "lightning_images_per_s" in row:
            key = "compiled" if row.get("compile") else "eager"
            rates.setdefault(key, {})[row["model"]] = row["lightning_images_per_s"]
    build = (loader_result or {}).get("decoded_cache_build_images_per_s")
    out: dict[str, Any] = {"kind": "projection from measured images/s, not a measured sweep"}
    for key, by_model in rates.items():
        total = 0.0
        per_variant = {}
        for variant, (model, _) in SWEEP["variants"].items():
            if model not in by_model or model not in infer:
                continue
            fit = SWEEP["epochs"] * (
                SWEEP["train"] / by_model[model] + SWEEP["valid"] / infer[model]["bf16"]
            )
            test = (SWEEP["test"] + SWEEP["analysis_images"]) / infer[model]["fp32"]
            per_variant[variant] = (fit + test) / 60
            total += fit + test
        if build:
            total += sum(SWEEP[s] for s in ("train", "valid", "test")) / build  # decoded once
        out[key] = {"minutes_per_variant": per_variant, "total_minutes": total / 60}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", HERE / "results"))
                        / "gpu_suite.json")  # fmt: skip
    parser.add_argument("--dry-run", action="store_true", help="CPU, tiny sizes (for the test)")
    parser.add_argument("--budget-s", type=float, default=420.0, help="skip steps beyond this")
    parser.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1))
    parser.add_argument("--loader-images", type=int, default=6000)
    parser.add_argument("--data", type=Path, help="existing Kaggle-shaped set (else generated)")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument(
        "--e2e-images",
        type=int,
        default=28_000,
        help="images for the end-to-end run (split 100:20:20: 20k/4k/4k)",
    )
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="measure every step again instead of keeping an earlier call's",
    )
    args = parser.parse_args()
    if args.dry_run:
        args.workers, args.loader_images = 0, 48
    elif not torch.cuda.is_available():
        parser.error("no CUDA device: use --dry-run on a CPU machine")
    import gpu_end_to_end
    from synthetic_kaggle import write_synthetic_kaggle

    suite = Suite(args)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("DEEPINSIGHT_CACHE", str(Path(tmp) / "cache"))
        n = args.loader_images * 7 // 5 + 2
        root = args.data or write_synthetic_kaggle(Path(tmp) / "data", n, progress=False)
        # Most telling first: on the first H200 run (2026-11-27) the loader step hung on the
        # GPU-decode candidate and nothing after it was measured.
        suite.step("pytest_gpu", 90, run_pytest, args.dry_run)
        e2e_images = 70 if args.dry_run else args.e2e_images
        suite.step("end_to_end", 200, gpu_end_to_end.end_to_end, e2e_images, args.workers,
                   args.dry_run, Path(tmp))  # fmt: skip
        for model in args.models:
            suite.step(f"profile_{model}", 30, gpu_end_to_end.profile_training, model,
                       suite.device, suite.size, 4 if args.dry_run else 32,
                       2 if args.dry_run else 20, args.out.parent)  # fmt: skip
        rows = suite.step("train_throughput", 60, train, suite)
        infer = suite.step("inference", 20, inference, suite)
        suite.step("batch_scaling", 40, batch_scaling, suite)
        for variant in ("rgb", "augmented"):
            suite.step(f"data_wait_{variant}", 40, data_wait, suite, root, variant)
        load = suite.step("loader", 60, loader, suite, root, Path(tmp) / "loader_cache")
        suite.results["sweep_projection"] = projection(rows, infer, load)
    suite.save()
    print(json.dumps(suite.results["sweep_projection"], indent=1))
    print(f"wrote {args.out} in {suite.elapsed():.0f} s")


if __name__ == "__main__":
    main()
