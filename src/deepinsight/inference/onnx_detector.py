"""Detectors exported to ONNX (``python -m deepinsight.export``), run with onnxruntime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from deepinsight.checkpoint_info import DetectorSpec
from deepinsight.errors import DeepInsightError, first_line
from deepinsight.inference.detector import Detector

# Names of the exported graph's input and outputs (see deepinsight.inference.onnx_export).
INPUT_NAME = "image"
SCORE_OUTPUT = "score"
LOGIT_OUTPUT = "logit"


class OnnxDetector(Detector):
    """An onnxruntime session whose ``score`` output is P(fake)."""

    kind = "onnx"

    def __init__(self, session, spec: DetectorSpec, source: Path) -> None:
        super().__init__(spec, source)
        self.session = session

    @classmethod
    def load(cls, path: Path) -> OnnxDetector:
        """Open an exported model and read its DeepInsight metadata."""
        import onnxruntime as ort  # imported lazily: torch checkpoints do not need it

        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: a bad file is reported by us, in one line
        try:
            session = ort.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as err:  # onnxruntime raises its own exception types per failure
            raise DeepInsightError(
                f"{path} is neither a DeepInsight checkpoint (.ckpt) nor an ONNX model "
                f"({first_line(err, limit=160)})"
            ) from None
        spec = DetectorSpec.from_onnx_metadata(
            session.get_modelmeta().custom_metadata_map, str(path)
        )
        inputs = [i.name for i in session.get_inputs()]
        outputs = [o.name for o in session.get_outputs()]
        if inputs != [INPUT_NAME] or SCORE_OUTPUT not in outputs:
            raise DeepInsightError(
                f"{path} is not a valid DeepInsight model: expected input '{INPUT_NAME}' and "
                f"output '{SCORE_OUTPUT}', found inputs {inputs} and outputs {outputs}"
            )
        return cls(session, spec, path)

    def logits(self, images: torch.Tensor) -> np.ndarray:
        array = images.detach().cpu().numpy().astype(np.float32, copy=False)
        (logits,) = self.session.run([LOGIT_OUTPUT], {INPUT_NAME: array})
        return logits.reshape(-1).astype(np.float32, copy=False)

    def score(self, images: torch.Tensor) -> np.ndarray:
        array = images.detach().cpu().numpy().astype(np.float32, copy=False)
        (scores,) = self.session.run([SCORE_OUTPUT], {INPUT_NAME: array})
        return scores.reshape(-1).astype(np.float32, copy=False)
