"""Grad-CAM heatmaps of the fake logit, drawn with the maintained ``pytorch-grad-cam`` package.

The heatmap is overlaid on the image the network actually saw (after preprocessing), so it
shows which regions pushed the score towards *fake* for that input.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

# Global poolings turn the feature map into a vector: explaining them would give a flat map.
_GLOBAL_POOLS = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)


class LogitColumn(nn.Module):
    """(N,) logits -> (N, 1): pytorch-grad-cam expects one row of class scores per image."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images).unsqueeze(1)


def find_target_layer(net: nn.Module, preprocessing: Mapping[str, Any]) -> nn.Module:
    """The last layer of ``net.backbone`` to output a spatial feature map (N, C, H, W).

    Found by running one blank image and watching which leaf modules produce 4-D outputs, so it
    works for any backbone (torchvision DenseNet, timm EfficientNet, the custom CNN) without a
    per-model table. Global pooling layers are skipped.
    """
    last: list[nn.Module] = []

    def remember(module: nn.Module, _inputs: Any, output: Any) -> None:
        if isinstance(output, torch.Tensor) and output.dim() == 4:
            last[:] = [module]

    leaves = [
        m
        for m in net.backbone.modules()
        if not list(m.children()) and not isinstance(m, _GLOBAL_POOLS)
    ]
    handles = [m.register_forward_hook(remember) for m in leaves]
    size, channels = int(preprocessing["image_size"]), int(preprocessing["channels"])
    device = next(net.parameters()).device
    was_training = net.training
    try:
        net.eval()
        with torch.no_grad():
            net(torch.zeros(1, channels, size, size, device=device))
    finally:
        for handle in handles:
            handle.remove()
        net.train(was_training)
    if not last:
        raise RuntimeError(f"no layer of {type(net.backbone).__name__} outputs a feature map")
    return last[0]


class GradCamOverlays:
    """Renders Grad-CAM overlays for batches of preprocessed images; use as a context manager."""

    def __init__(self, net: nn.Module, preprocessing: Mapping[str, Any]) -> None:
        # Imported lazily: pytorch-grad-cam pulls in OpenCV and takes seconds to import.
        from pytorch_grad_cam.grad_cam import GradCAM
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        self.target_layer = find_target_layer(net, preprocessing)
        self._cam = GradCAM(model=LogitColumn(net), target_layers=[self.target_layer])
        # Column 0 of LogitColumn is the fake logit: the map explains "why fake".
        self._target = ClassifierOutputTarget(0)

    def heatmaps(self, images: torch.Tensor) -> np.ndarray:
        """``(N, C, S, S)`` images -> ``(N, S, S)`` Grad-CAM maps of the fake logit, in [0, 1]."""
        return self._cam(input_tensor=images, targets=[self._target] * len(images))

    def render(self, images: torch.Tensor) -> list[np.ndarray]:
        """``(N, C, S, S)`` images in [0, 1] -> N uint8 RGB overlays of shape (S, S, 3)."""
        from pytorch_grad_cam.utils.image import show_cam_on_image

        heatmaps = self.heatmaps(images)
        pictures = images.detach().cpu().float().numpy().transpose(0, 2, 3, 1)
        if pictures.shape[-1] == 1:
            pictures = np.repeat(pictures, 3, axis=-1)
        return [
            show_cam_on_image(np.clip(picture, 0.0, 1.0), heatmap, use_rgb=True)
            for picture, heatmap in zip(pictures, heatmaps)
        ]

    def close(self) -> None:
        """Remove the hooks pytorch-grad-cam put on the network."""
        self._cam.activations_and_grads.release()

    def __enter__(self) -> GradCamOverlays:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def save_overlay(overlay: np.ndarray, path: Path) -> None:
    """Write one overlay as a PNG."""
    Image.fromarray(overlay).save(path, format="PNG")
