"""Fixed input representations, computed by the network itself as its first step.

The literature on detecting unseen generators found inputs that carry across generators better
than raw pixels (issue 19; ../shared/notes/representation-prototype.md is the planning probe):

- ``npr``: Neighbouring Pixel Relationships (C. Tan et al., "Rethinking the Up-Sampling
  Operations in CNN-based Generative Network for Generalizable Deepfake Detection", CVPR 2024):
  the image minus its nearest-neighbour down- and up-sampled copy, ``x - up2(down2(x))``. Within
  each 2x2 block it keeps how the pixels differ from the block's top-left one: the local
  correlations a generator's up-sampling leaves. On an image that is itself nearest-neighbour
  up-sampled it is exactly zero.
- ``highpass``: a fixed 3x3 second-derivative residual per channel, the kernel
  ``[[-1, 2, -1], [2, -4, 2], [-1, 2, -1]] / 4`` (one of the SRM residual filters of Fridrich
  and Kodovsky, 2012, as several DeepfakeBench detectors use them), with mirrored borders.
- ``pixels``: the image as it is (the default; no module).

Both residuals are small numbers; each is multiplied by a fixed ``scale`` so that it reaches the
backbone at about the spread pixels have. They run inside ``DeepfakeNet.forward``, so training,
``predict``, ``evaluate``, the server and the exported ONNX graph all apply them identically; the
checkpoint's ``preprocessing`` records which (``input``) and its ``input_scale``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

REPRESENTATIONS = ("pixels", "npr", "highpass")
# Multipliers that bring each residual to about the spread of [0, 1] pixels. Measured on every
# 6th image of the default demo's train split (267 images, 64 px, 2026-12-02): pixels std 0.255,
# NPR 0.123, high-pass 0.139 at scale 1. The values in use are stored in each checkpoint.
DEFAULT_SCALES = {"npr": 2.0, "highpass": 2.0}

_HIGHPASS_KERNEL = torch.tensor([[-1.0, 2.0, -1.0], [2.0, -4.0, 2.0], [-1.0, 2.0, -1.0]]) / 4.0


class NeighbourPixelResidual(nn.Module):
    """``scale * (x - nearest_up2(nearest_down2(x)))`` on (N, C, H, W) images."""

    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale = float(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        down = x[..., ::2, ::2]  # nearest-neighbour down-sampling: each block's top-left pixel
        up = F.interpolate(down, scale_factor=2.0, mode="nearest")[..., :height, :width]
        return (x - up) * self.scale


class FixedHighPass(nn.Module):
    """``scale * (k * x)`` per channel, k the 3x3 second-derivative kernel, mirrored borders."""

    def __init__(self, scale: float, channels: int) -> None:
        super().__init__()
        self.scale = float(scale)
        self.channels = int(channels)
        kernel = _HIGHPASS_KERNEL.view(1, 1, 3, 3).repeat(self.channels, 1, 1, 1)
        # Not persistent: the values are fixed, and state dicts stay the same for every input.
        self.register_buffer("kernel", kernel, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
        return F.conv2d(padded, self.kernel.to(x.dtype), groups=self.channels) * self.scale


def build_representation(kind: str, scale: float | None, channels: int) -> nn.Module | None:
    """The module for ``kind`` (None for pixels); ``scale`` None takes the default."""
    if kind not in REPRESENTATIONS:
        raise ValueError(f"input must be one of {', '.join(REPRESENTATIONS)}, not {kind!r}")
    if kind == "pixels":
        return None
    scale = DEFAULT_SCALES[kind] if scale is None else float(scale)
    if scale <= 0:
        raise ValueError(f"input_scale must be positive, not {scale}")
    if kind == "npr":
        return NeighbourPixelResidual(scale)
    return FixedHighPass(scale, channels)
