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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from deepinsight import CLASS_NAMES, LABEL_FAKE, LABEL_REAL
from deepinsight.data.image_io import IMAGE_EXTENSIONS, MEDIA_EXTENSIONS
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

# What data.layout may name: for training (three splits), and for evaluation (one split).
TRAINING_LAYOUTS = ("kaggle", "folders", "forensynths", "genimage", "wildrf")
EVALUATION_LAYOUTS = ("real_fake", "kaggle", "folders", "forensynths", "genimage", "wildrf")
BENCHMARK_HELP = (
    "ForenSynths ROOT/<generator>/[<class>/]{0_real,1_fake}, GenImage "
    "ROOT/<generator>/{train,val}/{nature,ai}, WildRF ROOT/{train,val,test/<platform>}/"
    "{0_real,1_fake}"
)

EXPECTED_LAYOUTS = (
    "expected ROOT/{train,valid,test}.csv with ROOT/real_vs_fake/real-vs-fake/ "
    "(the Kaggle '140k Real and Fake Faces' download) or ROOT/{train,valid,test}/{real,fake}/"
)


@dataclass(frozen=True)
class Sample:
    path: Path
    label: int | None  # 1 = fake, 0 = real; None for a file to score, whose label is unknown
    # The generator (or platform) of a benchmark layout's image; None elsewhere.
    group: str | None = None


@dataclass(frozen=True)
class DatasetSplits:
    layout: str  # "kaggle", "folders", "real_fake" or a benchmark layout (BENCHMARK_LAYOUTS)
    root: Path
    splits: dict[str, list[Sample]]


def discover_splits(root: str | Path, layout: str = "auto") -> DatasetSplits:
    """Return the samples of each official split, or raise DeepInsightError naming the problem.

    ``layout``: ``auto`` (detect), or one of ``TRAINING_LAYOUTS`` to insist on it.
    """
    from deepinsight.data.benchmark_layouts import training_readers

    root = _existing_dir(root)
    candidates: dict[str, Callable[[], dict[str, list[Sample]]]] = {}
    if all((root / f"{split}.csv").is_file() for split in SPLITS):
        candidates["kaggle"] = lambda: {s: read_kaggle_split(root, s) for s in SPLITS}
    split_dirs = _folder_split_dirs(root)
    if split_dirs is not None:
        candidates["folders"] = lambda: {s: read_folder_split(d) for s, d in split_dirs.items()}
    candidates.update(training_readers(root))
    name = _choose(root, layout, candidates, TRAINING_LAYOUTS, EXPECTED_LAYOUTS)
    return DatasetSplits(name, root, candidates[name]())


def discover_evaluation_split(
    root: str | Path, split: str = "test", layout: str = "auto"
) -> DatasetSplits:
    """The labelled images to evaluate: ``split`` of a split layout, or all of a bare tree.

    The result holds one split, ``split`` (``all`` for a bare ``ROOT/{real,fake}/`` tree or a
    benchmark's test tree). Benchmark layouts tag each image with its generator (``group``).
    """
    from deepinsight.data.benchmark_layouts import evaluation_readers

    if split not in SPLITS:
        raise DeepInsightError(f"split must be one of {SPLITS}, not {split!r}")
    path = _existing_dir(root)
    candidates: dict[str, Callable[[], dict[str, list[Sample]]]] = {}
    if (path / "real").is_dir() and (path / "fake").is_dir():
        candidates["real_fake"] = lambda: {"all": read_folder_split(path, MEDIA_EXTENSIONS)}
    if all((path / f"{s}.csv").is_file() for s in SPLITS):
        candidates["kaggle"] = lambda: {split: read_kaggle_split(path, split)}
    split_dirs = _folder_split_dirs(path)
    if split_dirs is not None:
        candidates["folders"] = lambda: {
            split: read_folder_split(split_dirs[split], MEDIA_EXTENSIONS)
        }
    for name, read in evaluation_readers(path, split).items():
        candidates[name] = lambda read=read: {split: read()}
    expected = f"{EXPECTED_LAYOUTS}, ROOT/{{real,fake}}/, or a benchmark tree ({BENCHMARK_HELP})"
    name = _choose(path, layout, candidates, EVALUATION_LAYOUTS, expected)
    return DatasetSplits(name, path, candidates[name]())


def _existing_dir(root: str | Path) -> Path:
    root = Path(root).expanduser().resolve()
    if not root.exists():
        raise DeepInsightError(f"data.root '{root}' does not exist; {EXPECTED_LAYOUTS}")
    if not root.is_dir():
        raise DeepInsightError(f"data.root '{root}' is not a directory; {EXPECTED_LAYOUTS}")
    return root


def _choose(
    root: Path, layout: str, candidates: dict, known: tuple[str, ...], expected: str
) -> str:
    """The one layout to read: the named one, else the only one detected; else one line."""
    if layout != "auto":
        if layout not in known:
            raise DeepInsightError(
                f"unknown data.layout {layout!r}; choose auto or one of: {', '.join(known)}"
            )
        if layout not in candidates:
            raise DeepInsightError(f"data.root '{root}' is not in the {layout} layout; {expected}")
        return layout
    if not candidates:
        raise DeepInsightError(f"data.root '{root}' is not in a known layout; {expected}")
    if len(candidates) > 1:
        raise DeepInsightError(
            f"data.root '{root}' fits several layouts ({', '.join(candidates)}); name one with "
            "data.layout=..."
        )
    return next(iter(candidates))


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


def read_folder_split(
    split_dir: Path, extensions: tuple[str, ...] = IMAGE_EXTENSIONS
) -> list[Sample]:
    """``split_dir/{real,fake}/**`` files with ``extensions`` (images; evaluation adds videos)."""
    samples = []
    for class_name, label in (("real", LABEL_REAL), ("fake", LABEL_FAKE)):
        files = sorted(p for p in (split_dir / class_name).rglob("*") if p.is_file())
        samples.extend(Sample(p, label) for p in files if p.suffix.lower() in extensions)
    return samples
