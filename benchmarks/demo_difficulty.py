"""How hard is the demo dataset? Train one model on it and print the test AUROC and wall time.

A plain torch loop that mirrors ``python -m deepinsight.train`` (same model factory, image
decoding, transforms, optimiser, loss and batch size; the epoch with the best validation AUROC
is the one scored on test), without Lightning or Hydra, so the demo's ``artifact_strength`` can
be calibrated quickly. The Quickstart target: DenseNet121, grayscale, test AUROC in 0.90-0.995
within a few CPU minutes. It prints figures and never asserts on time.

    python benchmarks/demo_difficulty.py --seed 0
    python benchmarks/demo_difficulty.py --model custom_cnn --variant rgb --strength 0.3
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import roc_auc_score
from torch import nn
from torch.utils.data import DataLoader, Dataset

from deepinsight.config import config_dir
from deepinsight.data.demo import DEMO_DEFAULTS, ensure_demo_dataset
from deepinsight.data.image_io import load_image
from deepinsight.data.layouts import KAGGLE_IMAGE_DIR
from deepinsight.data.transforms import build_transforms, channels_for
from deepinsight.models import create_model


class DemoSplit(Dataset):
    """One split of a Kaggle-layout root, decoded once into memory; labels follow 1 = fake."""

    def __init__(self, root: Path, split: str, transform) -> None:
        table = pd.read_csv(root / f"{split}.csv", index_col=0)
        self.images = [load_image(root / KAGGLE_IMAGE_DIR / path) for path in table["path"]]
        self.labels = (table["label_str"] == "fake").to_numpy(dtype=np.float32)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        return self.transform(self.images[index]), self.labels[index]


@torch.no_grad()
def score(model: nn.Module, loader: DataLoader) -> float:
    """AUROC of P(fake) on one split."""
    model.eval()
    logits, labels = [], []
    for images, targets in loader:
        logits.append(model(images))
        labels.append(targets)
    return float(roc_auc_score(torch.cat(labels).numpy(), torch.cat(logits).numpy()))


def quickstart_training() -> tuple[int, int, float | None]:
    """(epochs, batch size, one-cycle peak lr or None) that ``python -m deepinsight.train``
    uses on the demo data.

    Read from conf/, their one source, so the calibration and the Quickstart cannot drift apart.
    """
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose("train", overrides=["logger=none"])
    scheduler = cfg.model.scheduler
    max_lr = float(scheduler.max_lr) if scheduler and "OneCycleLR" in scheduler._target_ else None
    return int(cfg.trainer.max_epochs), int(cfg.data.batch_size), max_lr


def parse_args() -> argparse.Namespace:
    epochs, batch_size, max_lr = quickstart_training()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strength", type=float, default=DEMO_DEFAULTS["artifact_strength"])
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--image-size", type=int, default=DEMO_DEFAULTS["image_size"])
    parser.add_argument("--n-train", type=int, default=DEMO_DEFAULTS["n_train"])
    parser.add_argument("--n-valid", type=int, default=DEMO_DEFAULTS["n_valid"])
    parser.add_argument("--n-test", type=int, default=DEMO_DEFAULTS["n_test"])
    parser.add_argument("--seed", type=int, default=0, help="training seed (init, shuffling)")
    parser.add_argument("--data-seed", type=int, default=DEMO_DEFAULTS["seed"])
    parser.add_argument("--jpeg-quality", type=int, default=DEMO_DEFAULTS["jpeg_quality"])
    parser.add_argument("--model", default="densenet121")
    parser.add_argument("--variant", default="grayscale", help="rgb, grayscale or augmented")
    parser.add_argument("--batch-size", type=int, default=batch_size)
    parser.add_argument("--lr", type=float, default=1e-3, help="the constant lr (no --max-lr)")
    parser.add_argument(
        "--max-lr", type=float, default=max_lr,
        help="one-cycle peak lr, stepped per batch, as the Quickstart (0: constant --lr)",
    )  # fmt: skip
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--cache-dir", type=Path, default=None, help="default: a temporary folder, removed after"
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="demo-difficulty-") as scratch:
        started = time.perf_counter()
        root = ensure_demo_dataset(
            args.cache_dir or scratch,
            n_train=args.n_train,
            n_valid=args.n_valid,
            n_test=args.n_test,
            image_size=args.image_size,
            artifact_strength=args.strength,
            seed=args.data_seed,
            jpeg_quality=args.jpeg_quality,
        )
        build_s = time.perf_counter() - started
        splits = {
            split: DemoSplit(
                root, split, build_transforms(args.variant, args.image_size, train=split == "train")
            )
            for split in ("train", "valid", "test")
        }
    torch.manual_seed(args.seed)
    shuffle = torch.Generator().manual_seed(args.seed)
    train_loader = DataLoader(
        splits["train"], batch_size=args.batch_size, shuffle=True, generator=shuffle,
        drop_last=True,  # as DeepfakeDataModule's training loader
    )  # fmt: skip
    eval_loaders = {
        split: DataLoader(splits[split], batch_size=args.batch_size) for split in ("valid", "test")
    }
    model = create_model(args.model, in_chans=channels_for(args.variant))
    optimiser = torch.optim.Adam(model.parameters(), lr=args.lr)
    cycle = None
    if args.max_lr:
        steps = args.epochs * len(train_loader)
        cycle = torch.optim.lr_scheduler.OneCycleLR(optimiser, args.max_lr, total_steps=steps)
    loss_fn = nn.BCEWithLogitsLoss()

    print(f"demo dataset built/loaded in {build_s:.1f} s: {root}")
    started = time.perf_counter()
    best_auroc, best_epoch, best_state = -1.0, 0, None
    for epoch in range(1, args.epochs + 1):
        model.train()
        losses = []
        for images, targets in train_loader:
            optimiser.zero_grad()
            loss = loss_fn(model(images), targets)
            loss.backward()
            optimiser.step()
            if cycle is not None:
                cycle.step()
            losses.append(loss.item())
        val_auroc = score(model, eval_loaders["valid"])
        if val_auroc > best_auroc:
            best_auroc, best_epoch = val_auroc, epoch
            best_state = copy.deepcopy(model.state_dict())
        print(
            f"epoch {epoch}: train loss {np.mean(losses):.4f}  val AUROC {val_auroc:.4f}  "
            f"({time.perf_counter() - started:.0f} s)",
            flush=True,
        )
    model.load_state_dict(best_state)
    test_auroc = score(model, eval_loaders["test"])
    wall = time.perf_counter() - started
    print(
        f"RESULT model={args.model} variant={args.variant} size={args.image_size} "
        f"strength={args.strength} n_train={args.n_train} epochs={args.epochs} seed={args.seed} "
        f"data_seed={args.data_seed}: best epoch {best_epoch} val AUROC {best_auroc:.4f} "
        f"test AUROC {test_auroc:.4f}  train+eval wall {wall:.0f} s"
    )


if __name__ == "__main__":
    main()
