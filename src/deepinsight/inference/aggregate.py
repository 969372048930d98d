"""One score for a video from the scores of its frames' faces.

- ``mean``: the mean of every frame-face score (the default: no parameter, easy to reason about);
- ``confident``: the rule of the DFDC (2020) winning entry (Selim Seferbekov's
  ``confident_strategy``): if more than 11 of the scores, and more than n / 2.5 of them, are
  confidently fake (> 0.8), the mean of those; else, if more than 90% are confidently real
  (< 0.2), the mean of those; else the mean of all. A few strongly fake frames then win over
  many uncertain ones, which is how manipulated segments in a real video show up.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

VIDEO_AGGREGATES = ("mean", "confident")

CONFIDENT_FAKE, CONFIDENT_REAL = 0.8, 0.2
MIN_CONFIDENT_FAKES = 11  # the winner's count, for 32 sampled frames
FAKE_SHARE_DIVISOR = 2.5
REAL_SHARE = 0.9


def aggregate_scores(scores: Sequence[float], rule: str = "mean") -> float:
    """The video's score from its frame-face scores (at least one)."""
    values = np.asarray(scores, dtype=np.float64)
    if values.size == 0:
        raise ValueError("no scores to aggregate")
    if rule == "mean":
        return float(values.mean())
    if rule != "confident":
        raise ValueError(f"video_aggregate must be one of {VIDEO_AGGREGATES}, not {rule!r}")
    fakes = values[values > CONFIDENT_FAKE]
    if fakes.size > MIN_CONFIDENT_FAKES and fakes.size > values.size / FAKE_SHARE_DIVISOR:
        return float(fakes.mean())
    reals = values[values < CONFIDENT_REAL]
    if reals.size > REAL_SHARE * values.size:
        return float(reals.mean())
    return float(values.mean())
