"""The per-run analysis after testing: ROC, PR and confusion figures, feature PCA, SVM probe and
the mean Fourier spectra of real and fake test images.

It only computes and draws; the caller decides where the returned numbers go (results.json).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deepinsight.analysis.embeddings import EMBEDDINGS_PCA_FILENAME, analyse_test_embeddings
from deepinsight.analysis.plots import write_test_plots
from deepinsight.analysis.spectrum import write_spectrum

log = logging.getLogger(__name__)


@dataclass
class RunAnalysis:
    """What the analysis produced: figure files (for the tracker) and the probe's numbers."""

    figures: list[Path] = field(default_factory=list)
    embedding_probe: dict[str, Any] | None = None


def analyse_run(
    run_dir: Path,
    labels: np.ndarray,
    scores: np.ndarray,
    confusion_matrix: Any,
    title: str,
    settings: Mapping[str, Any],
    model: Any,
    datamodule: Any,
    seed: int,
) -> RunAnalysis:
    """Draw the test figures and, if ``settings["enabled"]``, embed train/test samples and draw
    the test images' mean spectra (spectrum.png).

    ``settings`` is the config's ``analysis`` node (``enabled``, ``max_samples``).
    """
    if len(set(np.asarray(labels).tolist())) < 2:
        log.warning("the test predictions hold one class only: no curves or feature analysis")
        return RunAnalysis()
    figures = write_test_plots(run_dir, labels, scores, confusion_matrix, title=title)
    if not settings.get("enabled", True):
        return RunAnalysis(figures)
    max_samples = int(settings.get("max_samples", 2000))
    # The mixed precision the run trained in (Lightning's own autocast context), for the feature
    # pass: half its fp32 time on the demo Quickstart's CPU. Test scores stay fp32; the probe and
    # the PCA only need features.
    # The test features come from the test pass itself (fp32, as the scores) when it kept them.
    outputs = getattr(model, "test_outputs", None) or {}
    if outputs.get("features") is not None:
        test_features = (outputs["features"].numpy(), outputs["label"].numpy())
    else:
        test_features = datamodule.eval_dataloader("test", max_samples, seed=seed)
    with model.trainer.precision_plugin.forward_context():
        probe = analyse_test_embeddings(
            model.net,
            datamodule.eval_dataloader("train", max_samples, seed=seed),
            test_features,
            run_dir,
            max_samples=max_samples,
            device=model.device,
            title=title,
        )
    figures = [*figures, Path(run_dir) / EMBEDDINGS_PCA_FILENAME]
    spectrum = write_spectrum(
        datamodule.eval_dataloader("test", max_samples, seed=seed),
        Path(run_dir),
        max_samples,
        title,
    )
    if spectrum is not None:
        figures.append(spectrum)
    return RunAnalysis(figures, probe)
