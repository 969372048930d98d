"""Demo fakes made by learned generator decoders (the "AutoGAN" idea), not a hand-made kernel.

X. Zhang, S. Karaman and S.-F. Chang, "Detecting and Simulating Artifacts in GAN Fake Images"
(WIFS 2019) re-synthesise real images with a small autoencoder whose decoder is a GAN generator's
up-sampling stack; a detector trained on those re-syntheses generalised to GANs it never saw.
Here a few small autoencoders with DCGAN-style decoders (transposed convolutions, or nearest
up-sampling plus a convolution, with BatchNorm and ReLU) are trained for a few hundred steps on
the *train* split's photo crops, then applied to every split's crops.

Raw re-syntheses are blurrier than photos, which a statistic on sharpness would find (a
shortcut, not a generator fingerprint). So each decoder's output is split into what a
shift-invariant blur explains (the least-squares filter ``h`` with ``AE(x) ~ h * x``) and the
rest, ``r = AE(x) - h * x``: the up-sampling fingerprint and the decoder's non-linear errors.
A fake is ``x + g * highpass(r)``. A real made from the same crop gets stand-in noise instead,
with what the fake's artifact has except its fine structure: the residual's radially averaged
spectrum (isotropic, so neither periodic nor grid-locked), its colour covariance and its local
energy map, at an amplitude that gives the image ``STAND_IN_SCALE`` of the fake's Laplacian
energy. That keeps sharpness and JPEG size level, so only the decoder's fingerprint tells the
classes apart (tests/test_demo_decoders.py checks both).

The build is deterministic for a seed: one torch thread, seeded initialisation and batches.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from torch import nn

from deepinsight.data.demo_images import cut_crop, draw_jitter, finish_image

# (name, decoder kind) of the demo's generators: several briefly trained decoders gave a more
# learnable mix than one trained longer at the same cost (prototype notes).
DEMO_DECODERS: tuple[str, ...] = ("transposed", "upsample", "transposed")
# generator="mix": one decoder of each up-sampling design, each recorded by name per fake, for
# the leave-one-generator-out protocol (deepinsight.data.generator_folds).
MIX_DECODERS: tuple[str, ...] = ("transposed", "upsample", "bilinear", "transposed3")
# The mix's generators: those four learned decoders and, built separately from all of them, the
# first demo's hand-made x2 up-convolution (deepinsight.data.demo_images, ``generator=upconv``),
# one image in five each. Holding that one out asks the question the field asks most: a model
# trained on learned decoders meets a generator built another way.
HANDMADE = "upconv"
MIX_GENERATORS: tuple[str, ...] = (*MIX_DECODERS, HANDMADE)
TRAIN_STEPS = 200
TRAIN_BATCH = 16
# Decoders are fully convolutional, so they learn on small crops and apply at any multiple of 8.
TRAIN_CROP = 32
TRAIN_CROPS = 512
WIDTH = 24
FILTER_SIZE = 9  # the blur h that the residual is taken against
HIGHPASS_SIGMA = 1.5
# Residual gain g = GAIN_SCALE * artifact_strength * U(0.5, 1.5): g ~ U(4, 12) at the default
# strength 0.2. At g ~ U(1, 3) (the prototype's) the augmented variant stayed at chance (0.495)
# and the Quickstart reached 0.87; at U(4, 12) they reach 0.93 and 0.99
# (experiments/demo_generator/README.md).
GAIN_SCALE = 40.0
# Window (pixels) of the fake artifact's local energy map that shapes a real's stand-in noise:
# concentrated where the artifact is, the noise costs JPEG about what the artifact does.
ENVELOPE_SIGMA = 1.0
# The real's Laplacian energy as a fraction of the fake's from the same crop. Isotropic noise
# compresses worse than a decoder's residual, so at 1.0 reals had the larger JPEGs; 0.9 balances
# sharpness against JPEG size (shortcut guard 0.572 against 0.580 at 1.0, 0.613 at 0.7).
STAND_IN_SCALE = 0.9


def _block(layer: nn.Module, channels: int) -> list[nn.Module]:
    return [layer, nn.BatchNorm2d(channels), nn.ReLU(inplace=True)]


def _decoder(kind: str, width: int) -> nn.Sequential:
    """Three x2 up-sampling stages from 1/8 resolution, DCGAN-style, Tanh output."""
    chans = [4 * width, 2 * width, width]
    layers: list[nn.Module] = []
    for c_in, c_out in zip(chans, chans[1:]):
        if kind == "transposed":
            layers += _block(nn.ConvTranspose2d(c_in, c_out, 4, 2, 1), c_out)
        elif kind == "upsample":
            layers += [nn.Upsample(scale_factor=2.0)]
            layers += _block(nn.Conv2d(c_in, c_out, 3, 1, 1), c_out)
        elif kind == "bilinear":
            layers += [nn.Upsample(scale_factor=2.0, mode="bilinear", align_corners=False)]
            layers += _block(nn.Conv2d(c_in, c_out, 5, 1, 2), c_out)
        elif kind == "transposed3":
            # Kernel 3, stride 2: uneven overlap, the strongest checkerboard.
            layers += _block(nn.ConvTranspose2d(c_in, c_out, 3, 2, 1, output_padding=1), c_out)
        else:
            raise ValueError(f"unknown decoder kind {kind!r}")
    if kind in ("transposed", "transposed3"):
        layers += [nn.ConvTranspose2d(width, 3, 4, 2, 1)]
    else:
        layers += [nn.Upsample(scale_factor=2.0), nn.Conv2d(width, 3, 3, 1, 1)]
    return nn.Sequential(*layers, nn.Tanh())


def autoencoder(kind: str, width: int = WIDTH) -> nn.Sequential:
    """Encoder (3 stride-2 convolutions to 1/8 resolution) plus one generator decoder."""
    encoder = nn.Sequential(
        nn.Conv2d(3, width, 4, 2, 1),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(width, 2 * width, 4, 2, 1),
        nn.BatchNorm2d(2 * width),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(2 * width, 4 * width, 4, 2, 1),
        nn.BatchNorm2d(4 * width),
        nn.LeakyReLU(0.2, inplace=True),
    )
    return nn.Sequential(encoder, _decoder(kind, width))


def _to_tensor(images: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) in [0, 1] -> (N, 3, H, W) in [-1, 1]."""
    return torch.from_numpy(images).float().permute(0, 3, 1, 2) * 2.0 - 1.0


