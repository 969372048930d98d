"""Export a trained checkpoint to ONNX, with its preprocessing and threshold in the metadata.

    python -m deepinsight.export ckpt=run/checkpoints/best.ckpt format=onnx output=model.onnx
    deepinsight-export ckpt=best.ckpt            # writes best.onnx next to the checkpoint

The export is verified before it is kept: onnxruntime must reproduce the checkpoint's scores
within 1e-4. ``python -m deepinsight.predict ckpt=model.onnx ...`` then scores with onnxruntime.
Exit codes: 0 exported; 2 bad arguments or not a DeepInsight checkpoint.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from deepinsight.cli import compose_command_config, run_command
from deepinsight.errors import EXIT_OK, DeepInsightError
from deepinsight.inference import load_detector

CONFIG_NAME = "export"
EXPORT_FORMATS = ("onnx",)


def export(cfg: dict[str, Any]) -> Path:
    """Export ``cfg["ckpt"]`` as ``cfg["format"]``; returns the path written."""
    fmt = str(cfg["format"]).lower()
    if fmt not in EXPORT_FORMATS:
        raise DeepInsightError(f"format must be one of {EXPORT_FORMATS}, not '{cfg['format']}'")
    opset = cfg["opset"]
    if isinstance(opset, bool) or not isinstance(opset, int) or opset < 7:
        raise DeepInsightError(f"opset must be an integer ONNX opset version, not {opset!r}")
    ckpt = Path(str(cfg["ckpt"]))
    output = Path(str(cfg["output"])) if cfg["output"] else ckpt.with_suffix(f".{fmt}")

    detector = load_detector(ckpt, device="cpu")
    if detector.kind != "torch":
        raise DeepInsightError(f"{ckpt} is already an exported {detector.kind} model")
    if output.resolve() == ckpt.resolve():
        raise DeepInsightError(f"output {output} would overwrite the checkpoint")

    from deepinsight.inference.onnx_export import export_onnx  # imports the onnx package

    difference = export_onnx(detector, output, opset=opset)
    print(
        f"exported {detector.describe()} -> {output} "
        f"(threshold {detector.threshold:.4g}; max |onnx - torch| score {difference:.1e})",
        file=sys.stderr,
    )
    return output


def run(argv: Sequence[str]) -> int:
    """Parse ``key=value`` arguments and export; returns the exit code."""
    export(compose_command_config(CONFIG_NAME, argv))
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Console entry point (``deepinsight-export``): exits with the exit code."""
    run_command(run, argv, __doc__ or "", CONFIG_NAME)


if __name__ == "__main__":
    main()
