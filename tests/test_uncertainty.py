"""Bootstrap confidence intervals: known cases, agreement with a slow reference, determinism."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, average_precision_score, f1_score, roc_auc_score

from deepinsight.uncertainty import CI_METRICS, bootstrap_ci, with_confidence_intervals


def test_perfect_separation_gives_the_degenerate_interval_one_one():
    labels = np.array([0] * 20 + [1] * 20)
    scores = np.concatenate([np.linspace(0.0, 0.4, 20), np.linspace(0.6, 1.0, 20)])
    ci = bootstrap_ci(labels, scores, n_bootstrap=300, seed=1)["ci95"]
    for metric in CI_METRICS:
        assert ci[metric] == [1.0, 1.0], metric


def test_constant_scores_give_auroc_one_half_in_every_resample():
    labels = np.array([0, 1] * 15)
    ci = bootstrap_ci(labels, np.full(30, 0.3), n_bootstrap=200, seed=0)["ci95"]
    assert ci["auroc"] == [0.5, 0.5]  # every pair is a tie, counted half
    assert ci["f1"] == [0.0, 0.0]  # nothing predicted fake at threshold 0.5


def test_intervals_equal_a_slow_scikit_learn_loop_over_the_same_resamples():
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 2, 50)
    scores = np.round(rng.random(50) * (0.5 + 0.4 * labels), 1)  # many ties
    n_bootstrap, seed, threshold = 150, 3, 0.4
    found = bootstrap_ci(labels, scores, threshold, n_bootstrap=n_bootstrap, seed=seed)

    draws = np.random.default_rng(seed)
    values: dict[str, list[float]] = {m: [] for m in CI_METRICS}
    skipped = 0
    for _ in range(n_bootstrap):
        index = draws.integers(0, 50, size=50)
        y, s = labels[index], scores[index]
        if len(set(y)) < 2:
            skipped += 1
            continue
        pred = (s >= threshold).astype(int)
        values["auroc"].append(roc_auc_score(y, s))
        values["ap"].append(average_precision_score(y, s))
        values["accuracy"].append(accuracy_score(y, pred))
        values["f1"].append(f1_score(y, pred, zero_division=0))
        values["macro_f1"].append(f1_score(y, pred, average="macro", zero_division=0))
    for metric in CI_METRICS:
        expected = np.percentile(values[metric], [2.5, 97.5])
        assert found["ci95"][metric] == pytest.approx(expected, abs=1e-12), metric
    assert found["bootstrap"]["n_skipped"] == skipped


def test_same_seed_same_interval_other_seed_other_interval():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200)
    scores = np.clip(0.3 * labels + rng.normal(0.35, 0.2, 200), 0, 1)
    first = bootstrap_ci(labels, scores, n_bootstrap=400, seed=5)
    assert bootstrap_ci(labels, scores, n_bootstrap=400, seed=5) == first
    assert bootstrap_ci(labels, scores, n_bootstrap=400, seed=6)["ci95"] != first["ci95"]
    low, high = first["ci95"]["auroc"]
    assert low < roc_auc_score(labels, scores) < high


def test_one_class_data_has_no_interval_and_every_resample_is_counted_skipped():
    found = bootstrap_ci(np.ones(10), np.linspace(0, 1, 10), n_bootstrap=50, seed=0)
    assert found["ci95"]["auroc"] is None and found["bootstrap"]["n_skipped"] == 50


def test_with_confidence_intervals_uses_the_summary_threshold():
    labels = np.array([0, 0, 1, 1] * 5)
    scores = np.array([0.1, 0.6, 0.7, 0.9] * 5)
    summary = {"threshold": 0.65, "accuracy": 1.0}
    block = with_confidence_intervals(summary, labels, scores, n_bootstrap=100, seed=0)
    assert block["accuracy"] == 1.0 and block["ci95"]["accuracy"] == [1.0, 1.0]
    assert block["bootstrap"]["threshold"] == 0.65


def test_a_video_of_identical_frames_counts_once_in_the_cluster_bootstrap():
    # Ten videos, each twenty copies of one frame: resampling videos with all their frames is
    # the plain bootstrap of the ten videos (same draws; every count times twenty), while
    # resampling frames one by one pretends to 200 independent predictions.
    rng = np.random.default_rng(2)
    labels = np.array([0, 1] * 5)
    scores = np.clip(0.2 * labels + rng.normal(0.4, 0.2, 10), 0, 1)
    frames_labels, frames_scores = np.repeat(labels, 20), np.repeat(scores, 20)
    videos = np.repeat([f"v{i}.mp4" for i in range(10)], 20)
    by_video = bootstrap_ci(frames_labels, frames_scores, n_bootstrap=300, seed=4, clusters=videos)
    plain = bootstrap_ci(labels, scores, n_bootstrap=300, seed=4)
    for metric in CI_METRICS:
        assert by_video["ci95"][metric] == pytest.approx(plain["ci95"][metric], abs=1e-12)
    by_frame = bootstrap_ci(frames_labels, frames_scores, n_bootstrap=300, seed=4)["ci95"]
    width = {name: ci["auroc"][1] - ci["auroc"][0] for name, ci in
             (("video", by_video["ci95"]), ("frame", by_frame))}  # fmt: skip
    assert width["frame"] < 0.5 * width["video"]
    assert "videos, each drawn with all its predictions" in by_video["bootstrap"]["method"]


def test_one_prediction_per_cluster_is_the_plain_bootstrap():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 40)
    scores = rng.random(40)
    plain = bootstrap_ci(labels, scores, n_bootstrap=200, seed=1)
    each_own = bootstrap_ci(labels, scores, n_bootstrap=200, seed=1, clusters=np.arange(40))
    for metric in CI_METRICS:
        assert each_own["ci95"][metric] == pytest.approx(plain["ci95"][metric], abs=1e-12)
    with pytest.raises(ValueError, match="3 keys for 40 predictions"):
        bootstrap_ci(labels, scores, clusters=[1, 2, 3])
