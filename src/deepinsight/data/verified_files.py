"""A record of the images that already decoded cleanly, so an unchanged dataset is not re-decoded.

Decoding all 140k Kaggle images takes about a minute; a second run on the same files should
start training at once. Each record covers one folder (a split's common parent) and one
``max_pixels`` setting, and stores every verified file's size and modification time
(nanoseconds) relative to that folder. A file is trusted again only if both are unchanged, so an
edited, replaced or new file is decoded again. Unreadable files are never recorded: they are
re-checked, and re-reported, on every run. Records live under the DeepInsight cache
(``$DEEPINSIGHT_CACHE``, else ``~/.cache/deepinsight``) in ``verified/``, one small JSON file
per folder, written atomically so concurrent runs (DDP ranks, a multirun) cannot corrupt them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
Fingerprint = tuple[int, int]  # (size in bytes, mtime in ns)


def fingerprint(path: str | Path) -> Fingerprint | None:
    """(size, mtime_ns) of ``path``, or None when it cannot be stat'ed (it is checked anyway)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def common_folder(paths: Sequence[str | Path]) -> Path:
    """The deepest folder holding every path (cheap: only the distinct parents are compared)."""
    parents = {os.path.dirname(p) for p in paths}
    return Path(os.path.commonpath(sorted(parents))) if parents else Path()


@dataclass(frozen=True)
class FileIndex:
    """Paths, fingerprints (stat'ed once, before any decoding) and common folder of samples.

    Built once per split and shared by the image check and the decoded-image cache, so a
    second run on 140k files stats each file once.
    """

    paths: list[str]
    stats: list[Fingerprint | None]
    folder: Path

    @classmethod
    def of(cls, samples: Sequence[Any]) -> FileIndex:
        paths = [os.fspath(s.path) for s in samples]
        return cls(paths, [fingerprint(p) for p in paths], common_folder(paths))


def _default_cache_dir() -> Path:
    from deepinsight.data.demo import default_cache_dir

    return default_cache_dir()


class VerifiedFiles:
    """The verified files under ``folder`` for one ``max_pixels`` setting."""

    def __init__(
        self, folder: Path, max_pixels: int | None, cache_dir: str | Path | None = None
    ) -> None:
        self.folder = Path(folder)
        self._prefix = os.path.join(str(self.folder), "")
        self.max_pixels = max_pixels
        key = json.dumps([FORMAT_VERSION, str(self.folder), max_pixels])
        name = hashlib.sha256(key.encode()).hexdigest()[:20] + ".json"
        base = Path(cache_dir).expanduser() if cache_dir is not None else _default_cache_dir()
        self.path = base / "verified" / name
        self.files: dict[str, list[int]] = self._load()
        self._dirty = False

    def _load(self) -> dict[str, list[int]]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        same = (
            isinstance(data, dict)
            and data.get("format_version") == FORMAT_VERSION
            and data.get("folder") == str(self.folder)
            and data.get("max_pixels") == self.max_pixels
        )
        return data["files"] if same and isinstance(data.get("files"), dict) else {}

    def _key(self, path: str | Path) -> str:
        text = os.fspath(path)
        # Slicing is ~10x cheaper than os.path.relpath, which counts at 140k files.
        if text.startswith(self._prefix):
            return text[len(self._prefix) :]
        return os.path.relpath(text, self.folder)

    def unchanged(self, path: str | Path, stat: Fingerprint | None) -> bool:
        """Whether ``path`` was verified before with exactly this size and mtime."""
        if stat is None:
            return False
        known = self.files.get(self._key(path))
        return known is not None and tuple(known) == stat

    def replace(self, verified: dict[str, Fingerprint]) -> None:
        """Make the record hold exactly ``verified`` (files gone from the dataset are dropped)."""
        files = {self._key(p): list(stat) for p, stat in verified.items()}
        if files != self.files:
            self.files = files
            self._dirty = True

    def save(self) -> None:
        """Write the record if it changed; a cache that cannot be written only costs time."""
        if not self._dirty:
            return
        payload = {
            "format_version": FORMAT_VERSION,
            "folder": str(self.folder),
            "max_pixels": self.max_pixels,
            "files": self.files,
        }
        tmp = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".", suffix=".tmp")
            with os.fdopen(fd, "w") as handle:
                json.dump(payload, handle, separators=(",", ":"))
            os.replace(tmp, self.path)
            self._dirty = False
        except OSError as err:
            log.warning("could not record the verified images in %s: %s", self.path, err)
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
