"""The one contract every DeepInsight model follows."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class InputNormalization(nn.Module):
    """``(x - mean) / std`` per channel, the first step of a network that was pretrained on it.

    The buffers are not persistent: the values live in the checkpoint's ``preprocessing``
    (docs/contracts.md), so state dicts stay the same with or without normalisation and
    checkpoints written before it existed load unchanged (as the identity).
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        if len(mean) != len(std) or any(s <= 0 for s in std):
            raise ValueError(f"bad normalisation mean={list(mean)} std={list(std)}")
        # The given numbers, for the checkpoint: the float32 buffers would round 0.485 to
        # 0.48500001430511475.
        self.values = ([float(m) for m in mean], [float(s) for s in std])
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def as_lists(self) -> tuple[list[float], list[float]]:
        return list(self.values[0]), list(self.values[1])


class DeepfakeNet(nn.Module):
    """An optional fixed input representation (deepinsight.models.representations), optional
    input normalisation, a feature extractor, then a single-logit linear head.

    ``forward`` maps ``(N, in_chans, H, W)`` images in [0, 1] to ``(N,)`` logits;
    ``sigmoid(logit)`` is P(fake). ``forward_features`` exposes the pooled features the head
    sees, which the analysis code (PCA plots, linear probes) and Grad-CAM rely on.

    A pretrained backbone expects its own mean/std. The network applies it itself (so every
    runtime, the ONNX graph included, gets it for free, and perturbations such as JPEG still
    act on [0, 1] pixels); ``default_normalization`` is what the builder recommends.
    """

    def __init__(
        self,
        backbone: nn.Module,
        num_features: int,
        in_chans: int,
        default_normalization: tuple[Sequence[float], Sequence[float]] | None = None,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.num_features = num_features
        self.in_chans = in_chans
        self.head = nn.Linear(num_features, 1)
        self.default_normalization = default_normalization
        self.input_norm: InputNormalization | None = None
        if default_normalization is not None:
            self.set_normalization(*default_normalization)
        self.input_representation: nn.Module | None = None
        self._representation: tuple[str, float | None] = ("pixels", None)

    def set_representation(self, kind: str | None, scale: float | None = None) -> None:
        """Compute ``kind`` (pixels, npr, highpass) of the input first; scale None: default."""
        from deepinsight.models.representations import build_representation

        kind = kind or "pixels"
        module = build_representation(kind, scale, self.in_chans)
        self.input_representation = module.to(self.head.weight.device) if module else None
        self._representation = (kind, getattr(module, "scale", None))

    @property
    def representation(self) -> tuple[str, float | None]:
        """(kind, scale) of the input representation; ("pixels", None) for none."""
        return self._representation

    def set_normalization(self, mean: Sequence[float] | None, std: Sequence[float] | None) -> None:
        """Normalise inputs with ``mean``/``std`` (one value per channel); None = none."""
        if mean is None or std is None:
            self.input_norm = None
            return
        if len(mean) != self.in_chans:
            raise ValueError(f"normalisation has {len(mean)} channels, the model {self.in_chans}")
        device = self.head.weight.device
        self.input_norm = InputNormalization(mean, std).to(device)

    @property
    def normalization(self) -> tuple[list[float], list[float]] | None:
        """The (mean, std) the network applies to its input, or None."""
        return self.input_norm.as_lists() if self.input_norm is not None else None

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features of shape (N, num_features)."""
        if self.input_representation is not None:
            x = self.input_representation(x)
        if self.input_norm is not None:
            x = self.input_norm(x)
        return self.backbone(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x)).squeeze(-1)
