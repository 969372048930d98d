"""Errors a user can cause, and the one-line way they are reported."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# Exit codes shared by every command-line entry point.
EXIT_OK = 0
EXIT_USER_ERROR = 2
# predict: the run finished, but some input files could not be scored (see their error column).
EXIT_SOME_FILES_FAILED = 3


class DeepInsightError(Exception):
    """A problem the user can fix (bad path, bad file, bad option).

    Entry points print its message as a single line and exit with EXIT_USER_ERROR,
    without a traceback: tracebacks are reserved for bugs.
    """


def run_cli(fn: Callable[[], T]) -> T:
    """Run an entry point, turning DeepInsightError into one line on stderr and exit code 2."""
    try:
        return fn()
    except DeepInsightError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(EXIT_USER_ERROR) from None


def first_line(err: BaseException, limit: int | None = None) -> str:
    """An exception's first line (its type name if it has no message), for one-line reports.

    With ``limit``, a longer line is cut to ``limit`` characters, ending in "...".
    """
    text = str(err).strip()
    line = text.splitlines()[0] if text else type(err).__name__
    if limit is None or len(line) <= limit:
        return line
    return line[: limit - 3] + "..."
