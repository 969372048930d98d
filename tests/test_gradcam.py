"""Grad-CAM: one overlay per scored image for every model; the map explains the fake logit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers.inference_fixtures import (
    make_checkpoint,
    random_rgb,
    run_cli,
)
from PIL import Image

from deepinsight.errors import EXIT_SOME_FILES_FAILED
from deepinsight.inference import load_detector
from deepinsight.inference.gradcam import GradCamOverlays, find_target_layer
from deepinsight.predict import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize(
    ("model", "channels", "expected_layer"),
    [
        ("custom_cnn", 3, "backbone.5.4"),  # last block's output (after pooling and dropout)
        ("densenet121", 1, "backbone.features.norm5"),
        ("efficientnet", 3, "backbone.bn2.act"),
    ],
)
def test_one_overlay_png_per_scored_image(tmp_path, capsys, model, channels, expected_layer):
    ckpt = make_checkpoint(tmp_path / "best.ckpt", model, channels)
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("a", "c"):
        random_rgb(seed=ord(name)).save(photos / f"{name}.png")
    (photos / "b.png").write_bytes(b"")  # not scored, so no heatmap

    code, _, _ = run_cli(
        main,
        [f"ckpt={ckpt}", f"inputs={photos}", "num_workers=0", "cam=true",
         f"cam_dir={tmp_path / 'cams'}"],
        capsys,
    )  # fmt: skip

    assert code == EXIT_SOME_FILES_FAILED
    overlays = sorted((tmp_path / "cams").iterdir())
    assert [p.name for p in overlays] == ["a.png", "c.png"]  # named after the input
    for path in overlays:
        with Image.open(path) as overlay:
            # The 48x40 image at >= 256 px, beside its heatmap, above a caption band.
            assert (overlay.format, overlay.mode) == ("PNG", "RGB")
            assert overlay.height > 256 and overlay.width > 2 * 256
    net = load_detector(ckpt, device="cpu").net
    layer = find_target_layer(net, {"image_size": 32, "channels": channels})
    assert dict(net.named_modules())[expected_layer] is layer


def test_heatmap_explains_the_fake_logit(tmp_path):
    """Grad-CAM of a linear head on pooled features is relu(sum_c w_c * A_c): check that."""
    ckpt = make_checkpoint(tmp_path / "small.ckpt", "custom_cnn", 3, widths=[8, 16])
    detector = load_detector(ckpt, device="cpu")
    net = detector.net
    with torch.no_grad():
        # Positive weights on non-negative features: every image has evidence for "fake", so
        # no map is legitimately all zero (Grad-CAM keeps only positive evidence).
        net.head.weight.abs_()
    images = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))

    layer = find_target_layer(net, detector.preprocessing)
    features = []
    handle = layer.register_forward_hook(lambda _m, _i, out: features.append(out.detach()))
    with torch.no_grad():
        net(images)
    handle.remove()
    assert features[0].shape[-2:] == (8, 8)  # a real spatial map to explain
    weights = net.head.weight.detach().reshape(1, -1, 1, 1)
    expected = torch.relu((weights * features[0]).sum(1, keepdim=True))
    expected = F.interpolate(expected, size=32, mode="bilinear").squeeze(1).numpy()

    with GradCamOverlays(net, detector.preprocessing) as cam:
        heatmaps = cam.heatmaps(images)
        overlays = cam.render(images)

    assert heatmaps.shape == (4, 32, 32) and heatmaps.min() >= 0 and heatmaps.max() <= 1
    for heatmap, reference in zip(heatmaps, expected):
        assert heatmap.std() > 0.05  # not a flat map
        assert np.corrcoef(heatmap.ravel(), reference.ravel())[0, 1] > 0.9
    assert len(overlays) == 4 and overlays[0].shape == (32, 32, 3)
    assert overlays[0].dtype == np.uint8
    # The hooks are gone: the network scores as before.
    assert not layer._forward_hooks
