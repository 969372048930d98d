"""Temperature scaling and calibration numbers: ECE falls on validation, rankings do not move."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch
from helpers.inference_fixtures import make_checkpoint, run_cli
from sklearn.metrics import average_precision_score, roc_auc_score

from deepinsight.analysis.reliability import reliability_bins, save_reliability_diagram
from deepinsight.calibration import (
    brier_score,
    calibration_block,
    choose_temperature,
    expected_calibration_error,
    fit_temperature,
    scale_logits,
    unscaled_scores,
)
from deepinsight.checkpoint_info import DetectorSpec
from deepinsight.errors import EXIT_OK, DeepInsightError
from deepinsight.export import main as export_main
from deepinsight.inference import load_detector


def overconfident(n: int, true_temperature: float, seed: int):
    """Labels drawn from sigmoid(z), and logits z * T: a model T times too confident."""
    generator = torch.Generator().manual_seed(seed)
    z = torch.randn(n, generator=generator) * 2
    labels = (torch.rand(n, generator=generator) < torch.sigmoid(z)).long()
    return z * true_temperature, labels


def test_fit_recovers_the_temperature_that_made_the_logits_overconfident():
    logits, labels = overconfident(20000, 3.0, seed=0)
    assert fit_temperature(logits, labels) == pytest.approx(3.0, rel=0.05)


def test_scaling_lowers_validation_ece_and_keeps_auroc_and_ap():
    logits, labels = overconfident(2000, 2.5, seed=1)
    temperature, valid = choose_temperature(logits, labels)
    assert temperature > 1.5
    assert valid["ece_after"] <= valid["ece_before"] and valid["ece_after"] < 0.05
    assert valid["brier_after"] < valid["brier_before"]
    raw, scaled = torch.sigmoid(logits).numpy(), scale_logits(logits, temperature).numpy()
    y = labels.numpy()
    # Same order of scores, so the same curves: equal up to float summation order.
    assert roc_auc_score(y, scaled) == pytest.approx(roc_auc_score(y, raw), abs=1e-12)
    assert average_precision_score(y, scaled) == pytest.approx(
        average_precision_score(y, raw), abs=1e-12
    )


def test_a_temperature_that_would_raise_validation_ece_is_not_kept():
    # Perfectly calibrated by construction on a small split: any fitted T can only add noise.
    logits, labels = overconfident(40, 1.0, seed=2)
    temperature, valid = choose_temperature(logits, labels)
    assert valid["ece_after"] <= valid["ece_before"]
    if temperature == 1.0:
        assert valid["ece_after"] == valid["ece_before"]


def test_one_class_labels_leave_the_scores_alone():
    assert fit_temperature(torch.randn(10), torch.ones(10)) == 1.0


def test_ece_and_brier_known_values():
    labels = np.array([0, 1, 0, 1])
    assert brier_score(labels, [0.0, 1.0, 0.0, 1.0]) == 0.0
    assert brier_score(labels, [0.5] * 4) == 0.25
    assert expected_calibration_error(labels, [0.5] * 4) == pytest.approx(0.0)
    assert expected_calibration_error([1, 1], [0.6, 0.6]) == pytest.approx(0.4)


def test_unscaled_scores_invert_the_scaling_and_feed_the_results_block():
    logits = torch.linspace(-6, 6, 25)
    scaled = scale_logits(logits, 2.0).double().numpy()
    assert np.allclose(unscaled_scores(scaled, 2.0), torch.sigmoid(logits).numpy(), atol=1e-6)
    labels = (logits > 0).long().numpy()
    block = calibration_block(labels, scaled, 2.0, {"ece_before": 0.1})
    assert block["temperature"] == 2.0 and block["valid"] == {"ece_before": 0.1}
    assert block["test"]["ece_after"] == pytest.approx(expected_calibration_error(labels, scaled))


def test_reliability_diagram_bins_and_file(tmp_path):
    labels = np.array([0, 0, 1, 1])
    mean_score, fraction_fake, count = reliability_bins(labels, [0.1, 0.1, 0.9, 0.92])
    assert mean_score.tolist() == pytest.approx([0.1, 0.91]) and fraction_fake.tolist() == [0, 1]
    assert count.tolist() == [2, 2]
    path = save_reliability_diagram(labels, [0.1, 0.1, 0.9, 0.92], tmp_path / "reliability.png")
    assert path.stat().st_size > 1000


def with_temperature(ckpt, temperature: float):
    checkpoint = torch.load(ckpt, weights_only=True)
    checkpoint["deepinsight"]["temperature"] = temperature
    torch.save(checkpoint, ckpt)
    return ckpt


def test_old_files_read_as_temperature_one_and_a_bad_one_is_refused(tmp_path):
    ckpt = make_checkpoint(tmp_path / "old.ckpt")
    assert load_detector(ckpt, device="cpu").spec.temperature == 1.0
    with_temperature(ckpt, 0.0)
    with pytest.raises(DeepInsightError, match="temperature 0.0 is not a positive number"):
        load_detector(ckpt, device="cpu")


def test_torch_and_onnx_scores_are_sigmoid_of_logit_over_temperature(tmp_path, capsys):
    ckpt = make_checkpoint(tmp_path / "best.ckpt")
    images = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    plain = load_detector(ckpt, device="cpu")
    with torch.no_grad():
        logits = plain.net(images)
    detector = load_detector(with_temperature(ckpt, 2.5), device="cpu")
    expected = torch.sigmoid(logits / 2.5).numpy()
    assert np.abs(detector.score(images) - expected).max() < 1e-6

    code, _, _ = run_cli(export_main, [f"ckpt={ckpt}"], capsys)
    assert code == EXIT_OK
    exported = tmp_path / "best.onnx"
    props = {p.key: p.value for p in onnx.load(str(exported)).metadata_props}
    assert json.loads(props["temperature"]) == 2.5
    onnx_detector = load_detector(exported)
    assert onnx_detector.spec == DetectorSpec.from_dict(detector.spec.to_dict(), "x")
    assert np.abs(onnx_detector.score(images) - expected).max() < 1e-5
