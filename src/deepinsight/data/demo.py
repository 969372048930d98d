"""The embedded demo dataset: real photo crops versus crops re-synthesised by a GAN-like up-sampler.

DeepInsight must train out of the box, with no download, so it builds a small dataset on first
use, deterministically from a seed, and writes it in the exact layout of Kaggle's "140k Real and
Fake Faces" (``{train,valid,test}.csv`` plus ``real_vs_fake/real-vs-fake/<split>/<class>/*.jpg``)
so the real loading code runs on it unchanged.

*Real* images are random crops of the natural photographs that ship inside installed packages
(scikit-image, scikit-learn and matplotlib sample data). *Fake* images are the same kind of crops
re-synthesised by the last stage of a GAN generator: a transposed convolution (zero-insertion x2
up-sampling followed by a fixed, imperfect 8x8 kernel). Such up-convolutions leave a periodic
fingerprint (a checkerboard in flat regions and spectral replicas at high frequencies) that is
what detectors of GAN images pick up:

- X. Zhang, S. Karaman and S.-F. Chang, "Detecting and Simulating Artifacts in GAN Fake Images",
  IEEE WIFS 2019 (arXiv:1907.06515);
- R. Durall, M. Keuper and J. Keuper, "Watch your Up-Convolution: CNN Based Generative Deep
  Neural Networks are Failing to Reproduce Spectral Distributions", CVPR 2020.

There are no shortcuts by construction: both classes are cut from the same photos of a split,
down-sampled the same way, up-sampled back (real: a clean bicubic interpolator; fake: the
imperfect transposed convolution, blended in with a per-image strength drawn around
``artifact_strength``), given the same gain, brightness and sensor-noise jitter, and
JPEG-encoded with the same quality distribution. The real class also gets non-periodic noise
with the energy and JPEG behaviour of the fake's artifact (see ``nyquist_band_noise``), so
brightness, contrast, sharpness and file size carry no label (tests/test_demo_dataset.py checks
this); only the grid-locked periodic fingerprint does. Train, valid and test are cut from
disjoint photos. The defaults were calibrated with benchmarks/demo_difficulty.py so DenseNet121
on grayscale input reaches a test AUROC of about 0.96 in a few CPU minutes, not 1.0.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import io
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from deepinsight.errors import DeepInsightError

log = logging.getLogger(__name__)

# Bump when the generated files change for the same parameters: it is part of the cache name.
# Version 1 was an uncalibrated pre-release generator (its fakes were trivially separable).
FORMAT_VERSION = 2

DEMO_DEFAULTS: dict[str, Any] = {
    "n_train": 1600,
    "n_valid": 400,
    "n_test": 400,
    "image_size": 64,
    "artifact_strength": 0.2,
    "seed": 0,
    "jpeg_quality": 95,
}
# The training the defaults were calibrated for (DenseNet121, grayscale, Adam 1e-3, 2 CPU cores:
# about 20 s an epoch, test AUROC about 0.96); see benchmarks/demo_difficulty.py.
DEMO_RECOMMENDED_EPOCHS = 7
DEMO_RECOMMENDED_BATCH_SIZE = 64

SPLITS = ("train", "valid", "test")
CSV_HEADER = ("", "original_path", "id", "label", "label_str", "path")
IMAGES_SUBDIR = Path("real_vs_fake") / "real-vs-fake"
MANIFEST_NAME = "demo_manifest.json"
# Kaggle's convention inside its CSVs (DeepInsight's own contract is the reverse: 1 = fake).
KAGGLE_LABELS = {"real": 1, "fake": 0}

# Each image's JPEG quality is drawn uniformly from [jpeg_quality - spread, jpeg_quality].
JPEG_QUALITY_SPREAD = 10
# Crops are between 1x and this many times the image size before down-sampling, so objects
# appear at several scales.
MAX_CROP_SCALE = 4
GAIN_RANGE = (0.85, 1.15)
BRIGHTNESS_RANGE = (-0.06, 0.06)
SENSOR_NOISE_RANGE = (0.0, 0.012)  # per-pixel std on the [0, 1] scale
# Width of the real class's stand-in band (see nyquist_band_noise). A broad band (white or
# second-difference noise) survives JPEG less well than the artifact yet costs more bytes, so
# sharpness and file size drift apart; at about 1.5 px the stand-in spreads over as few DCT
# coefficients as the artifact, and both statistics match with no gain fudge.
STAND_IN_SIGMA = 1.5

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

# Where each package keeps its sample photos, relative to the package directory.
_PACKAGE_DATA_DIRS = {
    "skimage": Path("data"),
    "sklearn": Path("datasets") / "images",
    "matplotlib": Path("mpl-data") / "sample_data",
}

# Clean x2 interpolator in zero-insertion form: Keys bicubic (a = -0.5) sampled at the half-pixel
# output offsets. Both polyphase components sum to 1, so flat regions stay flat.
_BICUBIC_X2 = np.array(
    [-0.0234375, -0.0703125, 0.2265625, 0.8671875, 0.8671875, 0.2265625, -0.0703125, -0.0234375]
)

# The generator's imperfection: a "learned-looking" perturbation of the 4x4 kernel centre. Its
# four polyphase components sum to roughly +a, -a, -a, +a, which paints a checkerboard whose
# depth follows local brightness (Zhang et al.), and its uneven taps inside each phase
# re-inject spectral replicas of edges at high frequencies (Durall et al.).
_KERNEL_FLAW = np.array(
    [
        [0.3, -0.5, 0.4, -0.2],
        [-0.6, 1.0, -0.9, 0.3],
        [0.5, -0.8, 1.0, -0.4],
        [-0.1, 0.4, -0.5, 0.2],
    ]
)
# Depth of the checkerboard at artifact_strength = 1: a badly converged generator.
_FLAW_DEPTH = 0.2


def _generator_kernel() -> np.ndarray:
    """The 8x8 transposed-convolution kernel: clean bicubic plus a zero-mean, scaled flaw."""
    flaw = _KERNEL_FLAW - _KERNEL_FLAW.mean()  # zero net gain: no brightness shift
    phase_sums = [flaw[p::2, q::2].sum() for p in (0, 1) for q in (0, 1)]
    flaw = flaw * (_FLAW_DEPTH / np.mean(np.abs(phase_sums)))
    kernel = np.outer(_BICUBIC_X2, _BICUBIC_X2)
    kernel[2:6, 2:6] += flaw
    return kernel


_CLEAN_KERNEL = np.outer(_BICUBIC_X2, _BICUBIC_X2)
_GAN_KERNEL = _generator_kernel()


def upsample_x2(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Transposed convolution with stride 2: zero-insert, then correlate with an 8x8 kernel.

    ``image`` is (H, W, C) float; the result is (2H, 2W, C). Edges are replicated so borders
    carry no artefact of their own.
    """
    pad = 3
    padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    zeros = np.zeros((2 * padded.shape[0], 2 * padded.shape[1], image.shape[2]))
    zeros[::2, ::2] = padded
    out_h, out_w = 2 * image.shape[0], 2 * image.shape[1]
    # Output pixel o reads zero-inserted samples o+2 .. o+9 (input pixel i sits at 2(i+pad)),
    # which centres the kernel on the half-pixel grid of the output.
    out = np.zeros((out_h, out_w, image.shape[2]))
    for (row, col), tap in np.ndenumerate(kernel):
        out += tap * zeros[2 + row : 2 + row + out_h, 2 + col : 2 + col + out_w]
    return out


