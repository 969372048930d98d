"""Inference: load a trained detector (checkpoint or ONNX), score image files, explain scores.

- :func:`load_detector` -> :class:`Detector` (``preprocessing``, ``threshold``, ``score``);
- :func:`collect_image_files` expands files, folders and globs;
- :func:`iterate_batches` streams them through the evaluation transform;
- :func:`score_inputs` scores photos, face crops and videos as users have them: faces found and
  FFHQ-aligned (``ScoringOptions.faces``), videos sampled, one :class:`PredictionRow` per face,
  frame and video (what ``predict`` writes);
- :mod:`deepinsight.inference.onnx_export` and :mod:`deepinsight.inference.gradcam` hold the
  ONNX export and the Grad-CAM overlays (imported on demand: they pull in heavier packages).
"""

from deepinsight.checkpoint_info import DetectorSpec
from deepinsight.inference.batches import ImageBatch, iterate_batches
from deepinsight.inference.detector import Detector
from deepinsight.inference.factory import load_detector
from deepinsight.inference.inputs import CollectedInputs, collect_image_files
from deepinsight.inference.results import PredictionRow, decide
from deepinsight.inference.scoring import ScoredInput, ScoringOptions, score_inputs

__all__ = [
    "CollectedInputs",
    "Detector",
    "DetectorSpec",
    "ImageBatch",
    "PredictionRow",
    "ScoredInput",
    "ScoringOptions",
    "collect_image_files",
    "decide",
    "iterate_batches",
    "load_detector",
    "score_inputs",
]
