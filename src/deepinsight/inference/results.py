"""Prediction rows and the CSV / JSON files they are streamed to.

One row per input file: ``path,score,prediction,error``. ``score`` is P(fake), ``prediction``
is ``fake`` iff score >= threshold, and ``error`` says why a file was not scored (then score and
prediction are empty in CSV, null in JSON).
"""

from __future__ import annotations

import csv
import json
import math
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Protocol

from deepinsight import CLASS_NAMES, LABEL_FAKE, LABEL_REAL
from deepinsight.errors import DeepInsightError

COLUMNS = ("path", "score", "prediction", "error")
OUTPUT_FORMATS = ("csv", "json")
STDOUT = "-"


@dataclass(frozen=True)
class PredictionRow:
    """The outcome for one input file."""

    path: str
    score: float | None = None
    prediction: str | None = None
    error: str | None = None

    @classmethod
    def scored(cls, path: str, score: float, threshold: float) -> PredictionRow:
        # float32 scores keep 9 significant digits: exact, without float64 noise in the file.
        # The decision uses the value as written, so the file always agrees with itself.
        value = float(f"{score:.9g}")
        if not math.isfinite(value):  # corrupt weights or an overflow: not a usable answer
            return cls.failed(path, f"the model returned a non-finite score ({value})")
        return cls(path, value, decide(value, threshold))

    @classmethod
    def failed(cls, path: str, reason: str) -> PredictionRow:
        return cls(path, error=reason)


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
        self._writer.writerow(["" if value is None else value for value in asdict(row).values()])

    def close(self) -> None:
        pass


class JsonRowWriter:
    """A JSON list of row objects, written one row at a time so it never sits in memory."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._count = 0
        stream.write("[")

    def write(self, row: PredictionRow) -> None:
        self._stream.write(("\n  " if self._count == 0 else ",\n  ") + json.dumps(asdict(row)))
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
    """Counts of fake, real and failed files, for the summary line."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def add(self, row: PredictionRow) -> None:
        self.counts["error" if row.error is not None else str(row.prediction)] += 1

    @property
    def errors(self) -> int:
        return self.counts["error"]

    def summary(self) -> str:
        total = sum(self.counts.values())
        return (
            f"{total} file(s): {self.counts['fake']} fake, {self.counts['real']} real, "
            f"{self.errors} error(s)"
        )
