"""The speed switches (channels_last, compile, fused Adam, epoch-level metric logging) change
how fast training runs, never what the test scores are."""

from __future__ import annotations

import copy
import functools

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from deepinsight.errors import DeepInsightError
from deepinsight.lightning_module import DeepfakeClassifier

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # Lightning's tiny-data advice


def tiny_loader() -> DataLoader:
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(16, 3, 32, 32, generator=generator)
    labels = torch.tensor([0.0, 1.0] * 8)
    return DataLoader(TensorDataset(images, labels, torch.arange(16)), batch_size=8)


def fit_and_test(model: DeepfakeClassifier, device: str = "cpu") -> tuple[L.Trainer, set]:
    """Fit one epoch and test; returns the trainer and the metric names logged by the fit."""
    trainer = L.Trainer(
        accelerator=device, devices=1, max_epochs=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
    )  # fmt: skip
    trainer.fit(model, tiny_loader(), tiny_loader())
    fitted = set(trainer.callback_metrics)
    trainer.test(model, tiny_loader(), verbose=False)
    return trainer, fitted | set(trainer.callback_metrics)


def eager_scores(model: DeepfakeClassifier) -> torch.Tensor:
    """What predict computes: the eager network, default memory format, fp32, on the CPU."""
    net = copy.deepcopy(model.net).cpu().eval().to(memory_format=torch.contiguous_format)
    images = torch.cat([batch[0] for batch in tiny_loader()])
    with torch.no_grad():
        return torch.sigmoid(net(images) / model.temperature)


def test_channels_last_trains_and_tests_like_predict():
    torch.manual_seed(0)
    model = DeepfakeClassifier({"name": "custom_cnn", "in_chans": 3}, channels_last=True)
    seen = []
    backbone = model.net.backbone
    backbone.register_forward_pre_hook(lambda _, args: seen.append(args[0].is_contiguous()))
    _, logged = fit_and_test(model)
    # NHWC while fitting (not contiguous in the default format), default format at test time.
    assert seen[0] is False and seen[-1] is True
    assert torch.equal(model.test_outputs["score"], eager_scores(model))
    assert {"train/auroc", "val/auroc", "val/f1", "test/auroc", "test/f1"} <= logged
    # The test pass keeps the head's input for the run's feature analysis: the eager features.
    net = copy.deepcopy(model.net).eval().to(memory_format=torch.contiguous_format)
    with torch.no_grad():
        features = net.forward_features(torch.cat([batch[0] for batch in tiny_loader()]))
    assert torch.equal(model.test_outputs["features"], features)


def test_compiled_network_is_used_for_fitting_only(monkeypatch):
    calls = []

    def fake_compile(net):  # stands in for torch.compile: counts calls, computes the same
        return lambda images: calls.append(len(images)) or net(images)

    monkeypatch.setattr(torch, "compile", fake_compile)
    torch.manual_seed(0)
    model = DeepfakeClassifier({"name": "custom_cnn", "in_chans": 3}, compile=True)
    keys = set(model.state_dict())
    fit_and_test(model)
    assert calls == [8, 8, 8, 8]  # 2 training + 2 validation batches, none at test time
    assert set(model.state_dict()) == keys  # checkpoints keep the eager network's keys
    assert torch.equal(model.test_outputs["score"], eager_scores(model))


def test_compile_mode_is_passed_to_torch_compile(monkeypatch):
    modes = []
    monkeypatch.setattr(torch, "compile", lambda net, **options: modes.append(options) or net)
    DeepfakeClassifier({"name": "custom_cnn", "in_chans": 3}, compile="reduce-overhead")
    DeepfakeClassifier({"name": "custom_cnn", "in_chans": 3}, compile=True)
    assert modes == [{"mode": "reduce-overhead"}, {}]
    with pytest.raises(DeepInsightError, match="model.compile must be true, false or a mode"):
        DeepfakeClassifier({"name": "custom_cnn", "in_chans": 3}, compile="fastest")


def test_fused_adam_only_on_cuda():
    model = DeepfakeClassifier({"name": "custom_cnn", "in_chans": 3})
    adam = functools.partial(torch.optim.Adam, lr=1e-3)
    assert model._fused_on_cuda(adam) == {}  # on the CPU: the default (foreach) path
    model.optimizer_factory = adam
    assert not model.configure_optimizers().defaults.get("fused")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_gets_fused_adam_channels_last_and_cudnn_benchmark():
    torch.manual_seed(0)
    model = DeepfakeClassifier(
        {"name": "custom_cnn", "in_chans": 3},
        optimizer=functools.partial(torch.optim.Adam, lr=1e-3),
        channels_last=True,
    )
    trainer, _ = fit_and_test(model, device="gpu")
    assert trainer.optimizers[0].defaults["fused"] is True
    # Test scores on the GPU agree with predict's CPU computation.
    assert torch.allclose(model.test_outputs["score"], eager_scores(model), atol=1e-5)
