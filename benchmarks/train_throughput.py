"""Training step throughput: DeepInsight through Lightning against a plain PyTorch loop.

    python benchmarks/train_throughput.py --device cpu --model custom_cnn --image-size 64
    python benchmarks/train_throughput.py --device cpu --model densenet121 --image-size 64 \\
        --in-chans 1 --precision bf16-mixed --channels-last
    python benchmarks/train_throughput.py --device cuda --model densenet121 --image-size 224 \\
        --batch-size 32 --precision bf16-mixed --channels-last --compile

Both sides train the same network (``create_model``), with the same seed, batch size, Adam
(fused on CUDA), precision (``torch.autocast``, plus a GradScaler for 16-mixed), memory format
and data: one set of pre-collated batches held in (pinned, on CUDA) memory, so only the training
step is compared. The Lightning side is the real ``DeepfakeClassifier`` (loss, per-step train
metrics and logging) run by a ``lightning.Trainer``; the plain side is a hand-written loop.
Runs alternate (plain, Lightning, plain, Lightning, ...) and the median of each is printed, since
a shared machine drifts by +-15% between runs. Prints images/s, the ratio and, on CUDA, peak GPU
memory. Needs no Hydra: the GPU suite imports it.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import statistics
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

MODELS = ("custom_cnn", "densenet121", "efficientnet")
PRECISIONS = ("32-true", "bf16-mixed", "16-mixed")


def make_batches(args) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(0)
    batches = []
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    for b in range(args.warmup + args.steps):
        images = torch.rand(
            args.batch_size, args.in_chans, args.image_size, args.image_size, generator=generator
        ).contiguous(memory_format=memory_format)
        labels = (torch.rand(args.batch_size, generator=generator) < 0.5).float()
        indices = torch.arange(b * args.batch_size, (b + 1) * args.batch_size)
        if args.device == "cuda":
            images, labels, indices = (t.pin_memory() for t in (images, labels, indices))
        batches.append((images, labels, indices))
    return batches


def optimizer_factory(args) -> functools.partial:
    extra = {"fused": True} if args.device == "cuda" else {}
    return functools.partial(torch.optim.Adam, lr=1e-3, **extra)


def prepare(net: nn.Module, args) -> nn.Module:
    if args.channels_last:
        net = net.to(memory_format=torch.channels_last)
    return net


def autocast(args):
    dtype = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(args.precision)
    return torch.autocast(args.device, dtype=dtype, enabled=dtype is not None)


def run_plain(args, batches) -> float:
    from deepinsight.lightning_module import compile_options
    from deepinsight.models import create_model

    torch.manual_seed(0)
    device = torch.device(args.device)
    net = prepare(create_model(args.model, in_chans=args.in_chans), args).to(device)
    forward = torch.compile(net, **compile_options(args.compile)) if args.compile else net
    optimizer = optimizer_factory(args)(net.parameters())
    scaler = torch.amp.GradScaler(args.device, enabled=args.precision == "16-mixed")
    loss_fn = nn.BCEWithLogitsLoss()
    net.train()
    start = 0.0
    for step, (images, labels, _) in enumerate(batches):
        if step == args.warmup:
            sync(args)
            start = time.perf_counter()
        images = images.to(device, non_blocking=True)
        labels = labels.to(device, non_blocking=True)
        with autocast(args):
            loss = loss_fn(forward(images).float(), labels)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    sync(args)
    return args.steps * args.batch_size / (time.perf_counter() - start)


def run_lightning(args, batches) -> float:
    import lightning as L

    from deepinsight.lightning_module import DeepfakeClassifier

    torch.manual_seed(0)
    # DeepInsight's own switches: NHWC, torch.compile, and fused Adam on CUDA (automatic).
    model = DeepfakeClassifier(
        net={"name": args.model, "in_chans": args.in_chans},
        optimizer=functools.partial(torch.optim.Adam, lr=1e-3),
        channels_last=args.channels_last,
        compile=args.compile,
    )
    timer = StepTimer(args)
    trainer = L.Trainer(
        accelerator="gpu" if args.device == "cuda" else "cpu", devices=1,
        precision=args.precision, max_steps=len(batches), max_epochs=1,
        limit_val_batches=0, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, callbacks=[timer],
        num_sanity_val_steps=0,
    )  # fmt: skip
    # A list would be read as several dataloaders; a plain iterable is one.
    trainer.fit(model, train_dataloaders=Batches(batches))
    return args.steps * args.batch_size / (timer.stop - timer.start)


class Batches:
    def __init__(self, batches: list) -> None:
        self.batches = batches

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class StepTimer:
    """A Lightning callback that times the steps after the warm-up (duck-typed: no import)."""

    def __new__(cls, args):
        import lightning as L

        class _Timer(L.Callback):
            def __init__(self) -> None:
                self.start = self.stop = 0.0

            def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
                if batch_idx == args.warmup:
                    sync(args)
                    self.start = time.perf_counter()

            def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
                sync(args)
                self.stop = time.perf_counter()

        return _Timer()


def sync(args) -> None:
    if args.device == "cuda":
        torch.cuda.synchronize()


def measure(args) -> dict[str, Any]:
    """Alternate the two sides ``args.repeats`` times; medians, ratio and peak GPU memory."""
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_float32_matmul_precision("high")
    if args.device == "cuda":
        torch.backends.cudnn.benchmark = True
    batches = make_batches(args)
    rates: dict[str, list[float]] = {"plain": [], "lightning": []}
    peak: dict[str, float] = {}
    for _ in range(args.repeats):
        for name, fn in (("plain", run_plain), ("lightning", run_lightning)):
            gc.collect()  # the last run's model and optimizer must not count in this peak
            if args.device == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
            rates[name].append(fn(args, batches))
            if args.device == "cuda":
                peak[name] = torch.cuda.max_memory_allocated() / 2**30
    plain, lightning = (statistics.median(rates[k]) for k in ("plain", "lightning"))
    return {
        **{k: v for k, v in vars(args).items() if k != "json"},
        "plain_images_per_s": plain,
        "lightning_images_per_s": lightning,
        "lightning_over_plain": lightning / plain,
        "runs": rates,
        "peak_gpu_memory_gib": peak or None,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--model", default="custom_cnn", choices=MODELS)
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--in-chans", type=int, default=3, help="1 = the grayscale variant")
    p.add_argument("--precision", default="32-true", choices=PRECISIONS)
    p.add_argument("--channels-last", action="store_true")
    p.add_argument(
        "--compile", nargs="?", const=True, default=False, metavar="MODE",
        help="torch.compile the network (both sides); optionally a mode, e.g. reduce-overhead",
    )  # fmt: skip
    p.add_argument("--steps", type=int, default=20, help="timed steps per run")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps first (compile, cuDNN)")
    p.add_argument("--repeats", type=int, default=3, help="alternating runs of each side")
    p.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's)")
    p.add_argument(
        "--knobs", action="store_true",
        help="instead: the plain loop in fp32/bf16 x NCHW/NHWC, alternating, medians and ratios",
    )  # fmt: skip
    p.add_argument("--json", type=Path, help="also write the figures here")
    return p


def knobs(args) -> dict[str, Any]:
    """Plain-loop images/s for each precision x memory format, alternated ``repeats`` times."""
    if args.threads:
        torch.set_num_threads(args.threads)
    low = "bf16-mixed" if args.device == "cpu" or torch.cuda.is_bf16_supported() else "16-mixed"
    combos = [(p, cl) for p in ("32-true", low) for cl in (False, True)]
    rates: dict[str, list[float]] = {}
    for _ in range(args.repeats):
        for precision, channels_last in combos:
            run = argparse.Namespace(**{**vars(args), "precision": precision,
                                        "channels_last": channels_last})  # fmt: skip
            name = f"{precision} {'NHWC' if channels_last else 'NCHW'}"
            rates.setdefault(name, []).append(run_plain(run, make_batches(run)))
    medians = {name: statistics.median(r) for name, r in rates.items()}
    base = medians["32-true NCHW"]
    threads = torch.get_num_threads()
    print(f"{args.model} {args.image_size} px, in_chans {args.in_chans}, batch {args.batch_size}, "
          f"{args.device}, {threads} threads, medians of {args.repeats}:")  # fmt: skip
    for name, rate in medians.items():
        print(f"  {name:>17}: {rate:7.1f} images/s  {rate / base:5.2f}x fp32 NCHW")
    return {"medians": medians, "runs": rates, **{k: v for k, v in vars(args).items()
                                                   if k != "json"}}  # fmt: skip


def main() -> None:
    args = parser().parse_args()
    if args.knobs:
        result = knobs(args)
        if args.json:
            args.json.write_text(json.dumps(result, indent=1) + "\n")
        return
    result = measure(args)
    fmt = "channels_last" if args.channels_last else "contiguous"
    print(
        f"{args.model} {args.image_size} px, batch {args.batch_size}, {args.precision}, {fmt}"
        f"{f', compiled ({args.compile})' if args.compile else ''}, {args.device}"
    )
    print(f"plain PyTorch loop: {result['plain_images_per_s']:8.1f} images/s")
    print(f"Lightning (DeepfakeClassifier + Trainer): {result['lightning_images_per_s']:8.1f}")
    print(f"ratio Lightning / plain: {result['lightning_over_plain']:.3f}")
    if result["peak_gpu_memory_gib"]:
        print(f"peak GPU memory (GiB): {result['peak_gpu_memory_gib']}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
