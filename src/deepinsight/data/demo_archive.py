"""The default demo dataset ships prebuilt, so the Quickstart does not spend its first 20 s on it.

Building the default demo (three small decoders trained, 2,400 images rendered) takes about
22 s on a 2-core CPU without AVX-512, a fifth of the Quickstart's two-minute budget there
(docs/speed.md). The package therefore carries the default build as a 6 MB archive,
``demo_default.tar.gz``, which ``ensure_demo_dataset`` unpacks into the cache in well under a
second. Any other parameters (``data.demo.seed=1``, more images, ``generator=upconv``) are
built as before.

The archive also makes the default demo the same on every machine: a build trains its decoders
in float32, and CPUs with other vector units (AVX2, AVX-512) round differently, so fresh builds
on two kinds of machine need not be byte-identical. The archive's manifest records the recipe's
format version and parameters; a stale archive (the recipe changed, the archive was not
rewritten) is never used, and a test fails until it is rewritten with :func:`write_archive`::

    python -c "from deepinsight.data.demo_archive import write_archive; write_archive()"
"""

from __future__ import annotations

import gzip
import json
import tarfile
from importlib import resources
from pathlib import Path
from typing import Any

ARCHIVE_NAME = "demo_default.tar.gz"
MANIFEST_NAME = "demo_manifest.json"  # demo.MANIFEST_NAME (imported here would be circular)


def archive_path() -> Path:
    """Where the shipped archive lives inside the installed package."""
    return Path(str(resources.files("deepinsight.data") / ARCHIVE_NAME))


def read_manifest(archive: Path) -> dict[str, Any] | None:
    """The archive's ``demo_manifest.json``, or None if the archive is missing or unreadable."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            member = tar.extractfile(MANIFEST_NAME)
            return json.load(member) if member else None
    except (OSError, tarfile.TarError, KeyError, ValueError):
        return None


def matches(manifest: dict[str, Any] | None, params: dict[str, Any], format_version: int) -> bool:
    """Whether an archive with this manifest holds the demo for ``params`` at this version."""
    return (
        manifest is not None
        and manifest.get("format_version") == format_version
        and manifest.get("params") == params
    )


def unpack_shipped(dest: Path, params: dict[str, Any], format_version: int) -> bool:
    """Unpack the shipped archive into the empty folder ``dest`` if it holds the demo for
    ``params`` (normalised) at ``format_version``; return whether it did."""
    archive = archive_path()
    if not matches(read_manifest(archive), params, format_version):
        return False
    with tarfile.open(archive, "r:gz") as tar:
        # "data": no absolute paths, links out of dest or special files (PEP 706), where this
        # Python has the filter; the archive is the package's own either way.
        extra = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(dest, **extra)
    return True


def write_archive(dest: Path | None = None, cache_dir: Path | None = None) -> Path:
    """Build the default demo (or take it from the cache) and write it as the shipped archive.

    The archive is reproducible from the files: members sorted, times and owners zeroed.
    """
    from deepinsight.data.demo import ensure_demo_dataset

    dest = Path(dest) if dest is not None else Path(__file__).with_name(ARCHIVE_NAME)
    root = ensure_demo_dataset(cache_dir, prebuilt=False)
    # No file name or time in the gzip header: the bytes depend on the files alone.
    with open(dest, "wb") as raw, gzip.GzipFile("", "wb", 9, raw, mtime=0) as packed:
        with tarfile.open(fileobj=packed, mode="w") as tar:
            for path in sorted(p for p in root.rglob("*") if p.is_file()):
                info = tar.gettarinfo(str(path), arcname=path.relative_to(root).as_posix())
                info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
                info.mode = 0o644
                with open(path, "rb") as handle:
                    tar.addfile(info, handle)
    return dest
