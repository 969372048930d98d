"""The checkpoint's ``deepinsight`` dict: what training writes is what inference reads."""

from __future__ import annotations

import io

import pytest
import torch

from deepinsight.checkpoint_info import CHECKPOINT_KEY, FORMAT_VERSION, DetectorSpec
from deepinsight.errors import DeepInsightError
from deepinsight.lightning_module import DeepfakeClassifier

NET = {"name": "custom_cnn", "in_chans": 1}
PREPROCESSING = {"image_size": 32, "channels": 1, "resize": "bilinear_antialias", "scale": "unit"}


def saved_and_loaded(checkpoint: dict) -> dict:
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def test_what_training_writes_inference_reads_back():
    module = DeepfakeClassifier(
        {"name": "custom_cnn", "in_chans": 1, "widths": [8, 16]}, preprocessing=PREPROCESSING
    )
    module.decision_threshold = 0.3
    checkpoint: dict = {}
    module.on_save_checkpoint(checkpoint)

    spec = DetectorSpec.from_checkpoint(saved_and_loaded(checkpoint), "best.ckpt")

    assert spec.model == {"name": "custom_cnn", "in_chans": 1, "kwargs": {"widths": [8, 16]}}
    assert (spec.preprocessing, spec.threshold) == (PREPROCESSING, 0.3)
    # Without mean/std the file is written as version 1, which older DeepInsight versions read.
    assert (spec.threshold_rule, spec.format_version) == ("max_f1_valid", 1)
    assert spec.to_dict() == checkpoint[CHECKPOINT_KEY]
    resumed = DeepfakeClassifier({"name": "custom_cnn", "in_chans": 1, "widths": [8, 16]})
    resumed.on_load_checkpoint(checkpoint)
    assert resumed.decision_threshold == 0.3


def test_normalisation_is_checked_and_written_as_version_2():
    normalised = {**PREPROCESSING, "mean": [0.5], "std": [0.25]}
    spec = DetectorSpec.for_network(NET, normalised, 0.5, None)
    meta = spec.to_dict()
    assert meta["format_version"] == 2 < FORMAT_VERSION  # 3: an input representation
    assert DetectorSpec.from_dict(meta, "m.ckpt").preprocessing["mean"] == [0.5]
    for bad in (
        {"mean": [0.5, 0.5], "std": [0.25]},
        {"mean": [0.5], "std": [0.0]},
        {"mean": [0.5]},
    ):
        with pytest.raises(DeepInsightError, match="mean"):
            DetectorSpec.from_dict({**meta, "preprocessing": {**PREPROCESSING, **bad}}, "m.ckpt")


def test_onnx_metadata_round_trips_to_the_same_spec():
    spec = DetectorSpec.for_network(NET, PREPROCESSING, 0.5, None)
    assert DetectorSpec.from_onnx_metadata(spec.to_onnx_metadata(), "m.onnx") == spec


def test_optional_keys_take_their_defaults_and_a_newer_version_says_upgrade():
    stored = DetectorSpec.for_network(NET, PREPROCESSING, 0.5, "r")
    meta = stored.to_dict()
    del meta["threshold_rule"]
    assert DetectorSpec.from_dict(meta, "old.ckpt").threshold_rule is None
    with pytest.raises(DeepInsightError, match="newer DeepInsight"):
        DetectorSpec.from_dict({**meta, "format_version": FORMAT_VERSION + 1}, "new.ckpt")
    with pytest.raises(DeepInsightError, match="not a DeepInsight checkpoint"):
        DetectorSpec.from_checkpoint({"state_dict": {}}, "foreign.ckpt")
