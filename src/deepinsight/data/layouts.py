"""Finding the official train/valid/test splits of a dataset on disk.

Two layouts are understood, and the splits found are used as they are: never re-split.

* ``kaggle``: the "140k Real and Fake Faces" download as it unpacks,
  ``ROOT/{train,valid,test}.csv`` plus ``ROOT/real_vs_fake/real-vs-fake/{split}/{real,fake}/``.
  The CSVs' ``label`` column is 1 = real, 0 = fake (the opposite of DeepInsight's convention),
  and ``path`` is relative to ``real-vs-fake/``.
* ``folders``: any tree ``ROOT/{train,valid,test}/{real,fake}/`` (searched recursively).

Evaluation (:func:`discover_evaluation_split`) also reads a bare ``ROOT/{real,fake}/`` tree
(layout ``real_fake``): a dataset with no splits, every image of which is evaluated.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from deepinsight import CLASS_NAMES, LABEL_FAKE, LABEL_REAL
from deepinsight.data.image_io import is_image_path
from deepinsight.errors import DeepInsightError

SPLITS = ("train", "valid", "test")

# The Kaggle layout, as read here and written by the demo dataset (deepinsight.data.demo).
KAGGLE_IMAGE_DIR = Path("real_vs_fake") / "real-vs-fake"
KAGGLE_CSV_HEADER = ("", "original_path", "id", "label", "label_str", "path")
# Kaggle's ``label`` column per class: 1 = real, the reverse of DeepInsight's 1 = fake.
KAGGLE_LABELS = {"real": 1, "fake": 0}
_FROM_KAGGLE_LABEL = {str(code): CLASS_NAMES.index(name) for name, code in KAGGLE_LABELS.items()}
# Folder names accepted for the validation split in the ``folders`` layout.
VALID_ALIASES = ("valid", "val", "validation")

EXPECTED_LAYOUTS = (
    "expected ROOT/{train,valid,test}.csv with ROOT/real_vs_fake/real-vs-fake/ "
    "(the Kaggle '140k Real and Fake Faces' download) or ROOT/{train,valid,test}/{real,fake}/"
)


@dataclass(frozen=True)
class Sample:
    path: Path
    label: int | None  # 1 = fake, 0 = real; None for a file to score, whose label is unknown


@dataclass(frozen=True)
class DatasetSplits:
    layout: str  # "kaggle" or "folders"
    root: Path
    splits: dict[str, list[Sample]]


def discover_splits(root: str | Path) -> DatasetSplits:
    """Return the samples of each official split, or raise DeepInsightError naming the problem."""
    root = Path(root).expanduser().resolve()
    if not root.exists():
        raise DeepInsightError(f"data.root '{root}' does not exist; {EXPECTED_LAYOUTS}")
    if not root.is_dir():
        raise DeepInsightError(f"data.root '{root}' is not a directory; {EXPECTED_LAYOUTS}")
    if all((root / f"{split}.csv").is_file() for split in SPLITS):
        return DatasetSplits("kaggle", root, {s: read_kaggle_split(root, s) for s in SPLITS})
    split_dirs = _folder_split_dirs(root)
    if split_dirs is not None:
        return DatasetSplits(
            "folders", root, {s: read_folder_split(d) for s, d in split_dirs.items()}
        )
    raise DeepInsightError(f"data.root '{root}' is not in a known layout; {EXPECTED_LAYOUTS}")


def discover_evaluation_split(root: str | Path, split: str = "test") -> DatasetSplits:
    """The labelled images to evaluate: ``split`` of a split layout, or all of a bare tree.

    The result holds one split, ``split`` (``all`` for a bare ``ROOT/{real,fake}/`` tree).
    """
    path = Path(root).expanduser().resolve()
    if path.is_dir() and (path / "real").is_dir() and (path / "fake").is_dir():
        return DatasetSplits("real_fake", path, {"all": read_folder_split(path)})
    if split not in SPLITS:
        raise DeepInsightError(f"split must be one of {SPLITS}, not {split!r}")
    try:
        found = discover_splits(path)
    except DeepInsightError as err:
        raise DeepInsightError(f"{err}, or ROOT/{{real,fake}}/ to evaluate") from None
    return DatasetSplits(found.layout, found.root, {split: found.splits[split]})


def read_kaggle_split(root: Path, split: str) -> list[Sample]:
    csv_path = root / f"{split}.csv"
    image_dir = root / KAGGLE_IMAGE_DIR
    with csv_path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"label", "path"} - set(reader.fieldnames or ())
        if missing:
            raise DeepInsightError(
                f"{csv_path} lacks the column(s) {sorted(missing)}; expected the Kaggle header "
                f"'{','.join(KAGGLE_CSV_HEADER)}'"
            )
        samples = []
        for line_no, row in enumerate(reader, start=2):
            label_text = (row["label"] or "").strip()
            if label_text not in _FROM_KAGGLE_LABEL:
                raise DeepInsightError(
                    f"{csv_path}:{line_no}: label must be 1 (real) or 0 (fake), got {label_text!r}"
                )
            label = _FROM_KAGGLE_LABEL[label_text]
            samples.append(Sample(image_dir / row["path"].strip(), label))
    return samples


def _folder_split_dirs(root: Path) -> dict[str, Path] | None:
    found = {}
    for split in SPLITS:
        names = VALID_ALIASES if split == "valid" else (split,)
        candidates = [root / n for n in names if (root / n / "real").is_dir()]
        candidates = [c for c in candidates if (c / "fake").is_dir()]
        if not candidates:
            return None
        found[split] = candidates[0]
    return found


def read_folder_split(split_dir: Path) -> list[Sample]:
    samples = []
    for class_name, label in (("real", LABEL_REAL), ("fake", LABEL_FAKE)):
        files = sorted(p for p in (split_dir / class_name).rglob("*") if p.is_file())
        samples.extend(Sample(p, label) for p in files if is_image_path(p))
    return samples
