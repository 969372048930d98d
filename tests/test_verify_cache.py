"""The pre-training image check remembers what it verified; unchanged files are not re-decoded."""

from __future__ import annotations

import logging
import os

import pytest
from helpers.synthetic_data import write_folder_dataset

import deepinsight.data.verify as verify
from deepinsight.data.layouts import Sample, read_folder_split
from deepinsight.data.verify import drop_unreadable


@pytest.fixture
def split(tmp_path):
    root = write_folder_dataset(tmp_path / "data", {"train": 4})
    return read_folder_split(root / "train")


@pytest.fixture
def decoded(monkeypatch) -> list:
    """Every path the check decodes, in order."""
    seen = []
    real = verify.load_image

    def counting(path, max_pixels):
        seen.append(path)
        return real(path, max_pixels=max_pixels)

    monkeypatch.setattr(verify, "load_image", counting)
    return seen


def check(samples, cache_dir, max_pixels=None):
    return drop_unreadable(samples, "train", "skip", max_pixels, cache_dir=cache_dir)


def test_an_unchanged_dataset_is_not_decoded_again(split, decoded, tmp_path):
    assert check(split, tmp_path / "cache") == split
    assert len(decoded) == 8
    decoded.clear()
    assert check(split, tmp_path / "cache") == split
    assert decoded == []


def test_changed_and_new_files_are_checked_again(split, decoded, tmp_path):
    check(split, tmp_path / "cache")
    decoded.clear()
    edited, truncated = split[0].path, split[1].path
    edited.write_bytes(split[2].path.read_bytes())  # still a valid image, other bytes
    truncated.write_bytes(truncated.read_bytes()[:40])
    # Some file systems keep mtime at 1 s resolution: force a visible change.
    for path in (edited, truncated):
        os.utime(path, ns=(0, os.stat(path).st_mtime_ns + 10**9))
    new = split[0].path.with_name("new.png")
    new.write_bytes(split[2].path.read_bytes())
    kept = check([*split, Sample(new, 0)], tmp_path / "cache")
    assert sorted(decoded) == sorted([edited, truncated, new])
    assert truncated not in [s.path for s in kept] and len(kept) == 8


def test_a_bad_file_is_reported_on_every_run(split, tmp_path, caplog):
    bad = split[3].path
    bad.write_bytes(b"")
    for _ in range(2):
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            kept = check(split, tmp_path / "cache")
        assert bad not in [s.path for s in kept]
        assert str(bad) in caplog.text and "empty file" in caplog.text


def test_a_stricter_pixel_limit_checks_again(split, decoded, tmp_path):
    check(split, tmp_path / "cache")
    kept = check(split, tmp_path / "cache", max_pixels=100)  # 32x32 images are over it
    assert kept == [] and len(decoded) == 16


def test_no_cache_decodes_every_time(split, decoded, tmp_path):
    for _ in range(2):
        drop_unreadable(split, "train", "skip", None, cache=False, cache_dir=tmp_path / "c")
    assert len(decoded) == 16 and not (tmp_path / "c").exists()
