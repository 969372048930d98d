"""Heatmap pictures a person can read, named after the input file.

For every scored picture, ``<stem>[_frame<N>][_face<K>].png``: the picture the model scored
(the aligned face, or the whole image) beside the same picture under its Grad-CAM map of the fake
logit, both at least 256 px (the map is upsampled bicubically), with the verdict, the score and
the threshold written underneath. For a photo whose faces were found, also ``<stem>_faces.png``:
the photo with each face's box, index and score drawn on it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from deepinsight.inference.gradcam import GradCamOverlays
from deepinsight.inference.results import PredictionRow
from deepinsight.inference.scoring import ScoredInput
from deepinsight.inference.torch_detector import TorchDetector

MIN_SIDE = 256  # the smallest side a shown picture gets
CAPTION_HEIGHT = 44
FAKE_COLOUR, REAL_COLOUR = (200, 30, 30), (20, 130, 60)


class OverlayWriter:
    """Writes the heatmap pictures of each :class:`ScoredInput` into ``folder``."""

    def __init__(self, detector: TorchDetector, folder: Path, threshold: float) -> None:
        self.folder = folder
        self.threshold = threshold
        self.cam = GradCamOverlays(detector.net, detector.preprocessing)
        self._stems: set[str] = set()
        self._font = ImageFont.load_default(size=15)

    def write(self, scored: ScoredInput) -> list[Path]:
        """The files written for one input (none for an input that failed)."""
        pictures = [p for p in scored.pictures if p.image is not None and p.row.error is None]
        if not pictures:
            return []
        stem = self._unique_stem(scored.path)
        import torch

        heatmaps = self.cam.heatmaps(torch.stack([p.tensor for p in pictures]))
        written = []
        for picture, heatmap in zip(pictures, heatmaps):
            path = self.folder / f"{stem}{_suffix(picture.row)}.png"
            self._panel(picture.image, heatmap, picture.row).save(path, format="PNG")
            written.append(path)
        if scored.preview is not None:
            path = self.folder / f"{stem}_faces.png"
            self._boxes(scored).save(path, format="PNG")
            written.append(path)
        return written

    def close(self) -> None:
        self.cam.close()

    def __enter__(self) -> OverlayWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _unique_stem(self, path: Path) -> str:
        # Two inputs with the same name (a/x.jpg, b/x.jpg) must not overwrite each other.
        stem, n = path.stem, 2
        while stem in self._stems:
            stem, n = f"{path.stem}-{n}", n + 1
        self._stems.add(stem)
        return stem

    def _panel(self, image: Image.Image, heatmap: np.ndarray, row: PredictionRow) -> Image.Image:
        from pytorch_grad_cam.utils.image import show_cam_on_image

        shown = _at_least(image.convert("RGB"), MIN_SIDE)
        smooth = Image.fromarray(heatmap.astype(np.float32), mode="F").resize(
            shown.size, Image.Resampling.BICUBIC
        )
        heat = np.clip(np.asarray(smooth), 0.0, 1.0)
        overlay = show_cam_on_image(np.asarray(shown, np.float32) / 255.0, heat, use_rgb=True)
        width, height = shown.size
        panel = Image.new("RGB", (2 * width + 8, height + CAPTION_HEIGHT), "white")
        panel.paste(shown, (0, 0))
        panel.paste(Image.fromarray(overlay), (width + 8, 0))
        draw = ImageDraw.Draw(panel)
        verdict = str(row.prediction).upper()
        relation = ">=" if row.prediction == "fake" else "<"
        colour = FAKE_COLOUR if row.prediction == "fake" else REAL_COLOUR
        draw.text((6, height + 4), verdict, fill=colour, font=self._font)
        draw.text(
            (70, height + 4),
            f"P(fake) {row.score:.3f} {relation} threshold {self.threshold:.3f}",
            fill="black",
            font=self._font,
        )
        draw.text((6, height + 23), _where(row), fill=(90, 90, 90), font=self._font)
        return panel

    def _boxes(self, scored: ScoredInput) -> Image.Image:
        picture = scored.preview.copy()
        draw = ImageDraw.Draw(picture)
        scale = scored.preview_scale
        line = max(2, round(max(picture.size) / 300))
        for row in scored.rows:
            if row.box is None or row.score is None:
                continue
            box = [v * scale for v in row.box]
            colour = FAKE_COLOUR if row.prediction == "fake" else REAL_COLOUR
            draw.rectangle(box, outline=colour, width=line)
            label = f"face {row.face}: {row.prediction} {row.score:.3f}"
            left, top = box[0], max(0.0, box[1] - 20)
            draw.rectangle(draw.textbbox((left, top), label, font=self._font), fill="white")
            draw.text((left, top), label, fill=colour, font=self._font)
        return picture


def _at_least(image: Image.Image, side: int) -> Image.Image:
    factor = side / min(image.size)
    if factor <= 1:
        return image
    size = (round(image.width * factor), round(image.height * factor))
    return image.resize(size, Image.Resampling.BICUBIC)


def _suffix(row: PredictionRow) -> str:
    parts = []
    if row.frame is not None:
        parts.append(f"_frame{row.frame:05d}")
    if row.face is not None:
        parts.append(f"_face{row.face}")
    return "".join(parts)


def _where(row: PredictionRow) -> str:
    name = Path(row.path).name
    if row.frame is not None:
        name += f", frame {row.frame} ({row.time_s:.2f} s)"
    if row.face is not None:
        name += f", face {row.face}"
    return name
