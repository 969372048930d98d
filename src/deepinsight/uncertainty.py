"""Bootstrap 95% confidence intervals for the test metrics of one set of predictions.

Method: the percentile bootstrap over test images. Each resample draws ``n`` images with
replacement from the ``n`` test images; every metric is recomputed on it, and the interval is
the 2.5th and 97.5th percentile of the resampled values. Resamples holding one class only (AUROC
and AP are undefined there) are skipped and counted in ``n_skipped``. The generator is seeded,
so the same predictions and seed always give the same interval.

Predictions that are not independent, such as the frames of one video, are resampled in their
groups (``clusters``, the cluster bootstrap): a resample draws as many groups as there are, with
replacement, and takes every prediction of each drawn group. Resampling correlated frames one by
one would pretend to have more evidence than the videos hold, and give too narrow intervals.

It is vectorised: a resample is a vector of draw counts per distinct score, so every metric of
a block of resamples is a few matrix operations (no Python loop over resamples). AUROC is the
Mann-Whitney statistic with ties counted half, and AP is scikit-learn's step-wise sum over
distinct thresholds, so each resample's value equals scikit-learn's on the resampled images.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# Metrics with an interval; f1 is the fake class's, macro_f1 the mean over both classes.
CI_METRICS = ("auroc", "ap", "accuracy", "f1", "macro_f1")
DEFAULT_N_BOOTSTRAP = 1000
DEFAULT_SEED = 0
CONFIDENCE = 0.95
METHOD = "percentile bootstrap over test images; one-class resamples skipped"
CLUSTER_METHOD = (
    "percentile bootstrap over {unit}s, each drawn with all its predictions; "
    "one-class resamples skipped"
)
# Resamples per block: bounds memory at BLOCK * n counts.
_BLOCK = 200


def _metrics_from_counts(
    pos: np.ndarray, neg: np.ndarray, predicted_fake: np.ndarray
) -> dict[str, np.ndarray]:
    """Metrics of each resample, from draw counts per distinct score (ascending scores).

    ``pos``/``neg``: (B, G) counts of fake/real images drawn at each distinct score;
    ``predicted_fake``: (G,) whether that score is at or above the threshold.
    """
    n_pos, n_neg = pos.sum(1), neg.sum(1)
    # AUROC: pairs (fake, real) with the fake scored higher, ties counted half.
    neg_below = np.cumsum(neg, axis=1) - neg
    pairs = (pos * (neg_below + 0.5 * neg)).sum(1)
    auroc = pairs / np.maximum(n_pos * n_neg, 1)
    # AP: sum over distinct thresholds, high to low, of (recall step) * precision.
    tp = np.cumsum(pos[:, ::-1], axis=1)
    fp = np.cumsum(neg[:, ::-1], axis=1)
    precision = tp / np.maximum(tp + fp, 1)
    ap = (pos[:, ::-1] * precision).sum(1) / np.maximum(n_pos, 1)
    # Hard decisions at the threshold (scikit-learn's zero_division=0 for F1).
    tp_t = pos[:, predicted_fake].sum(1)
    fp_t = neg[:, predicted_fake].sum(1)
    fn_t, tn_t = n_pos - tp_t, n_neg - fp_t
    f1_fake = 2 * tp_t / np.maximum(2 * tp_t + fp_t + fn_t, 1)
    f1_real = 2 * tn_t / np.maximum(2 * tn_t + fn_t + fp_t, 1)
    return {
        "auroc": auroc,
        "ap": ap,
        "accuracy": (tp_t + tn_t) / (n_pos + n_neg),
        "f1": f1_fake,
        "macro_f1": (f1_fake + f1_real) / 2,
    }


def bootstrap_ci(
    labels: Any,
    scores: Any,
    threshold: float = 0.5,
    n_bootstrap: int = DEFAULT_N_BOOTSTRAP,
    seed: int = DEFAULT_SEED,
    clusters: Any = None,
    cluster_unit: str = "video",
) -> dict[str, Any]:
    """``{"ci95": {metric: [lo, hi]}, "bootstrap": {...method...}}`` for one test set.

    ``labels`` are 1 = fake, ``scores`` P(fake); accuracy and F1 use fake iff score >=
    ``threshold``. An interval is None when no resample holds both classes. ``clusters`` (one
    key per prediction, e.g. its video's path) resamples whole groups instead of predictions;
    ``cluster_unit`` names a group in the method's description.
    """
    y = np.asarray(labels).astype(np.int64).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    n = y.size
    distinct, group = np.unique(s, return_inverse=True)
    n_groups = distinct.size
    predicted_fake = distinct >= threshold
    if clusters is not None:
        # Per cluster, its predictions' counts per (distinct score, class): a resample's counts
        # are then its cluster draw counts times this matrix.
        keys = np.asarray(clusters).ravel()
        if keys.size != n:
            raise ValueError(f"clusters has {keys.size} keys for {n} predictions")
        cluster = np.unique(keys, return_inverse=True)[1].ravel()
        n_clusters = int(cluster.max()) + 1 if n else 0
        membership = np.zeros((n_clusters, n_groups * 2))
        np.add.at(membership, (cluster, group * 2 + y), 1.0)
    rng = np.random.default_rng(seed)
    values: dict[str, list[np.ndarray]] = {m: [] for m in CI_METRICS}
    skipped = 0
    for start in range(0, n_bootstrap, _BLOCK):
        size = min(_BLOCK, n_bootstrap - start)
        if clusters is not None:
            drawn = rng.integers(0, n_clusters, size=(size, n_clusters))
            # Draw counts per (resample, cluster) in one bincount, as below per prediction.
            flat = np.arange(size)[:, None] * n_clusters + drawn
            per_cluster = np.bincount(flat.ravel(), minlength=size * n_clusters)
            per_cluster = per_cluster.reshape(size, n_clusters).astype(np.float64)
            counts = (per_cluster @ membership).reshape(size, n_groups, 2)
        else:
            draws = rng.integers(0, n, size=(size, n)) if n else np.zeros((size, 0), np.int64)
            # Counts per (resample, distinct score, class) in one bincount.
            flat = (np.arange(size)[:, None] * n_groups + group[draws]) * 2 + y[draws]
            counts = np.bincount(flat.ravel(), minlength=size * n_groups * 2)
            counts = counts.reshape(size, n_groups, 2).astype(np.float64)
        neg, pos = counts[..., 0], counts[..., 1]
        both = (pos.sum(1) > 0) & (neg.sum(1) > 0)
        skipped += int((~both).sum())
        for metric, found in _metrics_from_counts(pos[both], neg[both], predicted_fake).items():
            values[metric].append(found)
    tail = 100 * (1 - CONFIDENCE) / 2
    ci: dict[str, list[float] | None] = {}
    for metric in CI_METRICS:
        found = np.concatenate(values[metric]) if values[metric] else np.empty(0)
        ci[metric] = (
            [float(v) for v in np.percentile(found, [tail, 100 - tail])] if found.size else None
        )
    return {
        "ci95": ci,
        "bootstrap": {
            "method": METHOD if clusters is None else CLUSTER_METHOD.format(unit=cluster_unit),
            "n_bootstrap": int(n_bootstrap),
            "n_skipped": skipped,
            "seed": int(seed),
            "threshold": float(threshold),
        },
    }


def with_confidence_intervals(
    summary: dict[str, Any],
    labels: Any,
    scores: Any,
    n_bootstrap: int = DEFAULT_N_BOOTSTRAP,
    seed: int = DEFAULT_SEED,
    clusters: Any = None,
) -> dict[str, Any]:
    """``summary`` (a results.json ``test`` block) with ``ci95`` and ``bootstrap`` added
    (``clusters``: resample groups of predictions, see ``bootstrap_ci``)."""
    found = bootstrap_ci(labels, scores, summary["threshold"], n_bootstrap, seed, clusters)
    return {**summary, **found}
