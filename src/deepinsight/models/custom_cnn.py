"""The seed study's custom CNN: conv blocks whose filters grow from 16 to 512."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

SEED_WIDTHS = (16, 32, 64, 128, 256, 512)


def conv_block(in_ch: int, out_ch: int, dropout: float) -> nn.Sequential:
    """Conv, BatchNorm, ReLU, MaxPool, Dropout: the block the seed's slides describe."""
    return nn.Sequential(
        # The conv has no bias because BatchNorm right after it adds one.
        nn.Conv2d(in_ch, out_ch, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2, ceil_mode=True),
        nn.Dropout2d(dropout) if dropout > 0 else nn.Identity(),
    )


class CustomCNNFeatures(nn.Sequential):
    """Stacked conv blocks then global average pooling; outputs (N, widths[-1])."""

    def __init__(
        self, in_chans: int = 3, widths: Sequence[int] = SEED_WIDTHS, dropout: float = 0.2
    ) -> None:
        blocks = []
        prev = in_chans
        for width in widths:
            blocks.append(conv_block(prev, width, dropout))
            prev = width
        super().__init__(*blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.num_features = prev
