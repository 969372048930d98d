"""Prediction rows and the CSV / JSON files they are streamed to.

One row per scored picture: ``path,kind,frame,time_s,face,box,score,prediction,error``.

- ``kind``: ``image`` (an image scored whole), ``face`` (one face of a photo, aligned),
  ``frame`` (a sampled frame of a video: one of its faces, or the whole frame with faces=off)
  or ``video`` (a video's aggregate over its frame rows; written before them);
- ``frame``, ``time_s``: the frame's index and time in its video; ``face``: the face's index in
  its picture, largest first; ``box``: its box ``x0 y0 x1 y1`` in the input's pixels (a list in
  JSON). Empty where they do not apply;
- ``score`` is P(fake), ``prediction`` is ``fake`` iff score >= threshold, and ``error`` says
  why a picture was not scored (then score and prediction are empty in CSV, null in JSON).

Files written before faces and videos had only ``path,score,prediction,error``: those columns
keep their names and meaning (docs/contracts.md).
"""

from __future__ import annotations

import csv
import json
import math
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import IO, Any, Protocol

from deepinsight import CLASS_NAMES, LABEL_FAKE, LABEL_REAL
from deepinsight.errors import DeepInsightError

COLUMNS = ("path", "kind", "frame", "time_s", "face", "box", "score", "prediction", "error")
OUTPUT_FORMATS = ("csv", "json")
STDOUT = "-"
ROW_KINDS = ("image", "face", "frame", "video")


@dataclass(frozen=True)
class PredictionRow:
    """The outcome for one scored picture (or a failed input, or a video's aggregate)."""

    path: str
    kind: str = "image"
    frame: int | None = None
    time_s: float | None = None
    face: int | None = None
    box: tuple[float, float, float, float] | None = None
    score: float | None = None
    prediction: str | None = None
    error: str | None = None

    @classmethod
    def scored(cls, path: str, score: float, threshold: float, **where: Any) -> PredictionRow:
        # float32 scores keep 9 significant digits: exact, without float64 noise in the file.
        # The decision uses the value as written, so the file always agrees with itself.
        value = float(f"{score:.9g}")
        if not math.isfinite(value):  # corrupt weights or an overflow: not a usable answer
            return cls.failed(path, f"the model returned a non-finite score ({value})", **where)
        return cls(path, score=value, prediction=decide(value, threshold), **where)

    @classmethod
    def failed(cls, path: str, reason: str, **where: Any) -> PredictionRow:
        return cls(path, error=reason, **where)

    def with_score(self, score: float, threshold: float) -> PredictionRow:
        """This row (its place) with a score and decision."""
        scored = PredictionRow.scored(self.path, score, threshold)
        return replace(self, score=scored.score, prediction=scored.prediction, error=scored.error)

    def as_dict(self) -> dict[str, Any]:
        """The row for JSON: a box as a list of 2-decimal numbers."""
        values = asdict(self)
        if self.box is not None:
            values["box"] = [round(v, 2) for v in self.box]
        if self.time_s is not None:
            values["time_s"] = round(self.time_s, 3)
        return values

    def as_cells(self) -> list[Any]:
        """The row for CSV: empty cells for None, the box as ``x0 y0 x1 y1``."""
        values = self.as_dict()
        if values["box"] is not None:
            values["box"] = " ".join(f"{v:g}" for v in values["box"])
        return ["" if values[c] is None else values[c] for c in COLUMNS]


def decide(score: float, threshold: float) -> str:
    """``"fake"`` iff score >= threshold (docs/contracts.md), else ``"real"``."""
    return CLASS_NAMES[LABEL_FAKE if score >= threshold else LABEL_REAL]


class RowWriter(Protocol):
    """Streams rows to one output; ``close`` finishes the file (the JSON list's bracket)."""

    def write(self, row: PredictionRow) -> None: ...

    def close(self) -> None: ...


class CsvRowWriter:
    def __init__(self, stream: IO[str]) -> None:
        self._writer = csv.writer(stream, lineterminator="\n")
        self._writer.writerow(COLUMNS)

    def write(self, row: PredictionRow) -> None:
        self._writer.writerow(row.as_cells())

    def close(self) -> None:
        pass


class JsonRowWriter:
    """A JSON list of row objects, written one row at a time so it never sits in memory."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._count = 0
        stream.write("[")

    def write(self, row: PredictionRow) -> None:
        self._stream.write(("\n  " if self._count == 0 else ",\n  ") + json.dumps(row.as_dict()))
        self._count += 1

    def close(self) -> None:
        self._stream.write("\n]\n" if self._count else "]\n")


@contextmanager
def open_row_writer(output: str, fmt: str) -> Iterator[RowWriter]:
    """A writer for ``output`` (a path, or ``-`` for stdout) in ``fmt`` (csv or json)."""
    writer_class = {"csv": CsvRowWriter, "json": JsonRowWriter}[fmt]
    if output == STDOUT:
        writer = writer_class(sys.stdout)
        yield writer
        writer.close()
        sys.stdout.flush()
        return
    path = Path(output)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        stream = path.open("w", newline="", encoding="utf-8")
    except OSError as err:
        raise DeepInsightError(f"cannot write output {path}: {err.strerror or err}") from None
    with stream:
        writer = writer_class(stream)
        yield writer
        writer.close()


class Tally:
    """Counts for the summary line: inputs and what their rows decided.

    An input is an image file or a video. A photo's faces each count as fake or real; a video
    counts once, by its aggregate row. Frame rows are counted apart, and a frame without a face
    is not an input's error (the video's row says whether any frame had one).
    """

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def add(self, row: PredictionRow) -> None:
        if row.kind == "frame":
            self.counts["frames"] += 1
            return
        self.counts["error" if row.error is not None else str(row.prediction)] += 1
        if row.kind == "face":
            self.counts["faces"] += 1

    @property
    def errors(self) -> int:
        return self.counts["error"]

    def summary(self) -> str:
        decided = self.counts["fake"] + self.counts["real"] + self.errors
        what = f"{decided} result(s)"
        extras = [f"{self.counts[k]} {k}" for k in ("faces", "frames") if self.counts[k]]
        if extras:
            what += f" ({', '.join(extras)})"
        return (
            f"{what}: {self.counts['fake']} fake, {self.counts['real']} real, "
            f"{self.errors} error(s)"
        )
