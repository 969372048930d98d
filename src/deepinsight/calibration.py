"""Can the scores be read as probabilities? Calibration error, Brier score, temperature scaling.

* :func:`calibration_summary`: expected calibration error (torchmetrics
  ``BinaryCalibrationError``: |fraction fake - mean P(fake)| per equal-width score bin, weighted
  by the bin's share of images) and the Brier score (mean squared error of P(fake)).
* :func:`fit_temperature`: one scalar T > 0 so that score = sigmoid(logit / T) minimises the
  negative log-likelihood of the validation labels (Guo et al., ICML 2017). Dividing every logit
  by the same positive T keeps the order of the scores, so AUROC and AP do not change; only
  the probabilities (and hence the threshold that maximises F1) move.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torchmetrics.classification import BinaryCalibrationError

N_BINS = 15
TEMPERATURE_RULE = "nll_valid"
# log T is searched in this range: T from about 0.007 to 150 covers any useful scaling.
_LOG_T_BOUND = 5.0


def expected_calibration_error(labels: Any, scores: Any, n_bins: int = N_BINS) -> float:
    """ECE (L1, equal-width bins) of P(fake) scores against labels (1 = fake)."""
    metric = BinaryCalibrationError(n_bins=n_bins, norm="l1", sync_on_compute=False)
    metric.update(torch.as_tensor(np.asarray(scores), dtype=torch.float32), _long(labels))
    return float(metric.compute())


def brier_score(labels: Any, scores: Any) -> float:
    """Mean squared difference between P(fake) and the label (0 perfect, 0.25 a coin)."""
    y = np.asarray(labels, dtype=np.float64).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    return float(np.mean((s - y) ** 2)) if y.size else float("nan")


def calibration_summary(labels: Any, scores: Any, n_bins: int = N_BINS) -> dict[str, float]:
    """``{"ece": ..., "brier": ...}`` for one set of predictions."""
    return {
        "ece": expected_calibration_error(labels, scores, n_bins),
        "brier": brier_score(labels, scores),
    }


def _long(labels: Any) -> torch.Tensor:
    return torch.as_tensor(np.asarray(labels)).long().ravel()


def scale_logits(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """P(fake) after temperature scaling: sigmoid(logit / T), the rule used everywhere."""
    return torch.sigmoid(logits.float() / temperature)


def unscaled_scores(scores: Any, temperature: float) -> np.ndarray:
    """sigmoid(T * logit(score)): the scores before scaling, from scaled float scores.

    For files scored by an exported model, which returns only scaled scores. Scores that
    rounded to exactly 0 or 1 stay there, which is what they were before scaling too.
    """
    s = np.clip(np.asarray(scores, dtype=np.float64), 0.0, 1.0)
    with np.errstate(divide="ignore"):
        logits = np.log(s) - np.log1p(-s)
    return 1.0 / (1.0 + np.exp(-temperature * logits))


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor, max_iter: int = 100) -> float:
    """The T that minimises the NLL of ``labels`` under sigmoid(logits / T), by LBFGS on log T.

    Returns 1.0 (no scaling) when the labels hold one class only or the logits are empty:
    there is nothing to calibrate against. Runs in float64 on the CPU, so every process of a
    distributed run finds the same T from the same gathered logits.
    """
    z = logits.detach().double().cpu().ravel()
    y = labels.detach().double().cpu().ravel()
    if z.numel() == 0 or y.unique().numel() < 2:
        return 1.0
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([log_t], lr=0.5, max_iter=max_iter, line_search_fn="strong_wolfe")
    loss_fn = torch.nn.BCEWithLogitsLoss()

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = loss_fn(z / log_t.clamp(-_LOG_T_BOUND, _LOG_T_BOUND).exp(), y)
        loss.backward()
        return loss

    optimiser.step(closure)
    temperature = math.exp(float(log_t.detach().clamp(-_LOG_T_BOUND, _LOG_T_BOUND)))
    return temperature if math.isfinite(temperature) else 1.0


def choose_temperature(logits: torch.Tensor, labels: torch.Tensor) -> tuple[float, dict]:
    """Fit T on validation logits; keep T = 1 if scaling would raise the validation ECE.

    NLL and ECE usually fall together, but not always on a small split; a T that made the
    validation scores less calibrated by the measure we report would defeat its purpose.
    Returns T and the validation ``{"ece_before", "ece_after", "brier_before", "brier_after"}``.
    """
    fitted = fit_temperature(logits, labels)
    before = calibration_summary(labels.cpu(), torch.sigmoid(logits.float()).cpu())
    after = calibration_summary(labels.cpu(), scale_logits(logits, fitted).cpu())
    temperature = fitted if after["ece"] <= before["ece"] else 1.0
    if temperature == 1.0:
        after = before
    return temperature, {
        "ece_before": before["ece"],
        "ece_after": after["ece"],
        "brier_before": before["brier"],
        "brier_after": after["brier"],
    }


def calibration_block(
    labels: Any, scaled_scores: Any, temperature: float, valid: dict | None = None
) -> dict[str, Any]:
    """results.json's ``calibration`` block: T, and ECE/Brier before and after on the test set."""
    before = calibration_summary(labels, unscaled_scores(scaled_scores, temperature))
    after = calibration_summary(labels, scaled_scores)
    block: dict[str, Any] = {
        "temperature": float(temperature),
        "rule": TEMPERATURE_RULE,
        "n_bins": N_BINS,
        "test": {
            "ece_before": before["ece"],
            "ece_after": after["ece"],
            "brier_before": before["brier"],
            "brier_after": after["brier"],
        },
    }
    if valid:
        block["valid"] = dict(valid)
    return block
