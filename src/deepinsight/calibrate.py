"""Recalibrate a detector for a new domain on a small labelled sample of it.

    python -m deepinsight.calibrate ckpt=run/checkpoints/best.ckpt data.root=SAMPLE exclude=[TEST]

A detector that ranks a new source well often has the wrong threshold there (a score scale that
moved). This refits the temperature (NLL on the sample, kept only if it lowers the sample's
ECE) and the F1-maximising threshold, exactly the rules training applies to its validation
split, and writes a new checkpoint whose ``calibrated_on`` records the sample (path, counts,
date, ECE before and after); ``output=NAME.onnx`` also exports it. It refuses a sample smaller
than ``min_images`` (or than ``min_per_class`` of either class), and one that shares any file,
by content hash, with the ``exclude`` folders: the set to be evaluated must not also
calibrate. Exit codes: 0 written; 2 bad arguments.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import torch
from torchmetrics.classification import BinaryPrecisionRecallCurve

from deepinsight.calibration import calibration_summary, choose_temperature, scale_logits
from deepinsight.checkpoint_info import CHECKPOINT_KEY, DetectorSpec
from deepinsight.cli import compose_command_config, run_command
from deepinsight.data.demo import resolve_data_root
from deepinsight.data.image_io import is_image_path
from deepinsight.data.layouts import Sample, discover_evaluation_split
from deepinsight.errors import EXIT_OK, DeepInsightError
from deepinsight.inference import load_detector
from deepinsight.inference.torch_detector import safe_torch_load
from deepinsight.metrics import f1_maximising_threshold

CONFIG_NAME = "calibrate"
RULE = "max_f1_recalibrated"
ONNX_OPSET = 17  # export's default (conf/export.yaml)


def file_hashes(paths: Sequence[Path]) -> dict[str, Path]:
    """SHA-256 of each file's bytes -> the file (the last one, if two are the same)."""
    found = {}
    for path in paths:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        found[digest.hexdigest()] = path
    return found


def refuse_overlap(samples: Sequence[Sample], exclude: Sequence[str]) -> None:
    """One line naming a shared file, if the sample holds any image of ``exclude``."""
    if not exclude:
        return
    excluded: list[Path] = []
    for root in exclude:
        folder = Path(root).expanduser()
        if not folder.is_dir():
            raise DeepInsightError(f"exclude: {folder} is not a folder")
        excluded += [p for p in folder.rglob("*") if p.is_file() and is_image_path(p)]
    theirs = file_hashes(excluded)
    ours = file_hashes([s.path for s in samples])
    shared = sorted(set(ours) & set(theirs))
    if shared:
        mine, other = ours[shared[0]], theirs[shared[0]]
        example = str(mine) if mine == other else f"{mine} = {other}"
        raise DeepInsightError(
            f"the calibration sample shares {len(shared)} image(s) with the excluded set (e.g. "
            f"{example}); calibrating on images you evaluate on would overstate the result"
        )


def sample_logits(detector, samples: Sequence[Sample], cfg: Mapping[str, Any]):
    """The raw logits and labels of the readable images of ``samples``."""
    from deepinsight.evaluate import score_samples

    logits, errors = score_samples(detector, samples, cfg, output=detector.logits)
    for index in sorted(errors):
        print(f"warning: skipping unreadable image: {samples[index].path} ({errors[index]})",
              file=sys.stderr)  # fmt: skip
    kept = ~np.isnan(logits)
    labels = np.array([s.label for s in samples])[kept]
    return torch.tensor(logits[kept], dtype=torch.float32), torch.tensor(labels)


