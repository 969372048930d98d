"""Learning rates that follow the batch size: the opt-in scaling rule for larger batches.

A learning rate is tuned for one batch size. A user who raises ``data.batch_size`` for speed
takes fewer, less noisy steps per epoch, and with the same rate usually ends up worse.
Goyal et al. (2017, "Accurate, Large Minibatch SGD") scale the rate linearly with the batch,
with a warm-up; for Adam a square-root rule is also common (Hoffer et al., 2017; Malladi et
al., 2022). DeepInsight states the batch a rate was tuned for (``base_batch_size``) and scales
every configured rate, the optimizer's ``lr`` and a one-cycle scheduler's ``max_lr``, by the
rule. The warm-up comes from the scheduler (``OneCycleLR``'s rising phase).
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from deepinsight.errors import DeepInsightError

RULES = ("none", "linear", "sqrt")
# The keyword arguments that hold a learning rate, in optimizers and schedulers.
RATE_KEYWORDS = ("lr", "max_lr")


@dataclass(frozen=True)
class LRScaling:
    """``rule`` in RULES; the configured rates were tuned for a global batch of
    ``base_batch_size``."""

    rule: str = "none"
    base_batch_size: int | None = None

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> LRScaling:
        if not config:
            return cls()
        unknown = set(config) - {"rule", "base_batch_size"}
        if unknown:
            raise DeepInsightError(
                f"model.lr_scaling takes rule and base_batch_size, not {sorted(unknown)}"
            )
        rule = str(config.get("rule") or "none")
        if rule not in RULES:
            raise DeepInsightError(
                f"model.lr_scaling.rule must be one of {', '.join(RULES)}, got {rule!r}"
            )
        base = config.get("base_batch_size")
        if rule != "none" and (base is None or int(base) < 1):
            raise DeepInsightError(
                "model.lr_scaling.base_batch_size must be the batch size the learning rate was "
                f"tuned for (a positive integer), got {base!r}"
            )
        return cls(rule, None if base is None else int(base))

    def factor(self, global_batch_size: int | None) -> float:
        """What the configured rates are multiplied by for a run with this global batch."""
        if self.rule == "none" or global_batch_size is None:
            return 1.0
        ratio = global_batch_size / self.base_batch_size
        return ratio if self.rule == "linear" else math.sqrt(ratio)


def bound_keywords(factory: Callable[..., Any]) -> dict[str, Any]:
    """The keyword arguments a (possibly nested) ``functools.partial`` already binds."""
    keywords: dict[str, Any] = {}
    while isinstance(factory, functools.partial):
        keywords = {**factory.keywords, **keywords}  # the outer partial's win
        factory = factory.func
    return keywords


def offers_unset(factory: Callable[..., Any], name: str, *alternatives: str) -> bool:
    """Whether what ``factory`` finally calls takes the keyword ``name`` and neither it nor any
    of ``alternatives`` (keywords that would conflict with it) is bound yet."""
    bound = bound_keywords(factory)
    if name in bound or any(other in bound for other in alternatives):
        return False
    while isinstance(factory, functools.partial):
        factory = factory.func
    try:
        return name in inspect.signature(factory).parameters
    except (TypeError, ValueError):  # builtins without a signature
        return False


def scale_learning_rates(factory: Callable[..., Any], factor: float) -> Callable[..., Any]:
    """``factory`` (a ``functools.partial``, as Hydra's ``_partial_`` gives) with its ``lr`` and
    ``max_lr`` keywords multiplied by ``factor``. Other callables are returned unchanged."""
    if factor == 1.0 or not isinstance(factory, functools.partial):
        return factory
    scaled: dict[str, Any] = {}
    bound = bound_keywords(factory)
    for name in RATE_KEYWORDS:
        value = bound.get(name)
        if isinstance(value, (int, float)):
            scaled[name] = value * factor
        elif isinstance(value, (list, tuple)):  # per-parameter-group rates
            scaled[name] = [v * factor for v in value]
    # A partial over the given one, not a rebuilt one: Hydra's partials check their target
    # when called, and a new partial of the bare class would skip that.
    return functools.partial(factory, **scaled) if scaled else factory


def per_group_peak(factory: Callable[..., Any], scales: list[float]) -> Callable[..., Any]:
    """A scheduler partial whose scalar ``max_lr`` becomes one peak per parameter group.

    OneCycleLR sets every group's rate from ``max_lr``; per-group rates (a head's own, layer-wise
    decay) survive it only as a list, each group's peak times its ``lr_scale``.
    """
    if all(scale == 1.0 for scale in scales) or not isinstance(factory, functools.partial):
        return factory
    peak = bound_keywords(factory).get("max_lr")
    if not isinstance(peak, (int, float)):
        return factory
    return functools.partial(factory, max_lr=[peak * scale for scale in scales])
