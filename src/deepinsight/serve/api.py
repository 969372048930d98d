"""Scoring inside LitServe's model workers: the detector, its preprocessing, dynamic batches.

Each worker process loads the detector once (``setup``), decodes each request's image with the
same decoder, face policy (``faces``) and preprocessing as ``predict`` (``decode_request``) and
scores the requests LitServe gathered into one batch in one forward pass (``predict``). Every
response says how many requests its batch held, so a client (or the load benchmark) sees the
batching it got. With faces found, the response lists them (``faces``) and its own score is the
highest face score, as ``evaluate`` scores a photo; an image without a face is a 422.
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
from deepinsight.faces.policy import FaceCrop, FacePolicy, no_face_reason
from deepinsight.inference import load_detector
from deepinsight.inference.results import decide
from deepinsight.inference.torch_detector import TorchDetector

# Heatmaps are drawn at the model's input size (64 px on the demo): enlarged to at least this,
# smoothly, so a person can read them.
MIN_HEATMAP_SIZE = 256


@dataclass
class Item:
    """One decoded request, ready for a batch: one tensor per face (or the whole image)."""

    images: list[torch.Tensor]
    faces: list[FaceCrop]
    filename: str | None
    cam: bool


class DetectorAPI(ls.LitAPI):
    def __init__(
        self,
        ckpt: str,
        max_pixels: int | None,
        max_batch_size: int,
        batch_timeout: float,
        faces: str = "auto",
        face_detector: dict[str, Any] | None = None,
    ):
        with warnings.catch_warnings():
            # LitServe warns when batch/unbatch exist but max_batch_size is 1: here that is the
            # user's choice (scoring one at a time), and predict handles both.
            warnings.filterwarnings("ignore", message=".*batch and unbatch methods")
            super().__init__(max_batch_size=max_batch_size, batch_timeout=batch_timeout)
        self.ckpt = ckpt
        self.max_pixels = max_pixels
        self.faces = faces
        self.face_detector = dict(face_detector or {})

    def setup(self, device: str) -> None:
        self.detector = load_detector(self.ckpt, device=device)
        self.transform = build_eval_transform(self.detector.preprocessing)
        self.policy = FacePolicy(
            self.faces, self.detector.preprocessing.get("crops"), detector=self.face_detector
        )
        self._cam = None

    # `request` is left unannotated on purpose: LitServe reads the annotation as the body's
    # type, and without one it parses the JSON the upload gate forwards.
    def decode_request(self, request) -> Item:  # noqa: ANN001
        try:
            image = decode_image_bytes(base64.b64decode(request["image"]), self.max_pixels)
        except (ImageLoadError, KeyError, ValueError) as err:  # the gate checked it already
            raise HTTPException(400, f"not a usable image: {err}") from None
        (crops,) = self.policy.crops([image])
        if not crops:
            raise HTTPException(422, no_face_reason(self.faces))
        return Item(
            [self.transform(crop.image) for crop in crops],
            crops,
            request.get("filename"),
            bool(request.get("cam")),
        )

    def batch(self, inputs: list[Item]) -> list[Item]:
        return inputs  # stacked in predict, which also needs each item's options

    def predict(self, x: Item | list[Item]) -> Any:
        items = x if isinstance(x, list) else [x]
        scores = self.detector.score(torch.stack([t for item in items for t in item.images]))
        results, start = [], 0
        for item in items:
            own = [float(v) for v in scores[start : start + len(item.images)]]
            start += len(item.images)
            results.append(self._result(item, own, len(items)))
        return results if isinstance(x, list) else results[0]

    def unbatch(self, output: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return output

    def encode_response(self, output: dict[str, Any]) -> dict[str, Any]:
        return output

    def _result(self, item: Item, scores: list[float], batch_size: int) -> dict[str, Any]:
        spec = self.detector.spec
        threshold = self.detector.threshold
        top = int(np.argmax(scores))
        score = scores[top]
        result = {
            "score": score,
            "prediction": decide(score, self.detector.threshold),
            "threshold": self.detector.threshold,
            "model": spec.model_name,
            "format_version": spec.format_version,
            "filename": item.filename,
            "batch_size": batch_size,
        }
        if item.faces[0].face is not None:
            result["faces"] = [
                {
                    "face": crop.face,
                    "box": [round(v, 2) for v in crop.box or ()],
                    "score": value,
                    "prediction": decide(value, threshold),
                }
                for crop, value in zip(item.faces, scores)
            ]
        if item.cam:  # the heatmap of the face that decided the verdict
            result["cam_png"] = self._heatmap_png(item.images[top])
            if item.faces[top].face is not None:
                result["cam_face"] = item.faces[top].face
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
