"""Model factory: one name, one contract, every model swappable.

``create_model(name, in_chans=..., **kwargs)`` returns a :class:`DeepfakeNet`, which maps
``(N, in_chans, H, W)`` images in [0, 1] to ``(N,)`` logits. ``name`` is one of the seed's
models (``MODEL_BUILDERS``) or else any timm architecture (``resnet18``, ``convnext_tiny``,
``vit_small_patch16_224``, ...), which takes ``pretrained``, ``pretrained_file`` and timm's own
keyword arguments (``drop_path_rate``, ``img_size``, ...).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import nn

from deepinsight.errors import DeepInsightError, first_line
from deepinsight.models.backbones import DenseNetFeatures
from deepinsight.models.base import DeepfakeNet, InputNormalization
from deepinsight.models.custom_cnn import CustomCNNFeatures

# (backbone, number of pooled features, the input mean/std its weights expect or None)
Normalization = tuple[Sequence[float], Sequence[float]]
Built = tuple[nn.Module, int, Normalization | None]


def _densenet121(in_chans: int) -> Built:
    backbone = DenseNetFeatures(in_chans)
    return backbone, backbone.num_features, None


def _custom_cnn(in_chans: int, widths=(16, 32, 64, 128, 256, 512), dropout: float = 0.2) -> Built:
    backbone = CustomCNNFeatures(in_chans, widths=tuple(widths), dropout=dropout)
    return backbone, backbone.num_features, None


def _efficientnet(
    in_chans: int,
    variant: str = "efficientnet_b0",
    pretrained: bool = False,
    pretrained_file: str | None = None,
) -> Built:
    from deepinsight.models.timm_models import pretrained_normalization, timm_backbone

    backbone = timm_backbone(variant, in_chans, pretrained, pretrained_file)
    # From scratch it sees [0, 1] pixels, as the seed's models do; pretrained, what its
    # weights were trained on.
    weights = pretrained or pretrained_file
    norm = pretrained_normalization(backbone, in_chans) if weights else None
    return backbone, backbone.num_features, norm


def _any_timm(
    name: str,
    in_chans: int,
    pretrained: bool = False,
    pretrained_file: str | None = None,
    image_size: int | None = None,
    **timm_kwargs,
) -> Built:
    from deepinsight.models.timm_models import pretrained_normalization, timm_backbone

    backbone = timm_backbone(
        name, in_chans, pretrained, pretrained_file, image_size=image_size, **timm_kwargs
    )
    # Pooled width: head_hidden_size where a pre-logits layer widens it (MobileNetV3).
    width = getattr(backbone, "head_hidden_size", None) or backbone.num_features
    # timm's recipe normalises even from scratch, so a run can later swap in weights.
    return backbone, int(width), pretrained_normalization(backbone, in_chans)


MODEL_BUILDERS: dict[str, Callable[..., Built]] = {
    "densenet121": _densenet121,
    "custom_cnn": _custom_cnn,
    "efficientnet": _efficientnet,
}


def list_models() -> list[str]:
    """The seed's models; any timm architecture name is accepted too."""
    return sorted(MODEL_BUILDERS)


def create_model(name: str, in_chans: int = 3, **kwargs) -> DeepfakeNet:
    """Build a model by name; an unknown name gets one line with the closest valid names."""
    if in_chans not in (1, 3):
        raise DeepInsightError(f"in_chans must be 1 or 3, got {in_chans!r}")
    builder = MODEL_BUILDERS.get(name)
    try:
        if builder is not None:
            backbone, num_features, norm = builder(in_chans, **kwargs)
        else:
            backbone, num_features, norm = _any_timm(name, in_chans, **kwargs)
    except TypeError as err:  # an option the model does not take
        raise DeepInsightError(
            f"model '{name}' does not accept {sorted(kwargs)}: {first_line(err, limit=160)}"
        ) from None
    return DeepfakeNet(backbone, num_features, in_chans, default_normalization=norm)


__all__ = [
    "DeepfakeNet",
    "InputNormalization",
    "create_model",
    "list_models",
    "MODEL_BUILDERS",
]
