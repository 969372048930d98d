"""Model factory: one name, one contract, every model swappable.

``create_model(name, in_chans=..., **kwargs)`` returns a :class:`DeepfakeNet`, which maps
``(N, in_chans, H, W)`` images to ``(N,)`` logits. Register new models in ``MODEL_BUILDERS``.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from deepinsight.errors import DeepInsightError
from deepinsight.models.backbones import DenseNetFeatures, timm_features
from deepinsight.models.base import DeepfakeNet
from deepinsight.models.custom_cnn import CustomCNNFeatures


def _densenet121(in_chans: int) -> tuple[nn.Module, int]:
    backbone = DenseNetFeatures(in_chans)
    return backbone, backbone.num_features


def _custom_cnn(in_chans: int, widths=(16, 32, 64, 128, 256, 512), dropout: float = 0.2):
    backbone = CustomCNNFeatures(in_chans, widths=tuple(widths), dropout=dropout)
    return backbone, backbone.num_features


def _efficientnet(in_chans: int, variant: str = "efficientnet_b0", pretrained: bool = False):
    backbone = timm_features(variant, in_chans, pretrained=pretrained)
    return backbone, backbone.num_features


MODEL_BUILDERS: dict[str, Callable[..., tuple[nn.Module, int]]] = {
    "densenet121": _densenet121,
    "custom_cnn": _custom_cnn,
    "efficientnet": _efficientnet,
}


def list_models() -> list[str]:
    return sorted(MODEL_BUILDERS)


def create_model(name: str, in_chans: int = 3, **kwargs) -> DeepfakeNet:
    """Build a registered model by name; an unknown name gets one line listing the valid ones."""
    try:
        builder = MODEL_BUILDERS[name]
    except KeyError:
        raise DeepInsightError(
            f"unknown model '{name}'; choose one of: {', '.join(list_models())}"
        ) from None
    backbone, num_features = builder(in_chans, **kwargs)
    return DeepfakeNet(backbone, num_features, in_chans)


__all__ = ["DeepfakeNet", "create_model", "list_models", "MODEL_BUILDERS"]
