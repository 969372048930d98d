"""Turn what the user typed (files, folders, glob patterns) into the list of files to score."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from deepinsight.data.image_io import IMAGE_EXTENSIONS, MEDIA_EXTENSIONS
from deepinsight.errors import DeepInsightError

__all__ = ["MEDIA_EXTENSIONS", "CollectedInputs", "collect_image_files"]

_GLOB_CHARS = frozenset("*?[")


@dataclass
class CollectedInputs:
    """The files to score, in order, and the folders that turned out to hold no images."""

    files: list[Path] = field(default_factory=list)
    empty_folders: list[Path] = field(default_factory=list)


def collect_image_files(
    inputs: Iterable[str], extensions: tuple[str, ...] = IMAGE_EXTENSIONS
) -> CollectedInputs:
    """Expand ``inputs`` in order, without duplicates.

    - a file is taken as given, whatever its extension (the user named it);
    - a folder is walked recursively, in sorted order, for files with ``extensions``
      (IMAGE_EXTENSIONS, or MEDIA_EXTENSIONS to include videos);
    - a glob pattern (``*``, ``?``, ``[``; ``**`` recurses) is searched like a folder: matching
      image files are taken, matching folders are walked.

    A path that does not exist, or a pattern that matches no image file, is a user error.
    """
    collected = CollectedInputs()
    seen: set[str] = set()
    for item in inputs:
        for path in _expand(str(item), collected, extensions):
            key = os.path.abspath(path)
            if key not in seen:
                seen.add(key)
                collected.files.append(path)
    return collected


def _expand(item: str, collected: CollectedInputs, extensions: tuple[str, ...]) -> list[Path]:
    path = Path(item).expanduser()
    if path.is_dir():
        return _walk_folder(path, collected, extensions)
    if path.exists():  # checked before globbing: a real file may have '[' in its name
        return [path]
    if not _GLOB_CHARS.intersection(item):
        raise DeepInsightError(f"input not found: {item}")
    found: list[Path] = []
    for match in sorted(glob.glob(os.path.expanduser(item), recursive=True)):
        candidate = Path(match)
        if candidate.is_dir():
            found.extend(_walk_folder(candidate, collected, extensions))
        elif candidate.suffix.lower() in extensions:
            found.append(candidate)
    if not found:
        raise DeepInsightError(
            f"input pattern '{item}' matches no image files ({', '.join(extensions)})"
        )
    return found


def _walk_folder(
    folder: Path, collected: CollectedInputs, extensions: tuple[str, ...]
) -> list[Path]:
    found: list[Path] = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()  # os.walk's order is the filesystem's; sorting makes runs repeatable
        found.extend(
            Path(root, name) for name in sorted(files) if Path(name).suffix.lower() in extensions
        )
    if not found:
        collected.empty_folders.append(folder)
    return found
