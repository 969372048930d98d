"""Two steps of the GPU suite that look at the real thing rather than a loop written for it.

* :func:`end_to_end` runs the command users run, ``python -m deepinsight.train
  experiment=densenet121_grayscale data.root=...``, on a generated Kaggle-shaped set, with
  Lightning's ``SimpleProfiler``, and reads back what the run directory says: the per-phase wall
  times (``results.json`` ``timings``), training and validation images/s, the fraction of
  training time spent waiting for data, peak GPU memory, and the projected wall time of the
  full ``-m sweep=paper`` at the real data's size.
* :func:`profile_training` records a ``torch.profiler`` trace of a few training steps of one
  model and summarises what bounds it: kernel launches per step, and how much of the step's
  wall time the GPU was busy (a launch-bound step keeps it idle between small kernels).

Both run on the CPU at tiny sizes under ``gpu_suite.py --dry-run``; the figures only mean
something on a GPU.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
# What a finished run directory holds (docs/contracts.md).
RUN_FILES = ("results.json", "test_predictions.csv", "config.yaml", "checkpoints/best.ckpt",
             "checkpoints/last.ckpt")  # fmt: skip
# The real data of the seed sweep (conf/sweep/seed.yaml): 4 variants, 20 epochs.
SWEEP_VARIANTS = 4
SWEEP_EPOCHS = 20
REAL_SPLITS = {"train": 100_000, "valid": 20_000, "test": 20_000}
PROFILE_ROW = re.compile(r"^\|\s*(.+?)\s*\|\s*([-\d.e]+)\s*\|\s*(\d+)\s*\|\s*([\d.e-]+)\s*\|")


def parse_simple_profile(text: str) -> dict[str, dict[str, float]]:
    """``{action: {"calls": n, "total_s": t}}`` from a SimpleProfiler report (extended)."""
    actions: dict[str, dict[str, float]] = {}
    for line in text.expandtabs().splitlines():
        found = PROFILE_ROW.match(line.strip())
        if found and found.group(1) not in ("Action", "Total"):
            actions[found.group(1)] = {
                "calls": int(found.group(3)),
                "total_s": float(found.group(4)),
            }
    return actions


def total(actions: dict[str, dict[str, float]], suffix: str) -> float:
    """Seconds spent in every action whose name ends with ``suffix``."""
    return sum(a["total_s"] for name, a in actions.items() if name.endswith(suffix))


def end_to_end(n_images: int, workers: int, dry_run: bool, tmp: Path) -> dict[str, Any]:
    """The real training command, end to end, cache build included; see the module docstring."""
    from synthetic_kaggle import split_counts, write_synthetic_kaggle

    counts = split_counts(n_images)
    started = time.perf_counter()
    root = write_synthetic_kaggle(tmp / "e2e_data", n_images, progress=False)
    generated_s = time.perf_counter() - started
    run_dir = tmp / "e2e_run"
    epochs = 1 if dry_run else 2
    overrides = [
        "experiment=densenet121_grayscale", f"data.root={root}", f"trainer.max_epochs={epochs}",
        "logger=csv", f"hydra.run.dir={run_dir}", f"data.num_workers={workers}",
        "+trainer.profiler._target_=lightning.pytorch.profilers.SimpleProfiler",
        f"+trainer.profiler.dirpath={run_dir}", "+trainer.profiler.filename=profile",
    ]  # fmt: skip
    if dry_run:
        overrides += ["trainer=cpu", "data.image_size=32", "data.batch_size=8",
                      "analysis.n_bootstrap=20"]  # fmt: skip
    python_path = [str(REPO / "src"), os.environ.get("PYTHONPATH", "")]
    env = {
        **os.environ,
        # Run from a source tree without an install (the GPU machine): configs from conf/.
        "DEEPINSIGHT_CONFIG_DIR": str(REPO / "conf"),
        "PYTHONPATH": os.pathsep.join(filter(None, python_path)),
        "DEEPINSIGHT_CACHE": str(tmp / "e2e_cache"),
    }  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "deepinsight.train", *overrides],
        cwd=tmp, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    wall_s = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"train exited {done.returncode}: {done.stderr[-1500:]}")
    missing = [name for name in RUN_FILES if not (run_dir / name).is_file()]
    results = json.loads((run_dir / "results.json").read_text())
    actions = parse_simple_profile((run_dir / "fit-profile.txt").read_text())
    batch = int(re.search(r"batch_size: (\d+)", (run_dir / "config.yaml").read_text())[1])
    train_images = epochs * (counts["train"] // batch) * batch  # drop_last
    step_s = total(actions, "run_training_batch")
    wait_s = total(actions, "train_dataloader_next")
    val_s = total(actions, "val_next") + total(actions, ".validation_step")
    epoch_s = total(actions, "run_training_epoch") / epochs
    timings = results.get("timings", {})
    out = {
        "command": "python -m deepinsight.train " + " ".join(overrides),
        "splits": counts,
        "epochs": epochs,
        "generate_data_s": generated_s,
        "wall_s": wall_s,
        "timings": timings,
        "verify_and_cache_build_s": timings.get("data"),
        "epoch_wall_s": epoch_s,
        "train_images_per_s": train_images / (step_s + wait_s) if step_s + wait_s else None,
        "val_images_per_s": epochs * counts["valid"] / val_s if val_s else None,
        "data_wait_fraction": wait_s / (step_s + wait_s) if step_s + wait_s else None,
        "peak_gpu_memory_gib": results.get("peak_gpu_memory_gib"),
        "test_auroc": (results.get("test") or {}).get("auroc"),
        "run_directory_complete": not missing,
        "missing_files": missing,
    }
    out["sweep_projection"] = project_sweep(out, counts)
    shutil.rmtree(tmp / "e2e_cache", ignore_errors=True)
    return out


def project_sweep(measured: dict[str, Any], counts: dict[str, int]) -> dict[str, Any]:
    """``-m sweep=paper`` at the real size from this run: every phase scaled by its image count.

    DenseNet121 stands for all four variants, so the custom CNN's job is over-estimated.
    """
    timings = measured["timings"]
    scale = {split: REAL_SPLITS[split] / counts[split] for split in REAL_SPLITS}
    epoch_s = measured["epoch_wall_s"] * scale["train"]  # train and valid grow alike (5:1)
    after_s = (timings.get("test", 0) + timings.get("outputs", 0)) * scale["test"]
    per_variant_s = SWEEP_EPOCHS * epoch_s + after_s
    # The cache is built once and shared by the variants (same image size).
    build_s = (timings.get("data") or 0) * sum(REAL_SPLITS.values()) / sum(counts.values())
    return {
        "kind": "projection from the measured end-to-end run, not a measured sweep",
        "minutes_per_variant": per_variant_s / 60,
        "cache_build_minutes": build_s / 60,
        "total_minutes": (SWEEP_VARIANTS * per_variant_s + build_s) / 60,
    }


def profile_training(
    model: str, device: str, image_size: int, batch_size: int, steps: int, out_dir: Path
) -> dict[str, Any]:
    """A torch.profiler trace of ``steps`` training steps (bf16, channels_last), and what it says.

    The trace is written gzipped beside the suite's JSON (open it in Perfetto or
    chrome://tracing); the summary counts kernels per step and the GPU's busy share.
    """
    from torch import nn
    from torch.profiler import ProfilerActivity, profile

    from deepinsight.models import create_model

    torch.manual_seed(0)
    net = create_model(model, in_chans=3).to(device).to(memory_format=torch.channels_last)
    fused = {"fused": True} if device == "cuda" else {}
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3, **fused)
    loss_fn = nn.BCEWithLogitsLoss()
    images = torch.rand(batch_size, 3, image_size, image_size, device=device)
    images = images.contiguous(memory_format=torch.channels_last)
    labels = (torch.rand(batch_size, device=device) < 0.5).float()

    def step() -> None:
        with torch.autocast(device, dtype=torch.bfloat16):
            loss = loss_fn(net(images).float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def sync() -> None:
        if device == "cuda":
            torch.cuda.synchronize()

    for _ in range(3):  # cuDNN autotuning and allocator warm-up, outside the trace
        step()
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    step_ms = (time.perf_counter() - start) / steps * 1e3  # without the profiler's overhead

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    with profile(activities=activities) as prof:
        for _ in range(steps):
            step()
        sync()
    trace = out_dir / f"trace_{model}_b{batch_size}.json"
    prof.export_chrome_trace(str(trace))
    with open(trace, "rb") as raw, gzip.open(f"{trace}.gz", "wb") as packed:
        shutil.copyfileobj(raw, packed)
    trace.unlink()

    events = prof.key_averages()
    on_gpu = [e for e in events if getattr(e, "self_device_time_total", 0) > 0]
    kernels = sum(e.count for e in on_gpu)
    busy_ms = sum(e.self_device_time_total for e in on_gpu) / 1e3 / steps
    launches = sum(e.count for e in events if e.key in ("cudaLaunchKernel", "cuLaunchKernel",
                                                         "cudaLaunchKernelExC"))  # fmt: skip
    by = "self_device_time_total" if on_gpu else "self_cpu_time_total"
    top = sorted(events, key=lambda e: getattr(e, by), reverse=True)[:8]
    busy = busy_ms / step_ms if on_gpu else None
    return {
        "model": model,
        "batch_size": batch_size,
        "image_size": image_size,
        "step_ms": step_ms,
        "images_per_s": batch_size / step_ms * 1e3,
        "gpu_busy_ms_per_step": busy_ms if on_gpu else None,
        "gpu_busy_fraction": busy,
        "kernels_per_step": kernels / steps if on_gpu else None,
        "launch_calls_per_step": launches / steps,
        "top_ops": [{"op": e.key, "ms_per_step": getattr(e, by) / 1e3 / steps} for e in top],
        "bound_by": None if busy is None else (
            "launches (the GPU idles between kernels)" if busy < 0.7 else "GPU work (kernels)"
        ),
        "trace": f"{trace.name}.gz",
    }  # fmt: skip
