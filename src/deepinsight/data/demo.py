"""The embedded demo dataset: real photo crops versus crops re-synthesised by a GAN-like up-sampler.

DeepInsight must train out of the box, with no download, so it builds a small dataset on first
use, deterministically from a seed, and writes it in the exact layout of Kaggle's "140k Real and
Fake Faces" (``{train,valid,test}.csv`` plus ``real_vs_fake/real-vs-fake/<split>/<class>/*.jpg``)
so the real loading code runs on it unchanged.

This module decides which photos feed which split, writes the CSVs and the manifest, and caches
the finished dataset; how each real or fake image is made, and why only the generator's
fingerprint tells them apart, is in ``deepinsight.data.demo_decoders`` (``generator="decoder"``,
the default: briefly trained DCGAN-style decoders) or ``deepinsight.data.demo_images``
(``"upconv"``: the first demo's one hand-designed up-convolution). Train, valid and test are cut
from disjoint photos. The defaults were calibrated so that every variant of the seed sweep
reaches a test AUROC of at least 0.9 in a few CPU minutes (experiments/demo_generator).

Over 300 lines on purpose: the demo's settings, cache key, layout writing and the two
generators' hooks are one contract.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from deepinsight.data.demo_archive import unpack_shipped
from deepinsight.data.demo_images import JPEG_QUALITY_SPREAD, load_source_photo, render_image
from deepinsight.data.layouts import KAGGLE_CSV_HEADER, KAGGLE_IMAGE_DIR, KAGGLE_LABELS, SPLITS
from deepinsight.errors import DeepInsightError

log = logging.getLogger(__name__)

# Bump when the generated files change for the same parameters: it is part of the cache name.
# Version 1 was an uncalibrated pre-release generator (its fakes were trivially separable);
# version 3 made the decoder generator the default and changed its gain and stand-in noise;
# version 4 added the hand-made up-convolution to generator=mix (the other demos are unchanged).
FORMAT_VERSION = 4

DEMO_DEFAULTS: dict[str, Any] = {
    "n_train": 1600,
    "n_valid": 400,
    "n_test": 400,
    "image_size": 64,
    "artifact_strength": 0.2,
    "seed": 0,
    "jpeg_quality": 95,
    "generator": "decoder",
}
# How fakes are made: "decoder", briefly trained DCGAN-style decoders (demo_decoders); "upconv",
# one hand-designed x2 up-convolution (demo_images), the default up to format version 2; "mix",
# four decoders of different up-sampling designs plus the hand-made up-convolution
# (demo_decoders.MIX_GENERATORS), each fake's recorded by name in the manifest (``generator``),
# and each real's, the generator whose artifact its stand-in noise copies (``stand_in``): the
# leave-one-generator-out demo.
GENERATORS = ("decoder", "upconv", "mix")
# They were calibrated for the demo's training defaults, which live in conf/ (the demo branch of
# each `di.if_demo`: 7 epochs, batch 64, 64 px), Adam 1e-3, 2 CPU cores: about 14 s a DenseNet121
# epoch; see experiments/demo_generator/README.md.

# The value of data.root that asks for the embedded demo dataset. It is a named choice, not an
# empty value: `data.root=$DATA` with DATA unset must fail, not quietly train on the demo. A
# folder that is literally called "demo" is written ./demo.
DEMO_ROOT = "demo"
# What an unset root looks like after Hydra and OmegaConf: null, empty, the text "null".
_UNSET_ROOTS = (None, "", "null", "None")


def is_demo_root(root: Any) -> bool:
    """Whether ``data.root`` means the embedded demo dataset rather than a folder on disk.

    The one rule for "demo or disk?": the config's demo-or-dataset defaults (``di.if_demo``)
    and the DataModule both ask it, so they never disagree. An unset or empty root is an error.
    """
    check_data_root(root)
    return str(root) == DEMO_ROOT


def resolve_data_root(root: Any) -> str:
    """A command's ``data.root`` as a folder: ``demo`` becomes the default demo dataset's."""
    return str(ensure_demo_dataset()) if is_demo_root(root) else str(root)


def check_data_root(root: Any) -> None:
    """A one-line error for an unset or empty ``data.root`` (e.g. ``data.root=$DATA``, unset)."""
    if root is None or str(root).strip() in _UNSET_ROOTS:
        raise DeepInsightError(
            f"data.root is empty ({root!r}): give a dataset folder, e.g. data.root=/data/140k, "
            f"or data.root={DEMO_ROOT} for the embedded demo dataset"
        )


MANIFEST_NAME = "demo_manifest.json"

# Fixed, disjoint photo pools. Valid and test each mix colour and grayscale, smooth and textured
# photos; the stereo pair motorcycle_left/right stays in one split because it is one scene.
# Synthetic images (chessboard, logo, colour wheel, phantom, horse silhouette) are left out.
SOURCE_PHOTOS: dict[str, tuple[str, ...]] = {
    "train": (
        "skimage/astronaut.png",
        "skimage/brick.png",
        "skimage/camera.png",
        "skimage/cell.png",
        "skimage/clock_motion.png",
        "skimage/hubble_deep_field.jpg",
        "skimage/microaneurysms.png",
        "skimage/motorcycle_left.png",
        "skimage/motorcycle_right.png",
        "skimage/page.png",
        "skimage/retina.jpg",
        "skimage/text.png",
        "matplotlib/grace_hopper.jpg",
    ),
    "valid": (
        "skimage/chelsea.png",
        "skimage/gravel.png",
        "skimage/moon.png",
        "skimage/rocket.jpg",
        "sklearn/flower.jpg",
    ),
    "test": (
        "skimage/coffee.png",
        "skimage/coins.png",
        "skimage/grass.png",
        "skimage/ihc.png",
        "sklearn/china.jpg",
    ),
}


def _validate(
    counts: dict[str, int],
    image_size: int,
    artifact_strength: float,
    jpeg_quality: int,
    generator: str,
) -> None:
    if generator not in GENERATORS:
        raise DeepInsightError(f"generator must be one of {GENERATORS} (got {generator!r})")
    if generator in ("decoder", "mix") and image_size % 8:
        raise DeepInsightError(
            f"generator={generator} needs image_size % 8 == 0 (got {image_size})"
        )
    for split, count in counts.items():
        if count < 2 or count % 2:
            raise DeepInsightError(f"n_{split} must be an even number >= 2 (got {count})")
    if image_size < 16 or image_size % 2:
        raise DeepInsightError(f"image_size must be an even number >= 16 (got {image_size})")
    if not 0.0 <= artifact_strength <= 1.0:
        raise DeepInsightError(f"artifact_strength must be in [0, 1] (got {artifact_strength})")
    if not JPEG_QUALITY_SPREAD < jpeg_quality <= 100:
        raise DeepInsightError(
            f"jpeg_quality must be in ({JPEG_QUALITY_SPREAD}, 100] (got {jpeg_quality})"
        )


def _split_plan(split: str, count: int, rng: np.random.Generator) -> Iterator[tuple[int, str, str]]:
    """(index, class, photo) for each image: pairs of one real and one fake from the same photo.

    Photos are dealt round-robin from a shuffled pool, so every photo appears equally often in
    both classes and the source photo says nothing about the label.
    """
    pool = list(SOURCE_PHOTOS[split])
    for pair in range(count // 2):
        if pair % len(pool) == 0:
            rng.shuffle(pool)
        photo = pool[pair % len(pool)]
        yield 2 * pair, "real", photo
        yield 2 * pair + 1, "fake", photo


def build_demo_dataset(
    dest: Path,
    *,
    n_train: int,
    n_valid: int,
    n_test: int,
    image_size: int,
    artifact_strength: float,
    seed: int,
    jpeg_quality: int = DEMO_DEFAULTS["jpeg_quality"],
    generator: str = DEMO_DEFAULTS["generator"],
) -> Path:
    """Write the demo dataset into ``dest`` (created; may exist but should be empty).

    Counts are per split, both classes together, half real and half fake. The same arguments
    always give byte-identical files. ``demo_manifest.json`` records the parameters and, for
    every image, its source photo, crop ``[top, left, size]``, flip, JPEG quality and
    ``strength`` (a fake's artifact strength; for a real image, the strength whose energy its
    stand-in noise copies). Returns ``dest``.
    """
    counts = {"train": n_train, "valid": n_valid, "test": n_test}
    _validate(counts, image_size, artifact_strength, jpeg_quality, generator)
    dest = Path(dest)
    photos = {name: load_source_photo(name) for pool in SOURCE_PHOTOS.values() for name in pool}
    render = _renderer(generator, photos, seed, image_size, artifact_strength, jpeg_quality)
    manifest: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "params": {
            **{f"n_{split}": count for split, count in counts.items()},
            "image_size": image_size,
            "artifact_strength": artifact_strength,
            "seed": seed,
            "jpeg_quality": jpeg_quality,
            "generator": generator,
        },
        "label_convention": "kaggle: label 1 = real, 0 = fake",
        "source_photos": {split: list(SOURCE_PHOTOS[split]) for split in SPLITS},
        "images": [],
    }
    for split_number, split in enumerate(SPLITS):
        for label_str in KAGGLE_LABELS:
            (dest / KAGGLE_IMAGE_DIR / split / label_str).mkdir(parents=True, exist_ok=True)
        rows = []
        plan_rng = np.random.default_rng([seed, split_number])
        plan = list(_split_plan(split, counts[split], plan_rng))
        # One generator per image: an image depends only on (seed, split, index).
        items = [
            (
                photos[photo],
                label_str == "fake",
                np.random.default_rng([seed, split_number, index, 1]),
            )
            for index, label_str, photo in plan
        ]
        for (index, label_str, photo), (jpeg, record) in zip(plan, render(items)):
            rel_path = f"{split}/{label_str}/{index:05d}.jpg"
            (dest / KAGGLE_IMAGE_DIR / rel_path).write_bytes(jpeg)
            top, left, size = record["crop"]
            original = f"{photo}@y{top}x{left}s{size}"
            rows.append((index, original, index, KAGGLE_LABELS[label_str], label_str, rel_path))
            manifest["images"].append(
                {
                    "path": rel_path,
                    "split": split,
                    "label_str": label_str,
                    "source": photo,
                    **record,
                }
            )
        with open(dest / f"{split}.csv", "w", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(KAGGLE_CSV_HEADER)
            writer.writerows(rows)
    # Written last: a directory with a manifest is a finished build.
    (dest / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return dest


def _renderer(
    generator: str,
    photos: dict[str, np.ndarray],
    seed: int,
    image_size: int,
    artifact_strength: float,
    jpeg_quality: int,
) -> Callable[[list[tuple[np.ndarray, bool, np.random.Generator]]], Iterator[tuple[bytes, Any]]]:
    """A function from (photo, is_fake, rng) items to (JPEG bytes, record) per item."""
    if generator == "upconv":
        return lambda items: (
            render_image(photo, rng, fake, image_size, artifact_strength, jpeg_quality)
            for photo, fake, rng in items
        )
    # Imported here: it pulls in torch, which the upconv demo does not need.
    from deepinsight.data import demo_decoders

    # The decoders learn from the train split's photos only.
    train_photos = [photos[name] for name in SOURCE_PHOTOS["train"]]
    kinds = demo_decoders.MIX_DECODERS if generator == "mix" else None
    fingerprints, spectra = demo_decoders.train_fingerprints(
        train_photos, seed, image_size, kinds=kinds
    )
    handmade_share = 1 / len(demo_decoders.MIX_GENERATORS) if kinds is not None else 0.0

    def render(items: list[tuple[np.ndarray, bool, np.random.Generator]]):
        for start in range(0, len(items), 256):  # bounded memory
            chunk = items[start : start + 256]
            # mix: the image's own rng first decides whether the hand-made up-convolution makes
            # it (one in five); the rest are spread over the decoders by render_split.
            handmade = [kinds is not None and rng.random() < handmade_share for *_, rng in chunk]
            to_decode = [item for item, own in zip(chunk, handmade) if not own]
            learned = iter(
                demo_decoders.render_split(
                    to_decode, fingerprints, spectra, image_size, artifact_strength, jpeg_quality
                )
                if to_decode
                else ()
            )
            for (photo, fake, rng), own in zip(chunk, handmade):
                if own:
                    jpeg, record = render_image(
                        photo, rng, fake, image_size, artifact_strength, jpeg_quality
                    )
                    name = demo_decoders.HANDMADE
                else:
                    jpeg, record = next(learned)
                    name = kinds[record["decoder"]] if kinds is not None else None
                if kinds is not None:  # the fake's maker, or the one a real's noise copies
                    record = {
                        **record,
                        "generator": name if fake else None,
                        "stand_in": None if fake else name,
                    }
                yield jpeg, record

    return render


def default_cache_dir() -> Path:
    """$DEEPINSIGHT_CACHE, else $XDG_CACHE_HOME/deepinsight, else ~/.cache/deepinsight."""
    if os.environ.get("DEEPINSIGHT_CACHE"):
        return Path(os.environ["DEEPINSIGHT_CACHE"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "deepinsight"
    return Path.home() / ".cache" / "deepinsight"


def demo_dataset_name(params: dict[str, Any]) -> str:
    """Folder name: format version plus a short hash, so different parameters never collide."""
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]
    return f"demo-v{FORMAT_VERSION}-{digest}"


def _normalise(params: dict[str, Any]) -> dict[str, Any]:
    """Plain int/float values, so 0.2 from YAML and 0.2 from Python hash to the same folder."""
    try:
        return {
            name: float(value)
            if name == "artifact_strength"
            else str(value)
            if name == "generator"
            else int(value)
            for name, value in params.items()
        }
    except (TypeError, ValueError) as err:
        raise DeepInsightError(f"bad demo dataset parameter: {err}") from None


def ensure_demo_dataset(
    cache_dir: str | Path | None = None, prebuilt: bool = True, **params: Any
) -> Path:
    """Return the root of the demo dataset for ``params`` (DEMO_DEFAULTS filled in), building it
    once if it is not cached yet. The default parameters are unpacked from the archive the
    package ships instead (``demo_archive``; ``prebuilt=False`` builds them here).

    The build goes to a temporary sibling folder that is renamed into place, so a half-written
    dataset is never seen and concurrent callers (a Hydra multirun) are safe: whoever loses the
    rename race discards its copy and uses the winner's.
    """
    unknown = sorted(set(params) - set(DEMO_DEFAULTS))
    if unknown:
        raise DeepInsightError(
            f"unknown demo dataset parameter(s) {unknown}; valid ones: {sorted(DEMO_DEFAULTS)}"
        )
    params = _normalise({**DEMO_DEFAULTS, **params})
    root_dir = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    final = root_dir / demo_dataset_name(params)
    if (final / MANIFEST_NAME).is_file():
        return final
    root_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=root_dir))
    try:
        if prebuilt and unpack_shipped(staging, params, FORMAT_VERSION):
            log.info("The demo dataset (shipped prebuilt) is in %s", final)
        else:
            log.info("Building the demo dataset (one-off; up to about a minute) in %s", final)
            build_demo_dataset(staging, **params)
        try:
            staging.rename(final)
        except OSError:
            if not (final / MANIFEST_NAME).is_file():
                raise DeepInsightError(
                    f"{final} exists but is not a finished demo dataset; delete it and retry"
                ) from None
            # Another process finished first; its files are identical to ours.
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final
