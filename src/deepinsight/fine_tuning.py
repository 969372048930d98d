"""How much of a network trains, and how fast each part learns.

The options (``model.freeze_backbone`` and friends, documented in conf/model/_training.yaml) are
checked once here, so a bad combination fails before any data is touched, and the LightningModule
asks this object the two questions it needs: is the backbone frozen at this epoch, and which
parameter groups does the optimizer get.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from deepinsight.errors import DeepInsightError


@dataclass(frozen=True)
class FineTuning:
    """``freeze_backbone``: train the head only (a linear probe; the backbone stays in eval mode).
    ``unfreeze_backbone_at_epoch``: end that warm-up at this epoch. ``head_lr``: the head's own
    rate. ``layer_decay``: timm's layer-wise rate decay. ``cache_features``: reuse a frozen
    backbone's features after the first epoch."""

    freeze_backbone: bool = False
    unfreeze_backbone_at_epoch: int | None = None
    head_lr: float | None = None
    layer_decay: float | None = None
    cache_features: bool = False

    def __post_init__(self) -> None:
        if self.unfreeze_backbone_at_epoch is not None and not self.freeze_backbone:
            raise DeepInsightError(
                "model.unfreeze_backbone_at_epoch needs model.freeze_backbone=true (it ends a "
                "frozen warm-up)"
            )
        if self.head_lr is not None and not self.head_lr > 0:
            raise DeepInsightError(f"model.head_lr must be > 0, got {self.head_lr!r}")
        if self.layer_decay is not None and not 0 < self.layer_decay <= 1:
            raise DeepInsightError(f"model.layer_decay must be in (0, 1], got {self.layer_decay!r}")
        if self.cache_features and not self.frozen_throughout:
            raise DeepInsightError(
                "model.cache_features needs a backbone frozen for the whole run "
                "(model.freeze_backbone=true, model.unfreeze_backbone_at_epoch=null)"
            )

    @property
    def frozen_throughout(self) -> bool:
        return self.freeze_backbone and self.unfreeze_backbone_at_epoch is None

    def frozen_at(self, epoch: int) -> bool:
        """Whether the backbone is frozen during ``epoch`` (0-based)."""
        if not self.freeze_backbone:
            return False
        return self.unfreeze_backbone_at_epoch is None or epoch < self.unfreeze_backbone_at_epoch

    def parameter_groups(self, net: nn.Module, weight_decay: float) -> list[dict[str, Any]] | None:
        """Backbone groups, then the head's, each with an ``lr_scale`` relative to the
        optimizer's ``lr`` (the head's is set by the caller from ``head_lr``); None = one group
        of all parameters, as the seed trained."""
        if self.head_lr is None and self.layer_decay is None:
            return None
        if self.layer_decay is None:
            backbone = [{"params": list(net.backbone.parameters()), "lr_scale": 1.0}]
        else:
            if not hasattr(net.backbone, "group_matcher"):
                raise DeepInsightError(
                    "model.layer_decay needs a timm backbone (one that names its layers); "
                    f"{type(net.backbone).__name__} does not"
                )
            from timm.optim import param_groups_layer_decay

            # Biases and norm weights get no weight decay there (timm's rule).
            backbone = param_groups_layer_decay(
                net.backbone, weight_decay=weight_decay, layer_decay=self.layer_decay
            )
        return [*backbone, {"params": list(net.head.parameters()), "lr_scale": 1.0}]