def seeded_autoencoder(kind: str, seed: int) -> nn.Sequential:
    """A fresh autoencoder whose initial weights depend on ``seed`` only."""
    torch.manual_seed(seed)
    return autoencoder(kind)


def train_autoencoder(
    model: nn.Sequential, crops: np.ndarray, seed: int, steps: int = TRAIN_STEPS
) -> nn.Sequential:
    """Fit an autoencoder (L1, Adam 1e-3) to ``crops`` (N, H, W, 3) in [0, 1]; eval mode.

    Draws its batches from its own generator, not torch's global one, so several can train at
    once in threads (each single-threaded, hence bit-identical to training them in turn).
    """
    generator = torch.Generator().manual_seed(seed)
    data = _to_tensor(crops)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    for _ in range(steps):
        batch = data[torch.randint(len(data), (TRAIN_BATCH,), generator=generator)]
        loss = (model(batch) - batch).abs().mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return model.eval()


@torch.no_grad()
def resynthesise(model: nn.Module, images: np.ndarray, batch: int = 64) -> np.ndarray:
    """The model's output for (N, H, W, 3) images in [0, 1], same shape and scale."""
    outs = [model(_to_tensor(images[i : i + batch])) for i in range(0, len(images), batch)]
    return ((torch.cat(outs).permute(0, 2, 3, 1).numpy() + 1.0) / 2.0).astype(np.float64)


def _patches(images: np.ndarray, size: int) -> np.ndarray:
    """Every size x size neighbourhood of every pixel, (N, H', W', C, size * size)."""
    windows = np.lib.stride_tricks.sliding_window_view(images, (size, size), axis=(1, 2))
    return windows.reshape(*windows.shape[:4], size * size)


def fit_blur(inputs: np.ndarray, outputs: np.ndarray, size: int = FILTER_SIZE) -> np.ndarray:
    """The size x size filter h minimising ||outputs - h * inputs||^2 over all pixels/channels."""
    half = size // 2
    design = _patches(inputs, size).reshape(-1, size * size)
    target = outputs[:, half:-half, half:-half].reshape(-1)
    # Normal equations: an 81 x 81 solve instead of a QR of every pixel's neighbourhood.
    return np.linalg.solve(design.T @ design, design.T @ target).reshape(size, size)


