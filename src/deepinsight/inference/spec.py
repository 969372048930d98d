"""What a trained detector carries besides its weights: model spec, preprocessing, threshold.

The same facts travel in a checkpoint's ``deepinsight`` dict and in an exported ONNX model's
``metadata_props`` (see docs/contracts.md); :class:`DetectorSpec` reads and checks both, so a
file made by another version or another tool fails with one clear line instead of silently
preprocessing images the wrong way.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from deepinsight.errors import DeepInsightError

FORMAT_VERSION = 1

# The only preprocessing build_eval_transform implements; anything else would be scored wrongly.
SUPPORTED_RESIZE = ("bilinear_antialias",)
SUPPORTED_SCALE = ("unit",)

# Keys of the checkpoint's ``deepinsight`` dict, and of an ONNX model's metadata_props.
METADATA_KEYS = ("format_version", "model", "preprocessing", "threshold", "threshold_rule")


@dataclass(frozen=True)
class DetectorSpec:
    """Everything needed to rebuild a detector and use it as it was validated."""

    model_name: str
    in_chans: int
    model_kwargs: dict[str, Any]
    preprocessing: dict[str, Any]
    threshold: float
    threshold_rule: str | None = None
    format_version: int = FORMAT_VERSION

    @property
    def model(self) -> dict[str, Any]:
        """The model spec as stored: ``{"name", "in_chans", "kwargs"}``."""
        return {"name": self.model_name, "in_chans": self.in_chans, "kwargs": self.model_kwargs}

    def to_dict(self) -> dict[str, Any]:
        """The checkpoint's ``deepinsight`` dict."""
        return {
            "format_version": self.format_version,
            "model": self.model,
            "preprocessing": dict(self.preprocessing),
            "threshold": self.threshold,
            "threshold_rule": self.threshold_rule,
        }

    def to_onnx_metadata(self) -> dict[str, str]:
        """``metadata_props`` for an ONNX model: each key of :meth:`to_dict`, JSON-encoded."""
        return {key: json.dumps(value, sort_keys=True) for key, value in self.to_dict().items()}

    @classmethod
    def from_dict(cls, meta: Any, source: str) -> DetectorSpec:
        """Check a ``deepinsight`` dict; ``source`` names the file in error messages."""
        if not isinstance(meta, Mapping):
            raise _invalid(source, "its 'deepinsight' metadata is not a dict")
        version = meta.get("format_version")
        if not isinstance(version, int) or version < 1:
            raise _invalid(source, f"bad format_version {version!r}")
        if version > FORMAT_VERSION:
            raise DeepInsightError(
                f"{source} was written by a newer DeepInsight (format_version {version}, this "
                f"version reads {FORMAT_VERSION}); upgrade deepinsight to use it"
            )
        model = _require_mapping(meta, "model", source)
        name, in_chans = model.get("name"), model.get("in_chans")
        if not isinstance(name, str) or not isinstance(in_chans, int):
            raise _invalid(source, "its model spec needs a 'name' and an integer 'in_chans'")
        kwargs = model.get("kwargs") or {}
        if not isinstance(kwargs, Mapping):
            raise _invalid(source, "its model 'kwargs' is not a dict")
        preprocessing = _require_mapping(meta, "preprocessing", source)
        preprocessing = _check_preprocessing(preprocessing, source)
        if preprocessing["channels"] != in_chans:
            raise _invalid(
                source,
                f"preprocessing gives {preprocessing['channels']} channels but the model "
                f"takes {in_chans}",
            )
        threshold = meta.get("threshold")
        if not _is_probability(threshold):
            raise _invalid(source, f"its threshold {threshold!r} is not a number in [0, 1]")
        rule = meta.get("threshold_rule")
        return cls(
            model_name=name,
            in_chans=in_chans,
            model_kwargs=dict(kwargs),
            preprocessing=preprocessing,
            threshold=float(threshold),
            threshold_rule=rule if isinstance(rule, str) else None,
            format_version=version,
        )

    @classmethod
    def from_onnx_metadata(cls, props: Mapping[str, str], source: str) -> DetectorSpec:
        """Read the spec back from an ONNX model's ``metadata_props``."""
        missing = [key for key in ("model", "preprocessing", "threshold") if key not in props]
        if missing:
            raise DeepInsightError(
                f"{source} is an ONNX model but not one exported by DeepInsight (no "
                f"{', '.join(missing)} in its metadata); export it with `python -m "
                "deepinsight.export ckpt=... format=onnx`"
            )
        meta: dict[str, Any] = {}
        for key in METADATA_KEYS:
            if key in props:
                try:
                    meta[key] = json.loads(props[key])
                except json.JSONDecodeError:
                    raise _invalid(source, f"its '{key}' metadata is not valid JSON") from None
        meta.setdefault("format_version", FORMAT_VERSION)
        return cls.from_dict(meta, source)


def _check_preprocessing(pre: Mapping[str, Any], source: str) -> dict[str, Any]:
    size, channels = pre.get("image_size"), pre.get("channels")
    if not isinstance(size, int) or size < 1:
        raise _invalid(source, f"preprocessing image_size {size!r} is not a positive integer")
    if channels not in (1, 3):
        raise _invalid(source, f"preprocessing channels {channels!r} is not 1 or 3")
    resize, scale = pre.get("resize", "bilinear_antialias"), pre.get("scale", "unit")
    if resize not in SUPPORTED_RESIZE or scale not in SUPPORTED_SCALE:
        raise DeepInsightError(
            f"{source} asks for preprocessing resize={resize!r}, scale={scale!r}, which this "
            f"version of DeepInsight does not implement (it does resize={SUPPORTED_RESIZE}, "
            f"scale={SUPPORTED_SCALE}); upgrade deepinsight"
        )
    return {**pre, "image_size": size, "channels": channels, "resize": resize, "scale": scale}


def _require_mapping(meta: Mapping[str, Any], key: str, source: str) -> Mapping[str, Any]:
    value = meta.get(key)
    if not isinstance(value, Mapping):
        raise _invalid(source, f"its metadata has no '{key}' dict")
    return value


def _is_probability(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and 0.0 <= value <= 1.0
    )


def _invalid(source: str, reason: str) -> DeepInsightError:
    return DeepInsightError(f"{source} is not a valid DeepInsight model: {reason}")
