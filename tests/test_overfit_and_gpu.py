"""Learning sanity (overfit a few batches) and CUDA-only checks (skipped without a GPU)."""

from __future__ import annotations

import pytest
import torch

from deepinsight.lightning_module import DeepfakeClassifier
from deepinsight.models import create_model, list_models


def test_a_few_batches_drive_the_loss_down_hard():
    torch.manual_seed(0)
    # Dropout off: the point is that gradients flow end to end and the head learns.
    model = create_model("custom_cnn", in_chans=3, dropout=0.0)
    images = torch.rand(16, 3, 32, 32)
    labels = torch.tensor([0.0, 1.0] * 8)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    model.train()
    first = None
    for _ in range(20):
        optimizer.zero_grad()
        loss = loss_fn(model(images), labels)
        loss.backward()
        optimizer.step()
        first = first if first is not None else loss.item()
    assert loss.item() < 0.05 * first


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("in_chans", [1, 3])
def test_model_contract(name, in_chans):
    model = create_model(name, in_chans=in_chans).eval()
    x = torch.rand(3, in_chans, 48, 48)
    with torch.no_grad():
        assert model(x).shape == (3,)
        assert model.forward_features(x).shape == (3, model.num_features)


def test_grayscale_model_has_a_one_channel_stem():
    model = create_model("densenet121", in_chans=1)
    first_conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    assert first_conv.in_channels == 1
    with pytest.raises(RuntimeError):
        model(torch.rand(1, 3, 32, 32))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_mixed_precision_training_step_on_cuda():
    import lightning as L

    from deepinsight.config import auto_precision

    precision = auto_precision()
    assert precision == ("bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed")
    # A DataLoader, not a list: Lightning reads a list of batches as several val dataloaders
    # (this test failed so on the H200 machine, 2026-11-27).
    dataset = torch.utils.data.TensorDataset(
        torch.rand(32, 3, 64, 64), torch.tensor([0.0, 1.0] * 16), torch.arange(32)
    )
    data = torch.utils.data.DataLoader(dataset, batch_size=8)
    module = DeepfakeClassifier({"name": "custom_cnn", "in_chans": 3})
    trainer = L.Trainer(
        accelerator="gpu",
        devices=1,
        precision=precision,
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
    )
    trainer.fit(module, train_dataloaders=data, val_dataloaders=data)
    assert trainer.state.finished and module.decision_threshold > 0
    trainer.test(module, dataloaders=data, verbose=False)
    assert module.test_outputs["score"].dtype == torch.float32


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_per_step_metric_updates_never_wait_for_the_gpu():
    from deepinsight.metrics import SplitMetrics

    metrics = SplitMetrics("train/").cuda()
    scores = torch.rand(32, device="cuda")
    targets = torch.randint(0, 2, (32,), device="cuda").float()
    metrics.update(scores, targets)  # MetricCollection compares its groups' states once
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(3):
            metrics.update(torch.rand(32, device="cuda"), targets)
    finally:
        torch.cuda.set_sync_debug_mode("default")
