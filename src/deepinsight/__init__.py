"""DeepInsight: a Lightning + Hydra framework for detecting GAN-generated face images.

Contracts that hold everywhere (see docs/contracts.md):
label 1 = fake, score = P(fake), a model maps (N, in_chans, H, W) to (N,) logits.
"""

__version__ = "0.1.0"

LABEL_REAL = 0
LABEL_FAKE = 1
CLASS_NAMES = ("real", "fake")
