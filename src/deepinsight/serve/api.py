"""Scoring inside LitServe's model workers: the detector, its preprocessing, dynamic batches.

Each worker process loads the detector once (``setup``), decodes each request's image with the
same decoder and preprocessing as ``predict`` (``decode_request``) and scores the requests
LitServe gathered into one batch in one forward pass (``predict``). Every response says how many
requests its batch held, so a client (or the load benchmark) sees the batching it got.
"""

from __future__ import annotations

import base64
import io
import warnings
from dataclasses import dataclass
from typing import Any

import litserve as ls
import numpy as np
import torch
from fastapi import HTTPException
from PIL import Image

from deepinsight.data.image_io import ImageLoadError, decode_image_bytes
from deepinsight.data.transforms import build_eval_transform
from deepinsight.inference import load_detector
from deepinsight.inference.results import decide
from deepinsight.inference.torch_detector import TorchDetector

# Heatmaps are drawn at the model's input size (64 px on the demo): enlarged to at least this,
# smoothly, so a person can read them.
MIN_HEATMAP_SIZE = 256


@dataclass
class Item:
    """One decoded request, ready for a batch."""

    image: torch.Tensor
    filename: str | None
    cam: bool


class DetectorAPI(ls.LitAPI):
    def __init__(
        self, ckpt: str, max_pixels: int | None, max_batch_size: int, batch_timeout: float
    ):
        with warnings.catch_warnings():
            # LitServe warns when batch/unbatch exist but max_batch_size is 1: here that is the
            # user's choice (scoring one at a time), and predict handles both.
            warnings.filterwarnings("ignore", message=".*batch and unbatch methods")
            super().__init__(max_batch_size=max_batch_size, batch_timeout=batch_timeout)
        self.ckpt = ckpt
        self.max_pixels = max_pixels

    def setup(self, device: str) -> None:
        self.detector = load_detector(self.ckpt, device=device)
        self.transform = build_eval_transform(self.detector.preprocessing)
        self._cam = None

    # `request` is left unannotated on purpose: LitServe reads the annotation as the body's
    # type, and without one it parses the JSON the upload gate forwards.
    def decode_request(self, request) -> Item:  # noqa: ANN001
        try:
            image = decode_image_bytes(base64.b64decode(request["image"]), self.max_pixels)
        except (ImageLoadError, KeyError, ValueError) as err:  # the gate checked it already
            raise HTTPException(400, f"not a usable image: {err}") from None
        return Item(self.transform(image), request.get("filename"), bool(request.get("cam")))

    def batch(self, inputs: list[Item]) -> list[Item]:
        return inputs  # stacked in predict, which also needs each item's options

    def predict(self, x: Item | list[Item]) -> Any:
        items = x if isinstance(x, list) else [x]
        scores = self.detector.score(torch.stack([item.image for item in items]))
        results = [
            self._result(item, float(score), len(items)) for item, score in zip(items, scores)
        ]
        return results if isinstance(x, list) else results[0]

    def unbatch(self, output: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return output

    def encode_response(self, output: dict[str, Any]) -> dict[str, Any]:
        return output

    def _result(self, item: Item, score: float, batch_size: int) -> dict[str, Any]:
        spec = self.detector.spec
        result = {
            "score": score,
            "prediction": decide(score, self.detector.threshold),
            "threshold": self.detector.threshold,
            "model": spec.model_name,
            "format_version": spec.format_version,
            "filename": item.filename,
            "batch_size": batch_size,
        }
        if item.cam:
            result["cam_png"] = self._heatmap_png(item.image)
        return result

    def _heatmap_png(self, image: torch.Tensor) -> str:
        """The Grad-CAM overlay of one image as a base64 PNG (torch checkpoints only)."""
        if not isinstance(self.detector, TorchDetector):
            raise HTTPException(400, "cam=true needs a torch checkpoint (.ckpt), not an ONNX model")
        if self._cam is None:
            from deepinsight.inference.gradcam import GradCamOverlays

            self._cam = GradCamOverlays(self.detector.net, self.detector.preprocessing)
        batch = image.unsqueeze(0).to(self.detector.device)
        with torch.enable_grad():
            (overlay,) = self._cam.render(batch)
        picture = Image.fromarray(np.asarray(overlay))
        if picture.width < MIN_HEATMAP_SIZE:
            side = MIN_HEATMAP_SIZE
            picture = picture.resize((side, side * picture.height // picture.width), Image.BICUBIC)
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG")
        return base64.b64encode(buffer.getvalue()).decode("ascii")
