"""A trained detector, whatever file it came from: P(fake) for a batch of preprocessed images.

The runtimes implement it in ``torch_detector`` (checkpoints) and ``onnx_detector`` (exported
models); ``deepinsight.inference.factory.load_detector`` picks one for a file.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepinsight.checkpoint_info import DetectorSpec


class Detector(ABC):
    """Scores preprocessed images; carries the preprocessing and threshold it was validated with."""

    #: "torch" or "onnx": which runtime scores the images.
    kind: str

    def __init__(self, spec: DetectorSpec, source: Path) -> None:
        self.spec = spec
        self.source = source

    @property
    def preprocessing(self) -> dict[str, Any]:
        """The evaluation preprocessing dict (for ``build_eval_transform``)."""
        return self.spec.preprocessing

    @property
    def threshold(self) -> float:
        """The stored decision threshold: fake iff score >= threshold."""
        return self.spec.threshold

    @abstractmethod
    def score(self, images: torch.Tensor) -> np.ndarray:
        """``(N, C, S, S)`` float images in [0, 1] -> ``(N,)`` float32 scores, P(fake)."""

    @abstractmethod
    def logits(self, images: torch.Tensor) -> np.ndarray:
        """The network's raw logits, before temperature scaling (for recalibration)."""

    def describe(self) -> str:
        """One line for logs: which model, from which file, run by what."""
        pre = self.preprocessing
        return (
            f"{self.spec.model_name} ({pre['channels']} channel(s), {pre['image_size']} px) "
            f"from {self.source} via {self.kind}"
        )
