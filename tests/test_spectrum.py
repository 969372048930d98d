"""The frequency view: spectrum.png, zero difference for identical classes, the sample cap."""

from __future__ import annotations

import numpy as np
import torch

from deepinsight.analysis.spectrum import SPECTRUM_FILENAME, mean_spectra, write_spectrum


def batches(images: torch.Tensor, labels: torch.Tensor, size: int = 4):
    for start in range(0, len(images), size):
        yield images[start : start + size], labels[start : start + size], None


def test_identical_classes_have_zero_difference_and_a_figure(tmp_path):
    images = torch.rand(6, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    both = torch.cat([images, images])
    labels = torch.tensor([0] * 6 + [1] * 6)
    means = mean_spectra((b[0], b[1]) for b in batches(both, labels))
    np.testing.assert_allclose(means[1] - means[0], 0.0, atol=1e-12)
    path = write_spectrum(batches(both, labels), tmp_path, max_samples=None, title="t")
    assert path == tmp_path / SPECTRUM_FILENAME and path.stat().st_size > 0


def test_checkerboard_fakes_peak_at_the_nyquist_corner(tmp_path):
    generator = torch.Generator().manual_seed(1)
    real = torch.rand(8, 1, 16, 16, generator=generator) * 0.2 + 0.4
    checker = (torch.arange(16)[:, None] + torch.arange(16)[None, :]) % 2
    fake = real + 0.2 * checker
    labels = torch.tensor([0] * 8 + [1] * 8)
    means = mean_spectra((b[0], b[1]) for b in batches(torch.cat([real, fake]), labels))
    difference = means[1] - means[0]
    # fftshift puts the (pi, pi) frequency of a period-2 checkerboard at index (0, 0).
    assert np.unravel_index(difference.argmax(), difference.shape) == (0, 0)


def test_at_most_max_samples_and_both_classes_needed(tmp_path):
    images = torch.rand(10, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    labels = torch.tensor([0] * 5 + [1] * 5)
    # The first 5 images are all real: the cap leaves one class, so no figure.
    assert write_spectrum(batches(images, labels), tmp_path, max_samples=5) is None
    assert mean_spectra(((b[0], b[1]) for b in batches(images, labels)), max_samples=6).keys() == {
        0,
        1,
    }
