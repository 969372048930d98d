"""Leave-one-generator-out folds of the demo: which generators' images each split holds.

The ``generator=mix`` demo records, per fake, the generator that made it (its manifest's
``generator``: one of four learned decoders or the hand-made up-convolution; the Kaggle layout
itself is unchanged). A real image belongs to a generator too: its stand-in noise copies the
artifact of one generator (the manifest's ``stand_in``), so that sharpness and file size cannot
tell the classes apart (deepinsight.data.demo_decoders, demo_images).
``data.demo.train_generators`` keeps in the train and valid splits only those generators' images,
real and fake, and ``data.demo.test_generators`` in the test split only theirs. Were the reals
kept whole, the training reals would carry noise shaped like the held-out decoder's residual
while no training fake did, and a model would learn "that spectrum means real": on the first
measurement (2026-12-02) every configuration then scored the held-out fakes as more real than
the reals (mean held-out AUROC 0.27 to 0.50). The photos stay disjoint across splits.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from deepinsight.data.layouts import KAGGLE_IMAGE_DIR, DatasetSplits, Sample
from deepinsight.errors import DeepInsightError

MANIFEST = "demo_manifest.json"


def demo_generators(root: Path) -> dict[str, str]:
    """Each image's generator, by its path relative to the image folder: the generator that
    made a fake, or the one whose artifact a real's stand-in noise copies."""
    manifest = json.loads((Path(root) / MANIFEST).read_text())
    if manifest.get("params", {}).get("generator") != "mix":
        raise DeepInsightError(
            "data.demo.train_generators / test_generators need a demo that records its "
            "generators: data.demo.generator=mix"
        )
    return {image["path"]: image["generator"] or image["stand_in"] for image in manifest["images"]}


def select_generators(
    splits: DatasetSplits,
    train_generators: Sequence[str] | None,
    test_generators: Sequence[str] | None,
) -> DatasetSplits:
    """``splits`` with only the chosen generators' images: train and valid keep
    ``train_generators``'s, test ``test_generators``'s (None: all). Each image keeps its
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
            generator = generators[sample.path.relative_to(image_dir).as_posix()]
            if generator in keep:
                kept.append(Sample(sample.path, sample.label, generator))
        selected[split] = kept
    return DatasetSplits(splits.layout, splits.root, selected)
