"""What a trained network's features know: PCA plot and a linear SVM probe.

The seed study plotted the first two principal components of each model's pooled features and
argued that the real/fake clusters separate well enough for an SVM. Here that claim is measured:
a linear SVM is trained on features of a train-split sample and scored on a test-split sample,
and the number goes into ``results.json`` as ``embedding_probe``.

Memory stays bounded: at most ``max_samples`` images are embedded per split, drawn at random
(a test folder is often sorted by class, so "the first N" could be all real).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
from torch import nn
from torch.utils.data import DataLoader, IterableDataset

from deepinsight import CLASS_NAMES
from deepinsight.analysis.plots import save_embedding_pca
from deepinsight.data.datasets import random_subset
from deepinsight.errors import DeepInsightError

EMBEDDINGS_PCA_FILENAME = "embeddings_pca.png"


def _capped_loader(loader: Iterable, max_samples: int, seed: int) -> Iterable:
    """``loader`` over a random ``max_samples``-item subset (``random_subset``), if it is larger.

    Only map-style DataLoaders can be subsampled; anything else is streamed and cut off at
    ``max_samples`` by the caller.
    """
    if not isinstance(loader, DataLoader) or loader.batch_size is None:
        return loader
    if isinstance(loader.dataset, IterableDataset):
        return loader
    subset = random_subset(loader.dataset, max_samples, seed)
    if subset is loader.dataset:
        return loader
    return DataLoader(
        subset,
        batch_size=loader.batch_size,
        shuffle=False,
        num_workers=loader.num_workers,
        collate_fn=loader.collate_fn,
        pin_memory=loader.pin_memory,
        worker_init_fn=loader.worker_init_fn,
    )


def _images_and_labels(batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
    # DeepInsight loaders yield (images, labels, indices); plain (images, labels) is also fine.
    if isinstance(batch, (tuple, list)) and len(batch) in (2, 3):
        return batch[0], batch[1]
    raise TypeError(f"expected batches (images, labels[, indices]), got {type(batch).__name__}")


def extract_features(
    net: nn.Module,
    dataloader: Iterable,
    max_samples: int,
    device: torch.device | str | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Pooled features ``net.forward_features(images)`` of at most ``max_samples`` images.

    Runs in eval mode under ``torch.no_grad`` and restores the net's train/eval mode afterwards
    (autocast, if wanted, is the caller's). ``device`` is where batches are sent; by default the
    device of the net's parameters (the net itself is never moved). A DataLoader larger than
    ``max_samples`` is subsampled at random with ``seed``.

    Returns ``(features (n, num_features) float32, labels (n,) int64)`` with 1 = fake.
    """
    if max_samples < 1:
        raise DeepInsightError(
            f"max_samples must be a positive number of images, got {max_samples}"
        )
    if device is None:
        device = next(net.parameters()).device
    features: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    taken = 0
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            for batch in _capped_loader(dataloader, max_samples, seed):
                images, batch_labels = _images_and_labels(batch)
                keep = min(len(images), max_samples - taken)
                feats = net.forward_features(images[:keep].to(device, non_blocking=True))
                # .float(): under autocast features may be half precision.
                features.append(feats.float().cpu().numpy())
                labels.append(torch.as_tensor(batch_labels[:keep]).long().cpu().numpy())
                taken += keep
                if taken >= max_samples:
                    break
    finally:
        net.train(was_training)
    if taken == 0:
        raise DeepInsightError("no images to embed: the dataloader is empty")
    return np.concatenate(features), np.concatenate(labels)


def linear_probe(
    train_features: np.ndarray,
    train_labels: np.ndarray,
    test_features: np.ndarray,
    test_labels: np.ndarray,
    seed: int = 0,
) -> dict[str, Any]:
    """Train a linear SVM on train-split features and score it on test-split features.

    The SVM is scikit-learn's ``LinearSVC`` behind a ``StandardScaler`` (feature scales differ
    wildly between backbones). AUROC uses ``decision_function``; it is ``None`` when the test
    sample holds one class only. Returns ``accuracy``, ``auroc``, ``n_train``, ``n_test``.
    """
    y_train = np.asarray(train_labels).astype(int).ravel()
    y_test = np.asarray(test_labels).astype(int).ravel()
    present = np.unique(y_train)
    if present.size < 2:
        only = CLASS_NAMES[int(present[0])] if present.size else "nothing"
        raise DeepInsightError(
            f"linear probe needs real and fake training images, the sample holds only {only}; "
            "raise max_samples or check the train split"
        )
    if len(y_test) == 0:
        raise DeepInsightError("linear probe needs test images, the test sample is empty")
    probe = make_pipeline(StandardScaler(), LinearSVC(random_state=seed, max_iter=10_000))
    probe.fit(np.asarray(train_features, dtype=float), y_train)
    x_test = np.asarray(test_features, dtype=float)
    auroc = None
    if np.unique(y_test).size == 2:
        auroc = float(roc_auc_score(y_test, probe.decision_function(x_test)))
    return {
        "accuracy": float(accuracy_score(y_test, probe.predict(x_test))),
        "auroc": auroc,
        "n_train": int(len(y_train)),
        "n_test": int(len(y_test)),
    }


def sample_rows(
    features: np.ndarray, labels: np.ndarray, max_samples: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """At most ``max_samples`` rows of already computed features, chosen as ``random_subset``
    chooses images (seeded, sorted), so a capped sample still holds both classes."""
    size = len(labels)
    if size <= max_samples:
        return np.asarray(features), np.asarray(labels)
    generator = torch.Generator().manual_seed(seed)
    chosen = np.sort(torch.randperm(size, generator=generator)[:max_samples].numpy())
    return np.asarray(features)[chosen], np.asarray(labels)[chosen]


def analyse_test_embeddings(
    net: nn.Module,
    train_loader: Iterable,
    test_loader: Iterable | tuple[np.ndarray, np.ndarray],
    run_dir: str | Path,
    max_samples: int = 2000,
    device: torch.device | str | None = None,
    title: str = "Test features, PCA",
    seed: int = 0,
) -> dict[str, Any]:
    """Write ``embeddings_pca.png`` into ``run_dir`` and return results.json's ``embedding_probe``.

    The PCA plot shows test-split features; the linear probe is trained on up to ``max_samples``
    train-split images and scored on up to ``max_samples`` test-split images. Pass a train
    loader with evaluation transforms if the probe should see what the test sees.
    ``test_loader`` may instead be the test features already computed, ``(features, labels)``
    (the training run keeps them from its test pass), which saves a second pass.
    """
    train_x, train_y = extract_features(net, train_loader, max_samples, device=device, seed=seed)
    if isinstance(test_loader, tuple):
        test_x, test_y = sample_rows(*test_loader, max_samples, seed=seed)
    else:
        test_x, test_y = extract_features(net, test_loader, max_samples, device=device, seed=seed)
    pca = save_embedding_pca(test_x, test_y, Path(run_dir) / EMBEDDINGS_PCA_FILENAME, title=title)
    probe = linear_probe(train_x, train_y, test_x, test_y, seed=seed)
    return {
        **probe,
        "max_samples": int(max_samples),
        "pca_explained_variance": pca["explained_variance_ratio"],
    }
