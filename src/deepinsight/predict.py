"""Score photos, face crops and videos with a trained detector (checkpoint or ONNX).

    python -m deepinsight.predict ckpt=best.ckpt inputs=[a.jpg,photos,"x/*.png"] output=preds.csv
    deepinsight-predict ckpt=model.onnx inputs=photos output=- format=json
    deepinsight-predict ckpt=best.ckpt inputs=[photo.jpg,clip.mp4] faces=auto cam=true

Rows are ``path,kind,frame,time_s,face,box,score,prediction,error`` (score = P(fake); fake iff
score >= threshold): one per face of a photo (or per image, when images are scored whole), and
per video one aggregate row and one per sampled frame's face (deepinsight.inference.results).
A file that cannot be used, or a photo without a face, gets a reason in ``error`` and the run
goes on. Exit codes: 0 every input scored; 3 some inputs had errors; 2 bad arguments.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, NoReturn

from tqdm import tqdm

from deepinsight.cli import compose_command_config, run_command
from deepinsight.data.image_io import DEFAULT_MAX_PIXELS
from deepinsight.errors import EXIT_OK, EXIT_SOME_FILES_FAILED, DeepInsightError
from deepinsight.faces.policy import face_mode
from deepinsight.inference import collect_image_files, load_detector
from deepinsight.inference.inputs import MEDIA_EXTENSIONS
from deepinsight.inference.results import OUTPUT_FORMATS, STDOUT, Tally, open_row_writer
from deepinsight.inference.scoring import ScoringOptions, face_policy, score_inputs
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
    faces: str = "auto"
    frames: int = 32
    video_aggregate: str = "mean"
    crop_size: int = 256
    face_detector: Mapping[str, Any] | None = None

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
        values["faces"] = face_mode(values.get("faces", "auto"))
        _require_int("frames", values.get("frames", 1), minimum=1)
        _require_int("crop_size", values.get("crop_size", 1), minimum=16)
        values["face_detector"] = dict(values.get("face_detector") or {})
        options = cls(**values)
        options.scoring()  # ScoringOptions checks faces, video_aggregate and face_detector
        return options

    def scoring(self) -> ScoringOptions:
        """The options of :func:`deepinsight.inference.scoring.score_inputs`."""
        return ScoringOptions(
            faces=self.faces,
            frames=self.frames,
            video_aggregate=self.video_aggregate,
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            max_pixels=self.max_pixels,
            crop_size=self.crop_size,
            face_detector=dict(self.face_detector or {}),
            keep_pictures=self.cam,
        )


def _require_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise DeepInsightError(f"{name} must be an integer >= {minimum}, not {value!r}")


def predict(options: PredictOptions) -> int:
    """Score every input; write the rows and a summary; return the exit code."""
    collected = collect_image_files(options.inputs, MEDIA_EXTENSIONS)
    for folder in collected.empty_folders:
        print(f"warning: no image or video files in {folder}", file=sys.stderr)
    if not collected.files:
        raise DeepInsightError("the inputs hold no image or video files")
    detector = load_detector(options.ckpt, device=options.device)
    if options.cam and not isinstance(detector, TorchDetector):
        raise DeepInsightError(
            f"cam=true needs a torch checkpoint (.ckpt): Grad-CAM needs gradients, which "
            f"{detector.source} ({detector.kind}) does not provide"
        )
    threshold = detector.threshold if options.threshold is None else options.threshold
    scoring = options.scoring()
    files = collected.files

    tally = Tally()
    progress = tqdm(
        total=len(files),
        unit="file",
        file=sys.stderr,
        # Shown for runs longer than one batch, on a terminal only (tqdm's None).
        disable=True if len(files) <= options.batch_size else None,
    )
    with (
        open_row_writer(options.output, options.format) as writer,
        progress,
        open_overlays(options, detector, threshold) as overlays,
    ):
        # After the output opened: a bad output path is the one line a user sees.
        for line in face_policy(detector, scoring).notices(str(detector.source.name)):
            print(line, file=sys.stderr)
        for scored in score_inputs(detector, files, scoring, threshold):
            for row in scored.rows:
                writer.write(row)
                tally.add(row)
            if overlays is not None:
                overlays.write(scored)
            progress.update(1)

    where = "stdout" if options.output == STDOUT else options.output
    origin = "stored" if options.threshold is None else "given"
    print(
        f"{tally.summary()} at threshold {threshold:.4g} ({origin}) -> {where}"
        + (" (see the error column)" if tally.errors else ""),
        file=sys.stderr,
    )
    return EXIT_SOME_FILES_FAILED if tally.errors else EXIT_OK


def open_overlays(options: PredictOptions, detector, threshold: float):
    """The heatmap writer when cam=true (torch detectors only), else a no-op context."""
    from contextlib import nullcontext

    if not options.cam:
        return nullcontext(None)
    from deepinsight.inference.overlays import OverlayWriter

    try:
        Path(str(options.cam_dir)).mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DeepInsightError(f"cannot create cam_dir {options.cam_dir}: {err.strerror}") from None
    assert isinstance(detector, TorchDetector)  # checked with a user-facing message in predict
    return OverlayWriter(detector, Path(str(options.cam_dir)), threshold)


def run(argv: Sequence[str]) -> int:
    """Parse ``key=value`` arguments and predict; returns the exit code."""
    return predict(PredictOptions.from_config(compose_command_config(CONFIG_NAME, argv)))


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Console entry point (``deepinsight-predict``): exits with the run's exit code."""
    run_command(run, argv, __doc__ or "", CONFIG_NAME)


if __name__ == "__main__":
    main()
