"""Export a checkpoint's network to ONNX, carrying its DetectorSpec in ``metadata_props``.

The graph maps ``image`` (N, C, S, S) float in [0, 1] to ``score`` = P(fake) and ``logit``
(score = sigmoid(logit / temperature), the temperature fitted on validation in training),
with a dynamic batch axis. The export is checked before it is kept: onnxruntime must reproduce
the torch scores on a random batch within :data:`PARITY_TOLERANCE`.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

import deepinsight
from deepinsight.inference.onnx_detector import INPUT_NAME, LOGIT_OUTPUT, SCORE_OUTPUT, OnnxDetector
from deepinsight.inference.torch_detector import TorchDetector

PARITY_TOLERANCE = 1e-4


class ScoreAndLogit(nn.Module):
    """Wraps a DeepfakeNet so the graph returns P(fake) = sigmoid(logit / T) and the raw logit."""

    def __init__(self, net: nn.Module, temperature: float = 1.0) -> None:
        super().__init__()
        self.net = net
        self.temperature = float(temperature)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logit = self.net(image)
        return torch.sigmoid(logit.float() / self.temperature), logit


def export_onnx(detector: TorchDetector, output: Path, opset: int) -> float:
    """Write ``detector`` to ``output`` as ONNX; return the max |onnx - torch| score seen.

    ``opset`` is the ONNX opset version; its default is ``opset`` in conf/export.yaml.

    Raises RuntimeError (a bug, not a user error) if onnxruntime disagrees with torch.
    """
    import onnx  # imported lazily: only export needs the onnx package itself

    net = detector.net.to("cpu").eval()
    pre = detector.preprocessing
    shape = (int(pre["channels"]), int(pre["image_size"]), int(pre["image_size"]))
    generator = torch.Generator().manual_seed(0)
    example = torch.rand(2, *shape, generator=generator)

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # torch 2.14's default exporter (dynamo) needs onnxscript, which DeepInsight does not
        # depend on; the TorchScript exporter handles these plain CNNs exactly, but warns.
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx")
        torch.onnx.export(
            # eval() on the wrapper too: the exporter restores the *wrapper's* mode afterwards,
            # recursively, and a wrapper left in training mode would put BatchNorm back in it.
            ScoreAndLogit(net, detector.spec.temperature).eval(),
            (example,),
            buffer,
            dynamo=False,
            input_names=[INPUT_NAME],
            output_names=[SCORE_OUTPUT, LOGIT_OUTPUT],
            dynamic_axes={name: {0: "batch"} for name in (INPUT_NAME, SCORE_OUTPUT, LOGIT_OUTPUT)},
            opset_version=opset,
        )
    model = onnx.load_from_string(buffer.getvalue())
    model.producer_name = "deepinsight"
    model.producer_version = deepinsight.__version__
    model.doc_string = (
        "DeepInsight deepfake detector: 'image' (N, C, S, S) float in [0, 1] -> 'score' = "
        "sigmoid(logit / metadata 'temperature') = P(fake), 'logit'. "
        "Fake iff score >= metadata 'threshold'."
    )
    for key, value in detector.spec.to_onnx_metadata().items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)

    output.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(output))
    try:
        return check_parity(detector, output, torch.rand(3, *shape, generator=generator))
    except Exception:
        output.unlink(missing_ok=True)  # never leave a model behind that scores differently
        raise


def check_parity(detector: TorchDetector, onnx_path: Path, images: torch.Tensor) -> float:
    """Max |onnx - torch| score on ``images``; RuntimeError above PARITY_TOLERANCE."""
    exported = OnnxDetector.load(onnx_path)
    if exported.spec != detector.spec:
        raise RuntimeError(f"exported metadata {exported.spec} != checkpoint's {detector.spec}")
    # A batch size other than the export example's exercises the dynamic batch axis.
    difference = float(np.max(np.abs(exported.score(images) - detector.score(images))))
    if not difference <= PARITY_TOLERANCE:
        raise RuntimeError(
            f"ONNX export of {detector.source} differs from torch by {difference:.2e} "
            f"(tolerance {PARITY_TOLERANCE:.0e})"
        )
    return difference
