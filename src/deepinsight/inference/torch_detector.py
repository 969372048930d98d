"""Detectors rebuilt from DeepInsight checkpoints, without the training code or config.

A checkpoint is read with ``torch.load(weights_only=True)``: tensors and plain containers only,
so a tampered or foreign file is refused instead of running the code pickled inside it.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepinsight.checkpoint_info import DetectorSpec
from deepinsight.errors import DeepInsightError, first_line
from deepinsight.inference.detector import Detector
from deepinsight.models import DeepfakeNet, create_model

# The LightningModule keeps the DeepfakeNet as ``self.net`` (docs/contracts.md).
STATE_DICT_PREFIX = "net."


class TorchDetector(Detector):
    """A :class:`DeepfakeNet` in eval mode on one device."""

    kind = "torch"

    def __init__(self, net: DeepfakeNet, spec: DetectorSpec, source: Path, device: str) -> None:
        super().__init__(spec, source)
        self.device = torch.device(device)
        self.net = net.to(self.device).eval()

    @classmethod
    def load(cls, path: Path, device: str = "auto") -> TorchDetector:
        """Rebuild the network a checkpoint describes and load its weights."""
        spec, weights = read_checkpoint(path)
        net = build_network(spec)
        try:
            net.load_state_dict(weights, strict=True)
        except RuntimeError as err:
            raise DeepInsightError(
                f"{path} is not a valid DeepInsight model: its weights do not fit a "
                f"{spec.model_name} with in_chans={spec.in_chans} ({first_line(err, limit=200)})"
            ) from None
        return cls(net, spec, path, resolve_device(device))

    def logits(self, images: torch.Tensor) -> np.ndarray:
        with torch.inference_mode():
            return self.net(images.to(self.device, dtype=torch.float32)).float().cpu().numpy()

    def score(self, images: torch.Tensor) -> np.ndarray:
        with torch.inference_mode():
            logits = self.net(images.to(self.device, dtype=torch.float32))
            # Temperature scaling (1.0 for old checkpoints), exactly as training scores the test.
            return torch.sigmoid(logits.float() / self.spec.temperature).cpu().numpy()


def read_checkpoint(path: Path) -> tuple[DetectorSpec, dict[str, torch.Tensor]]:
    """The checkpoint's :class:`DetectorSpec` and its network weights (``net.`` prefix removed)."""
    checkpoint = safe_torch_load(path)
    spec = DetectorSpec.from_checkpoint(checkpoint, str(path))
    state_dict = checkpoint.get("state_dict")
    if not isinstance(state_dict, Mapping):
        raise DeepInsightError(f"{path} is not a valid DeepInsight model: it has no state_dict")
    weights = {
        key[len(STATE_DICT_PREFIX) :]: value
        for key, value in state_dict.items()
        if isinstance(key, str) and key.startswith(STATE_DICT_PREFIX)
    }
    if not weights:
        raise DeepInsightError(
            f"{path} is not a valid DeepInsight model: no '{STATE_DICT_PREFIX}' weights in its "
            "state_dict"
        )
    return spec, weights


def safe_torch_load(path: Path) -> Any:
    """``torch.load`` restricted to weights; anything else is one clear DeepInsightError."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        # torch's message is a paragraph; the line naming the refused object is what matters.
        lines = [line for line in str(err).splitlines() if "GLOBAL" in line]
        detail = f" ({lines[0].strip()})" if lines else ""
        raise DeepInsightError(
            f"refusing to load {path}: it holds Python objects, not just weights, and loading "
            f"them could run code{detail}"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise DeepInsightError(
            f"{path} is not a readable checkpoint ({first_line(err, limit=200)})"
        ) from None


def build_network(spec: DetectorSpec) -> DeepfakeNet:
    """An untrained network with the checkpoint's architecture (weights are loaded after)."""
    kwargs = dict(spec.model_kwargs)
    # The trained weights replace the pretrained ones anyway; asking for them could mean a
    # download, and the training machine's weights file need not exist here.
    if "pretrained" in kwargs:
        kwargs["pretrained"] = False
    kwargs.pop("pretrained_file", None)
    net = create_model(spec.model_name, in_chans=spec.in_chans, **kwargs)
    # Exactly the normalisation it trained with; none for files written before it existed.
    pre = spec.preprocessing
    net.set_representation(pre.get("input"), pre.get("input_scale"))
    net.set_normalization(pre.get("mean"), pre.get("std"))
    return net


def resolve_device(device: str) -> str:
    """ "auto" -> "cuda" when available, else "cpu"; an unusable device is a user error."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except RuntimeError:
        raise DeepInsightError(f"unknown device '{device}'; use auto, cpu or cuda[:N]") from None
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise DeepInsightError(f"device '{device}' asked for, but CUDA is not available")
    return device
