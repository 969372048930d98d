"""What a trained detector carries besides its weights: model spec, preprocessing, threshold.

:class:`DetectorSpec` owns the checkpoint's ``deepinsight`` dict in both directions: training
writes it (``DeepfakeClassifier.on_save_checkpoint``), inference and export read it, and an
exported ONNX model carries the same dict in its ``metadata_props`` (see docs/contracts.md). A
file made by another version or another tool fails with one clear line instead of silently
preprocessing images the wrong way.

Adding a field is one edit: declare it on :class:`DetectorSpec` with a default (files written
before it lack it) and a check; the dict, the ONNX metadata and the reader follow the declaration.
The module needs only the standard library, so training uses it without the inference stack.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from deepinsight.errors import DeepInsightError

# Version 2 added the optional preprocessing mean/std (and bicubic resizing); version 3 the input
# representation (``input``: npr or highpass, with ``input_scale``). A file that uses none of
# them is written as version 1, so older DeepInsight versions still read it; one that uses them
# says "upgrade" there instead of being scored without its normalisation or representation.
FORMAT_VERSION = 3
# The key under which a checkpoint holds the dict, beside Lightning's own keys.
CHECKPOINT_KEY = "deepinsight"

# The only preprocessing build_eval_transform implements; anything else would be scored wrongly.
SUPPORTED_RESIZE = ("bilinear_antialias", "bicubic_antialias")
SUPPORTED_SCALE = ("unit",)
# deepinsight.models.representations.REPRESENTATIONS, repeated here: this module needs only the
# standard library (training imports it without the inference stack).
INPUT_REPRESENTATIONS = ("pixels", "npr", "highpass")

# A field's check: (stored value or the field's default, source) -> the value to keep.
Check = Callable[[Any, str], Any]


def _invalid(source: str, reason: str) -> DeepInsightError:
    return DeepInsightError(f"{source} is not a valid DeepInsight model: {reason}")


def _check_model(model: Any, source: str) -> dict[str, Any]:
    if not isinstance(model, Mapping):
        raise _invalid(source, "its metadata has no 'model' dict")
    name, in_chans = model.get("name"), model.get("in_chans")
    if not isinstance(name, str) or not isinstance(in_chans, int):
        raise _invalid(source, "its model spec needs a 'name' and an integer 'in_chans'")
    kwargs = model.get("kwargs") or {}
    if not isinstance(kwargs, Mapping):
        raise _invalid(source, "its model 'kwargs' is not a dict")
    return {"name": name, "in_chans": in_chans, "kwargs": dict(kwargs)}


def _check_preprocessing(pre: Any, source: str) -> dict[str, Any]:
    if not isinstance(pre, Mapping):
        raise _invalid(source, "its metadata has no 'preprocessing' dict")
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
    checked = {**pre, "image_size": size, "channels": channels, "resize": resize, "scale": scale}
    if pre.get("input", "pixels") != "pixels":
        kind, factor = pre.get("input"), pre.get("input_scale")
        if kind not in INPUT_REPRESENTATIONS:
            raise DeepInsightError(
                f"{source} asks for input representation {kind!r}, which this version of "
                f"DeepInsight does not implement ({', '.join(INPUT_REPRESENTATIONS)}); upgrade "
                "deepinsight"
            )
        if not _numbers([factor], 1) or factor <= 0:
            raise _invalid(source, f"preprocessing input_scale {factor!r} is not positive")
    if "mean" in pre or "std" in pre:
        mean, std = pre.get("mean"), pre.get("std")
        if not (_numbers(mean, channels) and _numbers(std, channels) and min(std) > 0):
            raise _invalid(
                source,
                f"preprocessing mean {mean!r} / std {std!r} are not {channels} numbers each "
                "(std > 0)",
            )
        checked["mean"], checked["std"] = [float(m) for m in mean], [float(v) for v in std]
    return checked


def _numbers(values: Any, n: int) -> bool:
    return (
        isinstance(values, (list, tuple))
        and len(values) == n
        and all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)
    )


def minimal_version(preprocessing: Mapping[str, Any]) -> int:
    """The oldest format that describes ``preprocessing``: 3 for an input representation, 2 for
    mean/std or bicubic, else 1."""
    if preprocessing.get("input", "pixels") != "pixels":
        return 3
    uses_v2 = "mean" in preprocessing or preprocessing.get("resize") == "bicubic_antialias"
    return 2 if uses_v2 else 1


def _check_threshold(value: Any, source: str) -> float:
    if (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and 0.0 <= value <= 1.0
    ):
        return float(value)
    raise _invalid(source, f"its threshold {value!r} is not a number in [0, 1]")


def _check_temperature(value: Any, source: str) -> float:
    if (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    ):
        return float(value)
    raise _invalid(source, f"its temperature {value!r} is not a positive number")


def _optional_str(value: Any, source: str) -> str | None:
    return value if isinstance(value, str) else None


def _optional_dict(value: Any, source: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise _invalid(source, f"its calibrated_on {value!r} is not a dict")
    return dict(value)


def _check_version(version: Any, source: str) -> int:
    if not isinstance(version, int) or version < 1:
        raise _invalid(source, f"bad format_version {version!r}")
    if version > FORMAT_VERSION:
        raise DeepInsightError(
            f"{source} was written by a newer DeepInsight (format_version {version}, this "
            f"version reads {FORMAT_VERSION}); upgrade deepinsight to use it"
        )
    return version


def _stored(check: Check, **kwargs: Any) -> Any:
    """A field of the stored dict, under its own name, read back through ``check``."""
    return field(metadata={"check": check}, **kwargs)


@dataclass(frozen=True)
class DetectorSpec:
    """Everything needed to rebuild a detector and use it as it was validated.

    Each field is one key of the stored dict. Fields without a default must be in every file.
    """

    #: ``{"name", "in_chans", "kwargs"}``: ``create_model(name, in_chans=..., **kwargs)``.
    model: dict[str, Any] = _stored(_check_model)
    #: The evaluation preprocessing, for ``build_eval_transform``.
    preprocessing: dict[str, Any] = _stored(_check_preprocessing)
    #: The decision threshold: fake iff score >= threshold.
    threshold: float = _stored(_check_threshold)
    threshold_rule: str | None = _stored(_optional_str, default=None)
    #: Temperature scaling fitted on validation: score = sigmoid(logit / temperature). Files
    #: written before it existed were never scaled, hence the default 1.0.
    temperature: float = _stored(_check_temperature, default=1.0)
    #: Where temperature and threshold were refitted for a new domain (``deepinsight.calibrate``):
    #: ``{"data_root", "n", "n_real", "n_fake", "date", "ece_before", "ece_after"}``; None for
    #: a detector calibrated on its own validation split.
    calibrated_on: dict[str, Any] | None = _stored(_optional_dict, default=None)
    format_version: int = _stored(_check_version, default=FORMAT_VERSION)

    # -- writing ---------------------------------------------------------------------------
    @classmethod
    def for_network(
        cls,
        net: Mapping[str, Any],
        preprocessing: Mapping[str, Any] | None,
        threshold: float,
        threshold_rule: str | None,
        temperature: float = 1.0,
    ) -> DetectorSpec:
        """The spec of a network built as ``create_model(**net)`` (the training config's form)."""
        kwargs = dict(net)
        name = kwargs.pop("name")
        in_chans = int(kwargs.pop("in_chans", 3))
        return cls(
            model={"name": name, "in_chans": in_chans, "kwargs": kwargs},
            preprocessing=preprocessing,  # type: ignore[arg-type]
            threshold=float(threshold),
            threshold_rule=threshold_rule,
            temperature=float(temperature),
            format_version=minimal_version(preprocessing or {}),
        )

    def to_dict(self) -> dict[str, Any]:
        """The checkpoint's ``deepinsight`` dict: plain containers, so ``weights_only`` loads it."""
        values = {f.name: copy.deepcopy(getattr(self, f.name)) for f in fields(self)}
        values.pop("format_version")
        if values["calibrated_on"] is None:  # only recalibrated detectors carry it
            del values["calibrated_on"]
        return {"format_version": minimal_version(self.preprocessing), **values}

    def to_onnx_metadata(self) -> dict[str, str]:
        """``metadata_props`` for an ONNX model: each key of :meth:`to_dict`, JSON-encoded."""
        return {key: json.dumps(value, sort_keys=True) for key, value in self.to_dict().items()}

    def write_to(self, checkpoint: dict[str, Any]) -> None:
        """Store the spec in a Lightning checkpoint dict."""
        checkpoint[CHECKPOINT_KEY] = self.to_dict()

    # -- reading ---------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, meta: Any, source: str) -> DetectorSpec:
        """Check a ``deepinsight`` dict; ``source`` names the file in error messages."""
        if not isinstance(meta, Mapping):
            raise _invalid(source, "its 'deepinsight' metadata is not a dict")
        # The version first: a newer file should say "upgrade", not fail on a changed field.
        values = {"format_version": _check_version(meta.get("format_version"), source)}
        for f in fields(cls):
            if f.name not in values:
                default = None if f.default is MISSING else f.default
                values[f.name] = f.metadata["check"](meta.get(f.name, default), source)
        spec = cls(**values)
        if spec.preprocessing["channels"] != spec.in_chans:
            raise _invalid(
                source,
                f"preprocessing gives {spec.preprocessing['channels']} channels but the model "
                f"takes {spec.in_chans}",
            )
        return spec

    @classmethod
    def from_onnx_metadata(cls, props: Mapping[str, str], source: str) -> DetectorSpec:
        """Read the spec back from an ONNX model's ``metadata_props``."""
        required = [f.name for f in fields(cls) if f.default is MISSING]
        missing = [key for key in required if key not in props]
        if missing:
            raise DeepInsightError(
                f"{source} is an ONNX model but not one exported by DeepInsight (no "
                f"{', '.join(missing)} in its metadata); export it with `python -m "
                "deepinsight.export ckpt=... format=onnx`"
            )
        meta: dict[str, Any] = {}
        for key in (f.name for f in fields(cls)):
            if key in props:
                try:
                    meta[key] = json.loads(props[key])
                except json.JSONDecodeError:
                    raise _invalid(source, f"its '{key}' metadata is not valid JSON") from None
        meta.setdefault("format_version", FORMAT_VERSION)
        return cls.from_dict(meta, source)

    @classmethod
    def from_checkpoint(cls, checkpoint: Any, source: str) -> DetectorSpec:
        """Read the spec of a loaded checkpoint; a foreign torch file is one clear error."""
        if not isinstance(checkpoint, Mapping) or CHECKPOINT_KEY not in checkpoint:
            raise DeepInsightError(
                f"{source} is a torch file but not a DeepInsight checkpoint (no "
                f"'{CHECKPOINT_KEY}' metadata); use a checkpoint written by "
                "`python -m deepinsight.train`"
            )
        return cls.from_dict(checkpoint[CHECKPOINT_KEY], source)

    @staticmethod
    def stored_threshold(checkpoint: Mapping[str, Any]) -> float | None:
        """Only the threshold, unchecked: resuming training needs nothing else."""
        info = checkpoint.get(CHECKPOINT_KEY)
        return float(info["threshold"]) if info else None

    @staticmethod
    def stored_temperature(checkpoint: Mapping[str, Any]) -> float:
        """Only the temperature, unchecked (1.0 for files written before it existed)."""
        info = checkpoint.get(CHECKPOINT_KEY) or {}
        return float(info.get("temperature", 1.0))

    # -- the model spec, by part -------------------------------------------------------------
    @property
    def model_name(self) -> str:
        return self.model["name"]

    @property
    def in_chans(self) -> int:
        return self.model["in_chans"]

    @property
    def model_kwargs(self) -> dict[str, Any]:
        return self.model["kwargs"]
