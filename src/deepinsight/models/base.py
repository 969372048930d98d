"""The one contract every DeepInsight model follows."""

from __future__ import annotations

import torch
from torch import nn


class DeepfakeNet(nn.Module):
    """A feature extractor followed by a single-logit linear head.

    ``forward`` maps ``(N, in_chans, H, W)`` to ``(N,)`` logits; ``sigmoid(logit)`` is P(fake).
    ``forward_features`` exposes the pooled features the head sees, which the analysis code
    (PCA plots, linear probes) and Grad-CAM rely on.
    """

    def __init__(self, backbone: nn.Module, num_features: int, in_chans: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.num_features = num_features
        self.in_chans = in_chans
        self.head = nn.Linear(num_features, 1)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features of shape (N, num_features)."""
        return self.backbone(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x)).squeeze(-1)
