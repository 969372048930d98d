"""Recalibration for a new domain: it helps on held-out images of that domain, records where it
came from, and refuses a sample that is too small or overlaps the evaluation set."""

from __future__ import annotations

import torch
from helpers.inference_fixtures import make_checkpoint, run_cli

from deepinsight.calibrate import RULE, fit_on_sample
from deepinsight.calibrate import main as calibrate_main
from deepinsight.calibration import calibration_summary, scale_logits
from deepinsight.inference import load_detector


def domain(n: int, seed: int, shift: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """An overconfident detector on a new domain: logits 5x the true log-odds (2x), + a shift."""
    generator = torch.Generator().manual_seed(seed)
    labels = (torch.rand(n, generator=generator) < 0.5).long()
    true_log_odds = (2 * labels - 1) * 1.0 + torch.randn(n, generator=generator)
    return 10 * true_log_odds + shift, labels


def test_refitting_on_a_sample_lowers_the_ece_on_the_rest_of_the_domain():
    sample_logits, sample_labels = domain(100, seed=0)
    rest_logits, rest_labels = domain(2000, seed=1)
    temperature, _ = fit_on_sample(sample_logits, sample_labels)
    before = calibration_summary(rest_labels, scale_logits(rest_logits, 1.0))["ece"]
    after = calibration_summary(rest_labels, scale_logits(rest_logits, temperature))["ece"]
    assert temperature > 2 and after < before / 2


def test_a_shifted_domain_gets_a_shifted_threshold():
    # Every logit pushed up by 15: at 0.5 most reals would be called fake.
    logits, labels = domain(200, seed=2, shift=15.0)
    temperature, threshold = fit_on_sample(logits, labels)
    scores = scale_logits(logits, temperature)
    accuracy_at_half = ((scores >= 0.5).long() == labels).float().mean()
    accuracy_refitted = ((scores >= threshold).long() == labels).float().mean()
    assert threshold > 0.5 and accuracy_refitted > accuracy_at_half + 0.1


def test_the_command_writes_a_checkpoint_that_records_its_sample(tiny_dataset, tmp_path, capsys):
    ckpt = make_checkpoint(tmp_path / "best.ckpt", "custom_cnn", 3)
    out = tmp_path / "new.ckpt"
    code, stdout, err = run_cli(
        calibrate_main,
        [f"ckpt={ckpt}", f"data.root={tiny_dataset}", "split=test", f"output={out}",
         "min_images=20", "min_per_class=5", "num_workers=0",
         f"exclude=[{tiny_dataset / 'valid'}]"],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    assert "recalibrated on 24 images" in stdout
    detector = load_detector(out, device="cpu")
    record = detector.spec.calibrated_on
    assert detector.spec.threshold_rule == RULE
    assert (record["n"], record["n_real"], record["n_fake"]) == (24, 12, 12)
    assert record["ece_after"] <= record["ece_before"]
    assert load_detector(ckpt, device="cpu").spec.calibrated_on is None  # the original is kept


def test_a_tiny_or_overlapping_sample_is_refused(tiny_dataset, tmp_path, capsys):
    ckpt = make_checkpoint(tmp_path / "best.ckpt", "custom_cnn", 3)
    base = [f"ckpt={ckpt}", f"data.root={tiny_dataset}", "split=test", "num_workers=0"]
    code, _, err = run_cli(calibrate_main, base, capsys)
    assert code == 2 and "it needs at least 50" in err and err.count("\n") == 1
    code, _, err = run_cli(
        calibrate_main,
        [*base, "min_images=20", "min_per_class=5", f"exclude=[{tiny_dataset}]"],
        capsys,
    )
    assert code == 2 and "shares 24 image(s) with the excluded set" in err
    assert not (tmp_path / "best.recalibrated.ckpt").exists()


def test_an_onnx_output_is_the_recalibrated_checkpoint_exported(tiny_dataset, tmp_path, capsys):
    ckpt = make_checkpoint(tmp_path / "best.ckpt", "custom_cnn", 3)
    out = tmp_path / "deploy" / "model.onnx"
    code, _, err = run_cli(
        calibrate_main,
        [f"ckpt={ckpt}", f"data.root={tiny_dataset}", "split=test", f"output={out}",
         "min_images=20", "min_per_class=5", "num_workers=0"],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    checkpoint, onnx = load_detector(out.with_suffix(".ckpt"), device="cpu"), load_detector(out)
    assert onnx.spec == checkpoint.spec and onnx.spec.calibrated_on["n"] == 24
    images = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    assert abs(onnx.score(images) - checkpoint.score(images)).max() < 1e-5
    code, _, err = run_cli(calibrate_main, [f"ckpt={out}", f"data.root={tiny_dataset}"], capsys)
    assert code == 2 and "give the checkpoint it was exported from" in err
