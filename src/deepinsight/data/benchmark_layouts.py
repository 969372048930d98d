"""The cross-generator benchmarks' folder layouts, each image tagged with its generator.

* ``forensynths`` (Wang et al., CVPR 2020, "CNN-generated images are surprisingly easy to spot...
  for now"; the CNNDetection test set): ``ROOT/<generator>/{0_real,1_fake}/`` or, with an object
  class level, ``ROOT/<generator>/<class>/{0_real,1_fake}/``. Its training tree,
  ``ROOT/{train,val}/<class>/{0_real,1_fake}/`` beside ``ROOT/test/<generator>/...``, trains
  with the classes pooled, as the paper does.
* ``genimage`` (Zhu et al., NeurIPS 2023): ``ROOT/<generator>/{train,val}/{nature,ai}/``, with
  an optional folder between the generator and its splits (the release's
  ``imagenet_<generator>/``). Its ``val`` split is the one papers report on. Training takes one
  generator's folder (the protocol trains on one, SD v1.4, and tests on all).
* ``wildrf`` (real and fake images gathered from social platforms, tested per platform):
  ``ROOT/{train,val}/{0_real,1_fake}/`` and ``ROOT/test/<platform>/{0_real,1_fake}/``.

Folder names map to DeepInsight's labels: ``0_real`` and ``nature`` are 0 (real), ``1_fake``
and ``ai`` are 1 (fake). Each :class:`~deepinsight.data.layouts.Sample` carries its generator
(or platform) as ``group``, which ``evaluate`` tabulates.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from deepinsight import LABEL_FAKE, LABEL_REAL
from deepinsight.data.image_io import is_image_path
from deepinsight.data.layouts import Sample

BENCHMARK_LAYOUTS = ("forensynths", "genimage", "wildrf")
# Reads a tree's three splits; returned only once the folders show the tree is in a layout.
SplitsReader = Callable[[], dict[str, list[Sample]]]
# (real folder, fake folder) per naming scheme.
ZERO_ONE = ("0_real", "1_fake")
NATURE_AI = ("nature", "ai")
GENIMAGE_SPLITS = ("train", "val")


def _subdirs(path: Path) -> list[Path]:
    # scandir's entries know their type without a stat per file: a folder of 70k images is
    # listed, not stat'ed, when a layout check looks into it.
    with os.scandir(path) as entries:
        names = [e.name for e in entries if e.is_dir() and not e.name.startswith(".")]
    return [path / name for name in sorted(names)]


def _is_pair(path: Path, names: tuple[str, str]) -> bool:
    return all((path / name).is_dir() for name in names)


def read_pair(path: Path, names: tuple[str, str], group: str | None) -> list[Sample]:
    """The images under ``path/<real>/`` and ``path/<fake>/`` (searched recursively)."""
    samples = []
    for name, label in zip(names, (LABEL_REAL, LABEL_FAKE)):
        files = sorted(p for p in (path / name).rglob("*") if p.is_file() and is_image_path(p))
        samples.extend(Sample(p, label, group) for p in files)
    return samples


# -- ForenSynths ------------------------------------------------------------------------------
def forensynths_groups(root: Path) -> dict[str, list[Path]] | None:
    """Generator -> its ``{0_real,1_fake}`` folders (one, or one per class); None if not this."""
    if _is_pair(root, ZERO_ONE):  # a single generator's folder
        return {root.name: [root]}
    generators = _subdirs(root)
    if {"train", "test"} <= {g.name for g in generators}:
        return None  # split folders (a training tree, or WildRF), not generators
    groups: dict[str, list[Path]] = {}
    for generator in generators:
        if _is_pair(generator, ZERO_ONE):
            groups[generator.name] = [generator]
            continue
        classes = [c for c in _subdirs(generator) if _is_pair(c, ZERO_ONE)]
        if not classes:
            return None
        groups[generator.name] = classes
    return groups or None


def read_forensynths(root: Path, pooled_group: str | None = None) -> list[Sample]:
    """Every image of a ForenSynths tree, grouped by generator (or all in ``pooled_group``)."""
    groups = forensynths_groups(root) or {}
    return [
        sample
        for name, folders in groups.items()
        for folder in folders
        for sample in read_pair(folder, ZERO_ONE, pooled_group or name)
    ]


def forensynths_training_reader(root: Path) -> SplitsReader | None:
    """``ROOT/{train,val,test}``: classes pooled in train and valid, test by generator.

    Like every ``*_reader`` here, it looks at folders only and returns how to read the images,
    so detecting a layout never lists a dataset's files.
    """
    parts = {"train": root / "train", "valid": root / "val", "test": root / "test"}
    if not all(p.is_dir() for p in parts.values()):
        return None
    if not all(forensynths_groups(p) for p in parts.values()):
        return None
    if _is_pair(parts["train"], ZERO_ONE):
        return None  # ForenSynths trains per object class; a flat train/ is WildRF's
    return lambda: {
        "train": read_forensynths(parts["train"], pooled_group="train"),
        "valid": read_forensynths(parts["valid"], pooled_group="val"),
        "test": read_forensynths(parts["test"]),
    }


# -- GenImage ---------------------------------------------------------------------------------
def genimage_split_dirs(root: Path, split: str) -> dict[str, Path] | None:
    """Generator -> its ``<split>`` folder holding ``{nature,ai}``; None if not this layout."""

    def split_dir(generator: Path) -> Path | None:
        for candidate in (generator, *_subdirs(generator)):  # the optional extra level
            if all(_is_pair(candidate / s, NATURE_AI) for s in GENIMAGE_SPLITS):
                return candidate / split
        return None

    found = {}
    for generator in _subdirs(root):
        folder = split_dir(generator)
        if folder is None:
            return None
        found[generator.name] = folder
    return found or None


def read_genimage(root: Path, split: str = "val") -> list[Sample]:
    groups = genimage_split_dirs(root, split) or {}
    return [s for name, folder in groups.items() for s in read_pair(folder, NATURE_AI, name)]


# Training on one GenImage generator: its train split, less every VALID_EVERY-th image (by
# name, per class) held out for model selection, since GenImage has no validation split; its val
# split, the one papers report on, is the test split.
VALID_EVERY = 20


def genimage_training_reader(root: Path) -> SplitsReader | None:
    """``ROOT = <generator>/`` holding ``{train,val}/{nature,ai}/`` (one generator's folder)."""
    if not all(_is_pair(root / split, NATURE_AI) for split in GENIMAGE_SPLITS):
        return None

    def read() -> dict[str, list[Sample]]:
        train, valid = [], []
        pool = read_pair(root / "train", NATURE_AI, root.name)
        for label in (0, 1):
            for index, sample in enumerate(s for s in pool if s.label == label):
                (valid if index % VALID_EVERY == VALID_EVERY - 1 else train).append(sample)
        test = read_pair(root / "val", NATURE_AI, root.name)
        return {"train": train, "valid": valid, "test": test}

    return read


# -- WildRF -----------------------------------------------------------------------------------
def wildrf_test_platforms(root: Path) -> list[Path] | None:
    test = root / "test"
    if not (_is_pair(root / "train", ZERO_ONE) and _is_pair(root / "val", ZERO_ONE)):
        return None
    if not test.is_dir():
        return None
    platforms = _subdirs(test)
    if not platforms or not all(_is_pair(p, ZERO_ONE) for p in platforms):
        return None
    return platforms


def wildrf_reader(root: Path) -> SplitsReader | None:
    platforms = wildrf_test_platforms(root)
    if platforms is None:
        return None
    return lambda: {
        "train": read_pair(root / "train", ZERO_ONE, "train"),
        "valid": read_pair(root / "val", ZERO_ONE, "val"),
        "test": [s for p in platforms for s in read_pair(p, ZERO_ONE, p.name)],
    }


# -- what evaluate and training ask -----------------------------------------------------------
def evaluation_readers(root: Path, split: str) -> dict[str, Callable[[], list[Sample]]]:
    """Every benchmark layout ``root`` is in, with how to read its evaluated images."""
    readers: dict[str, Callable[[], list[Sample]]] = {}
    if forensynths_groups(root):
        readers["forensynths"] = lambda: read_forensynths(root)
    if genimage_split_dirs(root, "val"):
        # GenImage's evaluation split is val; "test" (evaluate's default) means it too.
        genimage_split = "train" if split == "train" else "val"
        readers["genimage"] = lambda: read_genimage(root, genimage_split)
    for name, read in training_readers(root).items():  # trees with splits: the one asked for
        readers.setdefault(name, lambda read=read: read()[_split_key(split)])
    return readers


def training_readers(root: Path) -> dict[str, SplitsReader]:
    """Every benchmark layout ``root`` can train from, with how to read its three splits."""
    found = {
        "forensynths": forensynths_training_reader(root),
        "wildrf": wildrf_reader(root),
        "genimage": genimage_training_reader(root),
    }
    return {name: read for name, read in found.items() if read is not None}


def _split_key(split: str) -> str:
    return {"val": "valid", "validation": "valid"}.get(split, split)
