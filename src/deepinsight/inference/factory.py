"""``load_detector``: the one way to open a trained detector, whatever file it is.

A DeepInsight checkpoint (``.ckpt``) runs with torch, an exported ONNX model with onnxruntime;
both come back behind the :class:`~deepinsight.inference.detector.Detector` interface, so
``predict`` does not care which one it was given.
"""

from __future__ import annotations

from pathlib import Path

from deepinsight.errors import DeepInsightError
from deepinsight.inference.detector import Detector

# torch.save writes a zip archive (the legacy format, a raw pickle, starts with 0x80).
_TORCH_MAGIC = (b"PK\x03\x04", b"\x80")


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
    # Imported on demand: onnxruntime is only needed for ONNX models.
    from deepinsight.inference.onnx_detector import OnnxDetector

    return OnnxDetector.load(path)
