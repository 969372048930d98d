"""The frequency view: mean log-magnitude 2-D Fourier spectra of real and fake test images.

Up-sampling layers (transposed convolutions, nearest or bilinear up-sampling) leave periodic
peaks in an image's spectrum that photos do not have (Zhang et al., 2019; Durall et al., CVPR
2020). Averaging the log-magnitude spectrum over many images of each class makes them visible;
the difference fake - real shows what a detector could key on.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from deepinsight import LABEL_FAKE, LABEL_REAL

SPECTRUM_FILENAME = "spectrum.png"
_DPI = 120


def log_spectra(images: torch.Tensor) -> torch.Tensor:
    """``(N, C, H, W)`` images -> ``(N, H, W)`` centred log(1 + |FFT2|) of their channel mean."""
    gray = images.float().mean(dim=1)
    # Remove each image's mean so the DC term does not dwarf the rest of the colour scale.
    gray = gray - gray.mean(dim=(-2, -1), keepdim=True)
    magnitude = torch.fft.fftshift(torch.fft.fft2(gray).abs(), dim=(-2, -1))
    return torch.log1p(magnitude)


def mean_spectra(
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]], max_samples: int | None = None
) -> dict[int, np.ndarray]:
    """Mean log spectrum per label (0 real, 1 fake) over at most ``max_samples`` images."""
    sums: dict[int, torch.Tensor] = {}
    counts: dict[int, int] = {}
    seen = 0
    for images, labels in batches:
        if max_samples is not None:
            images, labels = images[: max_samples - seen], labels[: max_samples - seen]
        spectra = log_spectra(images)
        for label in (LABEL_REAL, LABEL_FAKE):
            chosen = spectra[torch.as_tensor(labels).long() == label]
            if len(chosen):
                sums[label] = sums.get(label, 0) + chosen.double().sum(dim=0)
                counts[label] = counts.get(label, 0) + len(chosen)
        seen += len(images)
        if max_samples is not None and seen >= max_samples:
            break
    return {label: (sums[label] / counts[label]).numpy() for label in sums}


def save_spectrum_figure(
    real: np.ndarray, fake: np.ndarray, path: Path, title: str = "Mean log spectrum (test)"
) -> Path:
    """Three panels: real, fake (shared colour scale) and fake - real (symmetric scale)."""
    fig = Figure(figsize=(12, 4), layout="constrained")
    axes = fig.subplots(1, 3)
    low, high = min(real.min(), fake.min()), max(real.max(), fake.max())
    for ax, spectrum, name in ((axes[0], real, "real"), (axes[1], fake, "fake")):
        image = ax.imshow(spectrum, cmap="magma", vmin=low, vmax=high)
        ax.set_title(f"{name}: mean log |F|")
        fig.colorbar(image, ax=ax, shrink=0.8)
    difference = fake - real
    # A percentile, not the maximum: one strong peak (the Nyquist corner of a checkerboard)
    # would otherwise wash out every weaker periodic peak; the strongest ones saturate.
    bound = float(np.percentile(np.abs(difference), 99.5)) or 1.0
    image = axes[2].imshow(difference, cmap="coolwarm", vmin=-bound, vmax=bound)
    axes[2].set_title("fake - real")
    fig.colorbar(image, ax=axes[2], shrink=0.8)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"{title}; centre = low frequencies")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=_DPI)
    return path


def write_spectrum(
    loader: Iterable, run_dir: Path, max_samples: int | None, title: str = ""
) -> Path | None:
    """spectrum.png for a loader of ``(image, label, ...)`` batches; None without both classes."""
    batches = ((batch[0], batch[1]) for batch in loader)
    means = mean_spectra(batches, max_samples)
    if set(means) != {LABEL_REAL, LABEL_FAKE}:
        return None
    name = f"Mean log spectrum, {title}" if title else "Mean log spectrum (test)"
    return save_spectrum_figure(
        means[LABEL_REAL], means[LABEL_FAKE], run_dir / SPECTRUM_FILENAME, name
    )
