"""The prebuilt default demo the package ships: current, used only for the defaults, exact."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from deepinsight.data import demo, demo_archive


def fail_build(*args, **kwargs):
    raise AssertionError("the demo was built, not unpacked")


def test_shipped_archive_holds_the_current_default_recipe():
    # Fails when the recipe (FORMAT_VERSION) or the defaults change without a new archive:
    # rewrite it with deepinsight.data.demo_archive.write_archive().
    manifest = demo_archive.read_manifest(demo_archive.archive_path())
    assert manifest is not None, "the package ships no demo archive"
    assert manifest["format_version"] == demo.FORMAT_VERSION
    assert manifest["params"] == demo._normalise(demo.DEMO_DEFAULTS)
    counts = {split: demo.DEMO_DEFAULTS[f"n_{split}"] for split in ("train", "valid", "test")}
    assert len(manifest["images"]) == sum(counts.values())


def test_default_demo_is_unpacked_not_built(tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "build_demo_dataset", fail_build)
    root = demo.ensure_demo_dataset(tmp_path)
    assert root.name == demo.demo_dataset_name(demo._normalise(demo.DEMO_DEFAULTS))
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    with tarfile.open(demo_archive.archive_path()) as tar:
        assert files == sorted(tar.getnames())
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left


def test_other_parameters_and_a_stale_archive_are_built(tmp_path, monkeypatch):
    built = []

    def record_build(dest, **params):
        built.append(params)
        (Path(dest) / demo.MANIFEST_NAME).write_text("{}")

    monkeypatch.setattr(demo, "build_demo_dataset", record_build)
    demo.ensure_demo_dataset(tmp_path / "a", seed=1)
    assert built[-1]["seed"] == 1
    # An archive written for another recipe version is never unpacked.
    stale = tmp_path / "stale.tar.gz"
    with tarfile.open(stale, "w:gz") as tar:
        manifest = tmp_path / demo.MANIFEST_NAME
        params = demo._normalise(demo.DEMO_DEFAULTS)
        old = {"format_version": demo.FORMAT_VERSION - 1, "params": params}
        manifest.write_text(json.dumps(old))
        tar.add(manifest, arcname=demo.MANIFEST_NAME)
    monkeypatch.setattr(demo_archive, "archive_path", lambda: stale)
    demo.ensure_demo_dataset(tmp_path / "b")
    assert len(built) == 2 and built[-1]["seed"] == 0


@pytest.mark.slow
def test_archive_is_rewritten_byte_for_byte_from_its_files(tmp_path):
    # From the unpacked copy in a cache: the archive is a pure function of the dataset's files.
    demo.ensure_demo_dataset(tmp_path / "cache")
    rewritten = demo_archive.write_archive(tmp_path / "again.tar.gz", cache_dir=tmp_path / "cache")
    assert rewritten.read_bytes() == demo_archive.archive_path().read_bytes()
