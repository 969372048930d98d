"""Leave-one-generator-out folds of the demo: which generators' fakes each split holds.

The ``generator=mix`` demo records, per fake, the decoder that made it (its manifest's
``generator``; the Kaggle layout itself is unchanged). ``data.demo.train_generators`` keeps in the
train and valid splits only the fakes of those generators, ``data.demo.test_generators`` in the
test split only theirs; real images stay as they are (disjoint photos per split). So a fold with
``test_generators=[bilinear]`` and the other generators for training measures how a detector
does on a generator it never saw.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from deepinsight.data.layouts import KAGGLE_IMAGE_DIR, DatasetSplits, Sample
from deepinsight.errors import DeepInsightError

MANIFEST = "demo_manifest.json"


def demo_generators(root: Path) -> dict[str, str]:
    """Each fake image's generator, by its path relative to the image folder."""
    manifest = json.loads((Path(root) / MANIFEST).read_text())
    found = {
        image["path"]: image["generator"]
        for image in manifest["images"]
        if image.get("generator") is not None
    }
    if not found:
        raise DeepInsightError(
            "data.demo.train_generators / test_generators need a demo that records its "
            "generators: data.demo.generator=mix"
        )
    return found


def select_generators(
    splits: DatasetSplits,
    train_generators: Sequence[str] | None,
    test_generators: Sequence[str] | None,
) -> DatasetSplits:
    """``splits`` with only the chosen generators' fakes: train and valid keep
    ``train_generators``'s, test ``test_generators``'s (None: all). Each fake keeps its
    generator as its ``group`` (per-generator tables)."""
    generators = demo_generators(splits.root)
    known = sorted(set(generators.values()))
    for name, chosen in (("train", train_generators), ("test", test_generators)):
        unknown = sorted(set(chosen or ()) - set(known))
        if unknown:
            raise DeepInsightError(
                f"data.demo.{name}_generators: unknown generator(s) {', '.join(unknown)}; "
                f"this demo has {', '.join(known)}"
            )
    image_dir = splits.root / KAGGLE_IMAGE_DIR
    selected = {}
    for split, samples in splits.splits.items():
        chosen = test_generators if split == "test" else train_generators
        keep = set(known if chosen is None else chosen)
        kept = []
        for sample in samples:
            generator = generators.get(sample.path.relative_to(image_dir).as_posix())
            if generator is None:  # a real image
                kept.append(sample)
            elif generator in keep:
                kept.append(Sample(sample.path, sample.label, generator))
        selected[split] = kept
    return DatasetSplits(splits.layout, splits.root, selected)