def fit_on_sample(logits: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """(temperature, threshold) by training's own rules: NLL-fitted T kept only if it lowers the
    ECE, then the F1-maximising threshold of the scaled scores."""
    temperature, _ = choose_temperature(logits, labels)
    curve = BinaryPrecisionRecallCurve()
    curve.update(scale_logits(logits, temperature), labels.long())
    return float(temperature), float(f1_maximising_threshold(curve))


def check_size(labels: torch.Tensor, min_images: int, min_per_class: int) -> None:
    n_fake = int(labels.sum())
    n_real = len(labels) - n_fake
    if len(labels) < min_images or min(n_real, n_fake) < min_per_class:
        raise DeepInsightError(
            f"the calibration sample has {len(labels)} readable images ({n_real} real, "
            f"{n_fake} fake); it needs at least {min_images}, and {min_per_class} of each class "
            "(min_images, min_per_class)"
        )


def recalibrate(cfg: Mapping[str, Any]) -> Path:
    ckpt = Path(str(cfg["ckpt"])).expanduser()
    if ckpt.suffix == ".onnx":
        raise DeepInsightError(
            "calibrate reads a .ckpt (an ONNX graph has its temperature built in); give the "
            "checkpoint it was exported from, with output=NAME.onnx to get a recalibrated ONNX"
        )
    found = discover_evaluation_split(
        resolve_data_root(cfg["data"]["root"]),  # `demo`: the embedded demo dataset
        str(cfg["split"]),
        str(cfg["data"].get("layout") or "auto"),
    )
    ((_, samples),) = found.splits.items()
    check_size(torch.tensor([s.label for s in samples]), cfg["min_images"], cfg["min_per_class"])
    exclude = cfg["exclude"] or []
    refuse_overlap(samples, [exclude] if isinstance(exclude, str) else list(exclude))
    detector = load_detector(ckpt, device=str(cfg["device"]))
    logits, labels = sample_logits(detector, samples, cfg)
    check_size(labels, cfg["min_images"], cfg["min_per_class"])
    # The scores as the detector gives them now, for the before/after comparison.
    before = calibration_summary(labels, scale_logits(logits, detector.spec.temperature))
    temperature, threshold = fit_on_sample(logits, labels)
    after = calibration_summary(labels, scale_logits(logits, temperature))

    checkpoint = safe_torch_load(ckpt)
    meta = dict(checkpoint[CHECKPOINT_KEY])
    meta.update(
        temperature=float(temperature),
        threshold=float(threshold),
        threshold_rule=RULE,
        calibrated_on={
            "data_root": str(found.root),
            "layout": found.layout,
            "n": len(labels),
            "n_real": int((labels == 0).sum()),
            "n_fake": int((labels == 1).sum()),
            "date": dt.date.today().isoformat(),
            "ece_before": before["ece"],
            "ece_after": after["ece"],
            "from_checkpoint": str(ckpt.resolve()),
        },
    )
    DetectorSpec.from_dict(meta, "the recalibrated checkpoint")  # the file stays readable
    checkpoint[CHECKPOINT_KEY] = meta
    output = Path(str(cfg["output"] or ckpt.with_name(f"{ckpt.stem}.recalibrated.ckpt")))
    # output=NAME.onnx: the recalibrated checkpoint goes beside it as NAME.ckpt, then is exported.
    onnx_output = output if output.suffix == ".onnx" else None
    if onnx_output is not None:
        output = output.with_suffix(".ckpt")
    if output.resolve() == ckpt.resolve():
        raise DeepInsightError(f"output {output} would overwrite the checkpoint being recalibrated")
    output.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, output)
    written = [output]
    if onnx_output is not None:
        from deepinsight.inference.onnx_export import export_onnx  # imports the onnx package

        export_onnx(load_detector(output, device="cpu"), onnx_output, opset=ONNX_OPSET)
        written.append(onnx_output)
    print(
        f"recalibrated on {len(labels)} images of {found.root}: temperature "
        f"{detector.spec.temperature:.3f} -> {temperature:.3f}, threshold "
        f"{detector.threshold:.3f} -> {threshold:.3f}, sample ECE {before['ece']:.4f} -> "
        f"{after['ece']:.4f}\n-> {', '.join(str(p) for p in written)}"
    )
    return written[-1]


def run(argv: Sequence[str]) -> int:
    recalibrate(compose_command_config(CONFIG_NAME, argv))
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Console entry point (``deepinsight-calibrate``)."""
    run_command(run, argv, __doc__ or "", CONFIG_NAME)


if __name__ == "__main__":
    main()