def apply_filter(images: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Correlate every channel of (N, H, W, C) with a 2-D kernel, edges replicated."""
    # float32: torch's float64 convolution has no fast CPU kernel (10x slower here).
    half_h, half_w = kernel.shape[0] // 2, kernel.shape[1] // 2
    batch = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2), np.float32))
    flat = batch.reshape(-1, 1, *batch.shape[2:])
    padded = torch.nn.functional.pad(flat, (half_w, half_w, half_h, half_h), mode="replicate")
    out = torch.nn.functional.conv2d(
        padded, torch.from_numpy(kernel.astype(np.float32))[None, None]
    )
    return out.reshape(batch.shape).numpy().transpose(0, 2, 3, 1).astype(np.float64)


def gaussian_blur(images: np.ndarray, sigma: float) -> np.ndarray:
    radius = int(np.ceil(3 * sigma))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    # Separable: a row pass then a column pass.
    return apply_filter(apply_filter(images, taps[None, :]), taps[:, None])


def gaussian_highpass(images: np.ndarray, sigma: float = HIGHPASS_SIGMA) -> np.ndarray:
    return images - gaussian_blur(images, sigma)


def radial_spectrum(residuals: np.ndarray) -> np.ndarray:
    """Radially averaged power spectrum of (N, H, W, C) square images, as an (H, W) mask."""
    size = residuals.shape[1]
    power = (np.abs(np.fft.fft2(residuals, axes=(1, 2))) ** 2).mean(axis=(0, 3))
    freq = np.fft.fftfreq(size)
    radius = np.rint(np.hypot(*np.meshgrid(freq, freq, indexing="ij")) * size).astype(int)
    ring_mean = np.bincount(radius.ravel(), power.ravel()) / np.bincount(radius.ravel())
    return ring_mean[radius]


def stand_in_noise(white: np.ndarray, spectrum: np.ndarray) -> np.ndarray:
    """White (H, W, C) noise shaped to ``spectrum`` (isotropic), unit variance."""
    shaped = np.fft.ifft2(
        np.fft.fft2(white, axes=(0, 1)) * np.sqrt(spectrum)[..., None], axes=(0, 1)
    )
    shaped = shaped.real
    return shaped / shaped.std()


Fingerprint = Callable[[np.ndarray], np.ndarray]


@contextlib.contextmanager
def _deterministic() -> Iterator[None]:
    """One torch thread and a private RNG: a reduction split over threads would change the
    trained weights' last bits, and seeding must not disturb the caller's torch RNG."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng():
            yield
    finally:
        torch.set_num_threads(previous)


def _workers(tasks: int) -> int:
    return max(1, min(tasks, os.cpu_count() or 1))


def train_fingerprints(
    photos: Sequence[np.ndarray],
    seed: int,
    image_size: int,
    kinds: Sequence[str] | None = None,
    steps: int | None = None,
) -> tuple[list[Fingerprint], list[np.ndarray]]:
    """Train one decoder per kind on crops of ``photos`` (the train split's); return, per
    decoder, highpass(AE(x) - h * x) as a function of a batch of (N, H, W, 3) images, and the
    radial spectrum of that residual at ``image_size``."""
    # Module constants read at call time, so a test can shrink the build.
    kinds = DEMO_DECODERS if kinds is None else kinds
    steps = TRAIN_STEPS if steps is None else steps
    train_crops = training_crops(photos, seed, TRAIN_CROP, TRAIN_CROPS, TRAIN_CROP)
    fit_inputs = training_crops(photos, seed + 1, image_size, 8, image_size)
    fingerprints: list[Fingerprint] = []
    spectra: list[np.ndarray] = []
    with _deterministic():
        seeds = [seed * 1000 + number for number in range(len(kinds))]
        # Initialised in turn (torch's global RNG), then trained side by side, one thread each:
        # on 2 cores the three decoders train in 4.5 s instead of 8.5 s, with the same bytes.
        models = [seeded_autoencoder(kind, s) for kind, s in zip(kinds, seeds)]
        with ThreadPoolExecutor(max_workers=_workers(len(models))) as pool:
            models = list(
                pool.map(lambda m, s: train_autoencoder(m, train_crops, s, steps), models, seeds)
            )
        for model in models:
            blur = fit_blur(fit_inputs, resynthesise(model, fit_inputs))

            def fingerprint(images: np.ndarray, model=model, blur=blur) -> np.ndarray:
                # Called inside _deterministic() (here and in render_split): one torch thread.
                output = resynthesise(model, images)
                return gaussian_highpass(output - apply_filter(images, blur))

            fingerprints.append(fingerprint)
            spectra.append(radial_spectrum(fingerprint(fit_inputs)))
    return fingerprints, spectra


def training_crops(
    photos: Sequence[np.ndarray], seed: int, image_size: int, count: int, out_size: int
) -> np.ndarray:
    """``count`` random crops of ``photos``, cut as the demo cuts its images, at ``out_size``."""
    rng = np.random.default_rng([seed, 7919])
    crops = [
        cut_crop(photos[int(rng.integers(len(photos)))], rng, image_size, out_size)[0]
        for _ in range(count)
    ]
    return np.stack(crops)


def _channel_mix(residual: np.ndarray) -> np.ndarray:
    """A 3x3 factor of the residual's channel covariance: the stand-in gets the same colour."""
    cov = np.cov(residual.reshape(-1, 3), rowvar=False) + 1e-12 * np.eye(3)
    return np.linalg.cholesky(cov)


def _laplacian(image: np.ndarray) -> np.ndarray:
    """4-neighbour Laplacian of the channel mean of an (H, W, C) image (interior pixels)."""
    gray = image.mean(axis=2)
    return (
        4 * gray[1:-1, 1:-1] - gray[:-2, 1:-1] - gray[2:, 1:-1] - gray[1:-1, :-2] - gray[1:-1, 2:]
    )


def _energy_envelope(artifact: np.ndarray) -> np.ndarray:
    """Where the fake's artifact has its energy: local RMS (Gaussian window), mean square 1."""
    local = gaussian_blur(np.mean(artifact**2, axis=2, keepdims=True)[None], ENVELOPE_SIGMA)[0]
    envelope = np.sqrt(np.maximum(local[..., 0], 0.0))
    return envelope / (np.sqrt(np.mean(envelope**2)) + 1e-12)


def _sharpness_matched(crop: np.ndarray, artifact: np.ndarray, noise: np.ndarray) -> float:
    """The amplitude a of the stand-in noise that gives crop + a * noise the Laplacian energy of
    the fake made from the same crop, crop + artifact.

    The Laplacian is linear, so var(L(crop + a n)) = var(Lc) + 2a cov(Lc, Ln) + a^2 var(Ln):
    solved for a >= 0. A fixed ratio of the artifact's energy instead left the two classes'
    sharpness apart at this gain (global statistics then told them apart at AUROC 0.61).
    """
    lc, ln = _laplacian(crop), _laplacian(noise)
    target = _laplacian(crop + artifact).var()
    a2, b, c = ln.var(), np.mean((lc - lc.mean()) * (ln - ln.mean())), lc.var() - target
    disc = b * b - a2 * c
    if a2 <= 0 or disc < 0:
        return 0.0
    return max(0.0, float((-b + np.sqrt(disc)) / a2))


def render_split(
    items: Sequence[tuple[np.ndarray, bool, np.random.Generator]],
    fingerprints: Sequence[Fingerprint],
    spectra: Sequence[np.ndarray],
    image_size: int,
    artifact_strength: float,
    jpeg_quality: int,
) -> list[tuple[bytes, dict]]:
    """(JPEG bytes, record) per (photo, is_fake, rng); every draw is made for both classes."""
    draws = []
    for photo, _, rng in items:
        crop, record = cut_crop(photo, rng, image_size, image_size)
        decoder = int(rng.integers(len(fingerprints)))
        gain = GAIN_SCALE * artifact_strength * rng.uniform(0.5, 1.5)
        jitter = draw_jitter(rng, jpeg_quality)
        white = rng.standard_normal((image_size, image_size, 3))
        sensor = rng.standard_normal((image_size, image_size, 3))
        draws.append((crop, record, decoder, gain, jitter, white, sensor))
    crops = np.stack([draw[0] for draw in draws])
    decoders = np.array([draw[2] for draw in draws])
    residuals = np.zeros_like(crops)
    groups = [(f, np.flatnonzero(decoders == n)) for n, f in enumerate(fingerprints)]
    groups = [(f, rows) for f, rows in groups if rows.size]
    # One decoder per thread, each on one torch thread: the same bytes as in turn, in about half
    # the time on 2 cores (the residuals are most of the render's cost).
    with _deterministic(), ThreadPoolExecutor(max_workers=_workers(len(groups))) as pool:
        outputs = pool.map(lambda group: group[0](crops[group[1]]), groups)
        for (_, rows), output in zip(groups, outputs):
            residuals[rows] = output
    out = []
    for (crop, record, decoder, gain, jitter, white, sensor), residual, (_, fake, _) in zip(
        draws, residuals, items
    ):
        artifact = gain * residual
        if fake:
            image = crop + artifact
        else:
            noise = stand_in_noise(white, spectra[decoder]) @ _channel_mix(artifact).T
            noise = noise * _energy_envelope(artifact)[..., None]
            image = crop + STAND_IN_SCALE * _sharpness_matched(crop, artifact, noise) * noise
        record = {**record, "decoder": decoder, "strength": round(float(gain), 6)}
        out.append(
            (finish_image(image, jitter, sensor), {**record, "jpeg_quality": jitter["quality"]})
        )
    return out
