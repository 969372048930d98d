"""The seed's DenseNet121 trunk from torchvision, trimmed to the DeepfakeNet contract.

Nothing here downloads: torchvision gets ``weights=None`` (the seed trains from scratch). timm
backbones live in :mod:`deepinsight.models.timm_models`.
"""

from __future__ import annotations

import torch
import torchvision
from torch import nn


class DenseNetFeatures(nn.Module):
    """torchvision's DenseNet121 trunk, then ReLU and global average pooling (as the seed)."""

    def __init__(self, in_chans: int = 3) -> None:
        super().__init__()
        net = torchvision.models.densenet121(weights=None)
        if in_chans != 3:
            # A true single-channel stem, not three copies of one channel: the first conv is
            # rebuilt with the same geometry and fresh (from-scratch) weights.
            old = net.features.conv0
            net.features.conv0 = nn.Conv2d(
                in_chans,
                old.out_channels,
                kernel_size=old.kernel_size,
                stride=old.stride,
                padding=old.padding,
                bias=False,
            )
        self.features = net.features
        self.num_features = net.classifier.in_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.features(x))
        return torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