def _package_data_dir(package: str) -> Path:
    # find_spec locates the package without importing it (matplotlib and sklearn import slowly).
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DeepInsightError(
            f"the demo dataset needs the '{package}' package; install DeepInsight's dependencies"
        )
    return Path(next(iter(spec.submodule_search_locations))) / _PACKAGE_DATA_DIRS[package]


def _load_source_photo(name: str) -> np.ndarray:
    """A bundled photo as (H, W, 3) uint8 RGB; grayscale photos get three equal channels."""
    package, filename = name.split("/", 1)
    path = _package_data_dir(package) / filename
    if not path.is_file():
        raise DeepInsightError(
            f"demo source photo {path} is missing; reinstall '{package}' (no download is made)"
        )
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


def nyquist_band_noise(white: np.ndarray, envelope_sigma: float = STAND_IN_SIGMA) -> np.ndarray:
    """Unit-variance noise in a band at the highest frequencies, with no fixed phase.

    Smoothed white noise (a random envelope, Gaussian ``envelope_sigma`` px) times a +-1
    checkerboard carrier: the spectrum of the envelope moved to the Nyquist corner. The envelope
    flips the local phase every few pixels, so the pattern is neither periodic nor grid-locked.
    ``white`` is (H, W, C); edges wrap, which a stationary noise does not mind.
    """
    radius = int(np.ceil(3 * envelope_sigma))
    offsets = np.arange(-radius, radius + 1)
    taps = np.exp(-0.5 * (offsets / envelope_sigma) ** 2)
    taps /= taps.sum()
    envelope = white
    for axis in (0, 1):
        envelope = sum(
            tap * np.roll(envelope, int(shift), axis) for shift, tap in zip(offsets, taps)
        )
    rows, cols = np.indices(white.shape[:2])
    carrier = np.where((rows + cols) % 2 == 0, 1.0, -1.0)[..., None]
    band = envelope * carrier
    return band / band.std()


