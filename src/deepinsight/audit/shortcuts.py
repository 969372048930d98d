"""Test each group of non-content features for how well it alone tells real from fake.

Per group (``features.GROUPS``): a gradient-boosted tree classifier (scikit-learn's
``HistGradientBoostingClassifier``), cross-validated over the files (stratified 5-fold), and the
AUROC of its out-of-fold scores with a percentile-bootstrap 95% CI. A group whose AUROC is above
``flag_above`` (0.6) is flagged as a shortcut, and its verdict names the single feature that
separates the classes best and how ("fakes are all PNG, reals all JPEG"; "width: fakes median
1024, reals 256"). Chance is 0.5: a clean dataset's groups sit near it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from deepinsight.audit.features import CATEGORICAL, GROUPS
from deepinsight.uncertainty import bootstrap_ci

FLAG_ABOVE = 0.6
MAX_FOLDS = 5


def audit_table(
    table: pd.DataFrame,
    labels: np.ndarray,
    flag_above: float = FLAG_ABOVE,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """Per group: AUROC, its CI, whether it is flagged, and the feature that leaks most."""
    folds = min(MAX_FOLDS, int(np.bincount(labels, minlength=2).min()))
    results = {}
    for group, columns in GROUPS.items():
        if folds < 2:
            results[group] = {"auroc": None, "ci95": None, "flagged": False,
                              "note": "needs at least 2 images of each class"}  # fmt: skip
            continue
        matrix = _encode(table[list(columns)])
        classifier = HistGradientBoostingClassifier(max_iter=100, random_state=seed)
        splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
        scores = cross_val_predict(classifier, matrix, labels, cv=splitter, method="predict_proba")
        scores = scores[:, 1]
        auroc = float(roc_auc_score(labels, scores))
        ci = bootstrap_ci(labels, scores, 0.5, n_bootstrap, seed)["ci95"]["auroc"]
        leak = strongest_feature(table, labels, columns)
        results[group] = {
            "auroc": auroc,
            "ci95": ci,
            "flagged": auroc > flag_above,
            "features": list(columns),
            "strongest_feature": leak,
        }
    return results


def _encode(frame: pd.DataFrame) -> np.ndarray:
    """Numbers as they are (missing: -1); categories one-hot."""
    categorical = [c for c in frame.columns if c in CATEGORICAL]
    numeric = frame.drop(columns=categorical).apply(pd.to_numeric, errors="coerce").fillna(-1)
    dummies = pd.get_dummies(frame[categorical].astype(str)) if categorical else None
    parts = [numeric.to_numpy(dtype=np.float64)]
    if dummies is not None and not dummies.empty:
        parts.append(dummies.to_numpy(dtype=np.float64))
    return np.hstack(parts)


def strongest_feature(
    table: pd.DataFrame, labels: np.ndarray, columns: Sequence[str]
) -> dict[str, Any]:
    """The one feature of ``columns`` that separates the classes best, and how it differs."""
    best: dict[str, Any] = {"feature": None, "auroc": 0.5, "describe": "no feature separates"}
    for column in columns:
        values = table[column]
        if column in CATEGORICAL:
            codes = values.astype(str).astype("category").cat.codes.to_numpy()
            # The best ordering of the categories: each scored by its fake fraction.
            frac = pd.Series(labels).groupby(codes).mean()
            scores = frac.reindex(codes).to_numpy()
        else:
            scores = pd.to_numeric(values, errors="coerce").fillna(-1).to_numpy()
        if len(set(scores.tolist())) < 2:
            continue
        auroc = float(roc_auc_score(labels, scores))
        strength = max(auroc, 1 - auroc)
        if strength > best["auroc"]:
            best = {"feature": column, "auroc": strength,
                    "describe": describe(column, values, labels)}  # fmt: skip
    return best


def describe(column: str, values: pd.Series, labels: np.ndarray) -> str:
    """How a feature differs between fakes and reals, in words."""
    fakes, reals = values[labels == 1], values[labels == 0]
    if column in CATEGORICAL or column in ("has_exif", "bits"):
        return f"{column}: fakes {_shares(fakes.astype(str))}, reals {_shares(reals.astype(str))}"
    fake_median = pd.to_numeric(fakes, errors="coerce").median()
    real_median = pd.to_numeric(reals, errors="coerce").median()
    return f"{column}: median {_fmt(fake_median)} for fakes, {_fmt(real_median)} for reals"


def _shares(values: pd.Series) -> str:
    counts = values.value_counts(normalize=True)
    top = [f"{100 * share:.0f}% {value}" for value, share in counts.head(2).items()]
    return "all " + counts.index[0] if len(counts) == 1 else ", ".join(top)


def _fmt(value: float) -> str:
    if value != value:  # NaN: none of them has it
        return "n/a"
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def verdict_lines(groups: Mapping[str, Mapping[str, Any]], flag_above: float) -> list[str]:
    """One line per group: flagged or not, its AUROC and CI, and what leaks."""
    lines = []
    for group, found in groups.items():
        if found["auroc"] is None:
            lines.append(f"{group}: not tested ({found['note']})")
            continue
        ci = found["ci95"]
        span = f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""
        if found["flagged"]:
            leak = found["strongest_feature"]["describe"]
            lines.append(
                f"SHORTCUT {group}: AUROC {found['auroc']:.3f}{span} from {group} features "
                f"alone (above {flag_above}); {leak}"
            )
        else:
            lines.append(f"ok {group}: AUROC {found['auroc']:.3f}{span}")
    return lines
