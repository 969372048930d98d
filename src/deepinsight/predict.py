"""Score image files with a trained detector (checkpoint or ONNX) and write one row per file.

    python -m deepinsight.predict ckpt=best.ckpt inputs=[a.jpg,photos,"x/*.png"] output=preds.csv
    deepinsight-predict ckpt=model.onnx inputs=photos output=- format=json
    deepinsight-predict ckpt=best.ckpt inputs=photos cam=true cam_dir=heatmaps

Rows are ``path,score,prediction,error`` (score = P(fake); fake iff score >= threshold). A file
that cannot be used as an image gets a reason in ``error`` and the run goes on.
Exit codes: 0 every file scored; 3 some files had errors; 2 bad arguments (nothing scored).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, NoReturn

from tqdm import tqdm

from deepinsight.cli import compose_command_config, run_command
from deepinsight.data.image_io import DEFAULT_MAX_PIXELS
from deepinsight.errors import EXIT_OK, EXIT_SOME_FILES_FAILED, DeepInsightError
from deepinsight.inference import collect_image_files, iterate_batches, load_detector
from deepinsight.inference.batches import ImageBatch
from deepinsight.inference.detector import Detector
from deepinsight.inference.results import (
    OUTPUT_FORMATS,
    STDOUT,
    PredictionRow,
    Tally,
    open_row_writer,
)
from deepinsight.inference.torch_detector import TorchDetector

CONFIG_NAME = "predict"


@dataclass(frozen=True)
class PredictOptions:
    """The validated options of one predict run (documented in conf/predict.yaml)."""

    ckpt: str
    inputs: tuple[str, ...]
    output: str = STDOUT
    format: str = "csv"
    threshold: float | None = None
    batch_size: int = 32
    num_workers: int = 2
    max_pixels: int | None = DEFAULT_MAX_PIXELS
    device: str = "auto"
    cam: bool = False
    cam_dir: str | None = None

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> PredictOptions:
        """Check every option; a bad one is a DeepInsightError naming it."""
        values = {f.name: cfg[f.name] for f in fields(cls) if f.name in cfg}
        inputs = values.get("inputs") or ()
        # inputs=photos (one path, no brackets) is as natural to type as a list.
        values["inputs"] = (inputs,) if isinstance(inputs, str) else tuple(map(str, inputs))
        if not values["inputs"]:
            raise DeepInsightError("no inputs given; use inputs=[FILE_OR_DIR_OR_GLOB,...]")
        values["ckpt"], values["output"] = str(values["ckpt"]), str(values.get("output", STDOUT))
        if values.get("format", "csv") not in OUTPUT_FORMATS:
            raise DeepInsightError(
                f"format must be one of {OUTPUT_FORMATS}, not {values['format']!r}"
            )
        threshold = values.get("threshold")
        if threshold is not None:
            if (
                isinstance(threshold, bool)
                or not isinstance(threshold, (int, float))
                or not (0 <= threshold <= 1)
            ):
                raise DeepInsightError(f"threshold must be a number in [0, 1], not {threshold!r}")
            values["threshold"] = float(threshold)
        _require_int("batch_size", values.get("batch_size", 1), minimum=1)
        _require_int("num_workers", values.get("num_workers", 0), minimum=0)
        if values.get("max_pixels") is not None:
            _require_int("max_pixels", values["max_pixels"], minimum=1)
        if not isinstance(values.get("cam", False), bool):
            raise DeepInsightError(f"cam must be true or false, not {values['cam']!r}")
        if values.get("cam") and not values.get("cam_dir"):
            raise DeepInsightError("cam=true needs cam_dir=DIR for the heatmap images")
        return cls(**values)


def _require_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise DeepInsightError(f"{name} must be an integer >= {minimum}, not {value!r}")


def predict(options: PredictOptions) -> int:
    """Score every input file; write the rows and a summary; return the exit code."""
    collected = collect_image_files(options.inputs)
    for folder in collected.empty_folders:
        print(f"warning: no image files in {folder}", file=sys.stderr)
    if not collected.files:
        raise DeepInsightError("the inputs hold no image files")
    detector = load_detector(options.ckpt, device=options.device)
    if options.cam and not isinstance(detector, TorchDetector):
        raise DeepInsightError(
            f"cam=true needs a torch checkpoint (.ckpt): Grad-CAM needs gradients, which "
            f"{detector.source} ({detector.kind}) does not provide"
        )
    threshold = detector.threshold if options.threshold is None else options.threshold
    files = collected.files

    tally = Tally()
    progress = tqdm(
        total=len(files),
        unit="img",
        file=sys.stderr,
        # Shown for runs longer than one batch, on a terminal only (tqdm's None).
        disable=True if len(files) <= options.batch_size else None,
    )
    with (
        open_row_writer(options.output, options.format) as writer,
        progress,
        open_cam(options, detector) as cam,
    ):
        batches = iterate_batches(
            files,
            detector.preprocessing,
            options.batch_size,
            options.num_workers,
            options.max_pixels,
        )
        for batch in batches:
            rows = score_batch(detector, batch, files, threshold)
            for row in rows:
                writer.write(row)
                tally.add(row)
            if cam is not None:
                save_batch_overlays(cam, batch, files, Path(str(options.cam_dir)))
            progress.update(len(rows))

    where = "stdout" if options.output == STDOUT else options.output
    origin = "stored" if options.threshold is None else "given"
    print(
        f"{tally.summary()} at threshold {threshold:.4g} ({origin}) -> {where}"
        + (" (see the error column)" if tally.errors else ""),
        file=sys.stderr,
    )
    return EXIT_SOME_FILES_FAILED if tally.errors else EXIT_OK


def score_batch(
    detector: Detector, batch: ImageBatch, files: Sequence[Path], threshold: float
) -> list[PredictionRow]:
    """The rows of one batch, in file order: scored images and failed files together."""
    rows: dict[int, PredictionRow] = {
        index: PredictionRow.failed(str(files[index]), reason)
        for index, reason in batch.errors.items()
    }
    if batch.images is not None:
        for index, score in zip(batch.indices, detector.score(batch.images)):
            rows[index] = PredictionRow.scored(str(files[index]), float(score), threshold)
    return [rows[index] for index in sorted(rows)]


def open_cam(options: PredictOptions, detector: Detector):
    """A Grad-CAM renderer when cam=true (torch detectors only), else a no-op context."""
    if not options.cam:
        return nullcontext(None)
    from deepinsight.inference.gradcam import GradCamOverlays

    try:
        Path(str(options.cam_dir)).mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DeepInsightError(f"cannot create cam_dir {options.cam_dir}: {err.strerror}") from None
    assert isinstance(detector, TorchDetector)  # checked with a user-facing message in predict
    return GradCamOverlays(detector.net, detector.preprocessing)


def save_batch_overlays(cam, batch: ImageBatch, files: Sequence[Path], cam_dir: Path) -> None:
    """One PNG per scored image, named ``<row number>_<file stem>.png`` to map back to its row."""
    from deepinsight.inference.gradcam import save_overlay

    if batch.images is None:
        return
    width = len(str(len(files)))
    for index, overlay in zip(batch.indices, cam.render(batch.images)):
        save_overlay(overlay, cam_dir / f"{index + 1:0{width}d}_{files[index].stem}.png")


def run(argv: Sequence[str]) -> int:
    """Parse ``key=value`` arguments and predict; returns the exit code."""
    return predict(PredictOptions.from_config(compose_command_config(CONFIG_NAME, argv)))


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Console entry point (``deepinsight-predict``): exits with the run's exit code."""
    run_command(run, argv, __doc__ or "", CONFIG_NAME)


if __name__ == "__main__":
    main()
