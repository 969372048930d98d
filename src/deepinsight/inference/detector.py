"""A trained detector, whatever file it came from: P(fake) for a batch of preprocessed images.

``load_detector(path)`` opens a DeepInsight checkpoint (``.ckpt``, run with torch) or an
exported ONNX model (run with onnxruntime) behind the same small interface, so ``predict``
does not care which one it was given.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepinsight.errors import DeepInsightError
from deepinsight.inference.spec import DetectorSpec

# torch.save writes a zip archive (the legacy format, a raw pickle, starts with 0x80).
_TORCH_MAGIC = (b"PK\x03\x04", b"\x80")


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

    def describe(self) -> str:
        """One line for logs: which model, from which file, run by what."""
        pre = self.preprocessing
        return (
            f"{self.spec.model_name} ({pre['channels']} channel(s), {pre['image_size']} px) "
            f"from {self.source} via {self.kind}"
        )


def short_reason(err: BaseException, limit: int = 200) -> str:
    """An exception's first line, cut to ``limit`` characters, for one-line error messages."""
    text = str(err).strip()
    line = text.splitlines()[0] if text else type(err).__name__
    return line if len(line) <= limit else line[: limit - 3] + "..."


def load_detector(path: str | Path, device: str = "auto") -> Detector:
    """Open a DeepInsight checkpoint or exported ONNX model; bad files raise DeepInsightError.

    ``device`` ("auto", "cpu", "cuda", "cuda:1", ...) applies to checkpoints; ONNX models run on
    onnxruntime's CPU provider.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise DeepInsightError(f"checkpoint not found: {path}")
    if not path.is_file():
        raise DeepInsightError(f"checkpoint {path} is not a file; give a .ckpt or .onnx file")
    with path.open("rb") as handle:
        head = handle.read(4)
    if not head:
        raise DeepInsightError(f"checkpoint {path} is empty")
    if head.startswith(_TORCH_MAGIC):
        from deepinsight.inference.torch_detector import TorchDetector

        return TorchDetector.load(path, device=device)
    from deepinsight.inference.onnx_detector import OnnxDetector

    return OnnxDetector.load(path)