def _render_image(
    photo: np.ndarray,
    rng: np.random.Generator,
    fake: bool,
    image_size: int,
    artifact_strength: float,
    jpeg_quality: int,
) -> tuple[bytes, dict[str, Any]]:
    """Cut one crop from ``photo`` and turn it into a real or fake JPEG; returns (bytes, record).

    Every random draw is made for both classes, in the same order, from the same distributions.
    """
    height, width = photo.shape[:2]
    low_size = image_size // 2
    max_crop = min(height, width, MAX_CROP_SCALE * image_size)
    crop = int(round(np.exp(rng.uniform(np.log(image_size), np.log(max_crop)))))
    top = int(rng.integers(0, height - crop + 1))
    left = int(rng.integers(0, width - crop + 1))
    flip = bool(rng.random() < 0.5)
    # Each fake comes from a generator of different quality: the faintest ones are invisible,
    # which gives the task a ceiling below AUROC 1 that does not hinge on the exact strength.
    strength = artifact_strength * rng.uniform(0.0, 2.0)
    gain = rng.uniform(*GAIN_RANGE)
    brightness = rng.uniform(*BRIGHTNESS_RANGE)
    sensor_sigma = rng.uniform(*SENSOR_NOISE_RANGE)
    quality = int(rng.integers(jpeg_quality - JPEG_QUALITY_SPREAD, jpeg_quality + 1))
    stand_in = nyquist_band_noise(rng.standard_normal((image_size, image_size, 1)))
    sensor = rng.standard_normal((image_size, image_size, 3))

    patch = Image.fromarray(photo[top : top + crop, left : left + crop])
    if flip:
        patch = patch.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    # The "latent" half-size image both classes are re-synthesised from.
    low = np.asarray(patch.resize((low_size, low_size), Image.Resampling.LANCZOS)) / 255.0
    clean = upsample_x2(low, _CLEAN_KERNEL)
    artifact = strength * (upsample_x2(low, _GAN_KERNEL) - clean)
    if fake:
        image = clean + artifact
    else:
        # A non-periodic stand-in with the energy the artifact would have had. Without it the
        # fakes alone carry extra high-frequency energy: they look sharper (Laplacian
        # variance) and their JPEGs grow, so a blur or file-size statistic would find them.
        rms = float(np.sqrt(np.mean(artifact**2)))
        image = clean + rms * stand_in
    image = gain * image + brightness + sensor_sigma * sensor
    pixels = np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)

    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="RGB").save(buffer, format="JPEG", quality=quality)
    record = {
        "crop": [top, left, crop],
        "flip": flip,
        "strength": round(strength, 6),
        "jpeg_quality": quality,
    }
    return buffer.getvalue(), record


def _validate(
    counts: dict[str, int], image_size: int, artifact_strength: float, jpeg_quality: int
) -> None:
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
) -> Path:
    """Write the demo dataset into ``dest`` (created; may exist but should be empty).

    Counts are per split, both classes together, half real and half fake. The same arguments
    always give byte-identical files. ``demo_manifest.json`` records the parameters and, for
    every image, its source photo, crop ``[top, left, size]``, flip, JPEG quality and
    ``strength`` (a fake's artifact strength; for a real image, the strength whose energy its
    stand-in noise copies). Returns ``dest``.
    """
    counts = {"train": n_train, "valid": n_valid, "test": n_test}
    _validate(counts, image_size, artifact_strength, jpeg_quality)
    dest = Path(dest)
    photos = {name: _load_source_photo(name) for pool in SOURCE_PHOTOS.values() for name in pool}
    manifest: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "params": {
            **{f"n_{split}": count for split, count in counts.items()},
            "image_size": image_size,
            "artifact_strength": artifact_strength,
            "seed": seed,
            "jpeg_quality": jpeg_quality,
        },
        "label_convention": "kaggle: label 1 = real, 0 = fake",
        "source_photos": {split: list(SOURCE_PHOTOS[split]) for split in SPLITS},
        "images": [],
    }
    for split_number, split in enumerate(SPLITS):
        for label_str in KAGGLE_LABELS:
            (dest / IMAGES_SUBDIR / split / label_str).mkdir(parents=True, exist_ok=True)
        rows = []
        plan_rng = np.random.default_rng([seed, split_number])
        for index, label_str, photo in _split_plan(split, counts[split], plan_rng):
            # One generator per image: an image depends only on (seed, split, index).
            rng = np.random.default_rng([seed, split_number, index, 1])
            fake = label_str == "fake"
            jpeg, record = _render_image(
                photos[photo], rng, fake, image_size, artifact_strength, jpeg_quality
            )
            rel_path = f"{split}/{label_str}/{index:05d}.jpg"
            (dest / IMAGES_SUBDIR / rel_path).write_bytes(jpeg)
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
            writer.writerow(CSV_HEADER)
            writer.writerows(rows)
    # Written last: a directory with a manifest is a finished build.
    (dest / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return dest


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
            name: float(value) if name == "artifact_strength" else int(value)
            for name, value in params.items()
        }
    except (TypeError, ValueError) as err:
        raise DeepInsightError(f"bad demo dataset parameter: {err}") from None


def ensure_demo_dataset(cache_dir: str | Path | None = None, **params: Any) -> Path:
    """Return the root of the demo dataset for ``params`` (DEMO_DEFAULTS filled in), building it
    once if it is not cached yet.

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
    log.info("Building the demo dataset (one-off, a few seconds) in %s", final)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=root_dir))
    try:
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
