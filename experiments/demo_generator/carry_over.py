"""Carry-over check: does a detector trained on the demo recognise a generator it never saw?

Builds a held-out generator that shares nothing with the demo's decoders: another architecture
(a 4-stage autoencoder down to 1/16 resolution whose decoder mixes two transposed convolutions
with two bilinear-up + 5x5 convolution stages, LeakyReLU), another seed (2026), and another
photo set (the demo's *valid* pool; the demo's decoders learn from the train pool, and the
scored crops are cut from the *test* pool, which neither the held-out generator nor the
detector saw). It writes DIR/{real,fake}/*.jpg in two flavours:

- ``raw``: fakes are the generator's whole re-synthesis (as a GAN's output is);
- ``residual``: fakes are photo + g * highpass(AE(x) - h * x), the demo's recipe applied
  to this other generator (reals are the plain crops, with no stand-in noise).

Both classes get the demo's jitter and JPEG. Then it scores both with ``deepinsight.predict``
and prints the AUROC (label 1 = fake).

    python experiments/demo_generator/carry_over.py CKPT OUT_DIR [--n 400]
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from torch import nn

from deepinsight.data import demo, demo_decoders
from deepinsight.data.demo_images import draw_jitter, finish_image

SEED = 2026


def other_autoencoder(width: int = 32) -> nn.Sequential:
    def down(c_in: int, c_out: int) -> list[nn.Module]:
        return [nn.Conv2d(c_in, c_out, 4, 2, 1), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2)]

    def up_t(c_in: int, c_out: int) -> list[nn.Module]:
        return [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2)]

    def up_b(c_in: int, c_out: int) -> list[nn.Module]:
        return [
            nn.Upsample(scale_factor=2.0, mode="bilinear", align_corners=False),
            nn.Conv2d(c_in, c_out, 5, 1, 2),
            nn.BatchNorm2d(c_out),
            nn.LeakyReLU(0.2),
        ]

    w = width
    return nn.Sequential(
        *down(3, w), *down(w, 2 * w), *down(2 * w, 4 * w), *down(4 * w, 4 * w),
        *up_t(4 * w, 4 * w), *up_b(4 * w, 2 * w), *up_t(2 * w, w),
        nn.Upsample(scale_factor=2.0, mode="bilinear", align_corners=False),
        nn.Conv2d(w, 3, 5, 1, 2), nn.Tanh(),
    )  # fmt: skip


def train(crops: np.ndarray, steps: int) -> nn.Module:
    torch.manual_seed(SEED)
    model = other_autoencoder()
    data = demo_decoders._to_tensor(crops)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(steps):
        batch = data[torch.randint(len(data), (16,))]
        loss = (model(batch) - batch).abs().mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return model.eval()


def write_sets(out: Path, n: int, steps: int, size: int = 64) -> None:
    load = demo.load_source_photo
    valid = [load(name) for name in demo.SOURCE_PHOTOS["valid"]]
    test = [load(name) for name in demo.SOURCE_PHOTOS["test"]]
    model = train(demo_decoders.training_crops(valid, SEED, 32, 512, 32), steps)
    crops = demo_decoders.training_crops(test, SEED + 1, size, n, size)
    raw = demo_decoders.resynthesise(model, crops)
    blur = demo_decoders.fit_blur(crops[:8], raw[:8])
    residual = demo_decoders.gaussian_highpass(raw - demo_decoders.apply_filter(crops, blur))
    rng = np.random.default_rng(SEED)
    for index, crop in enumerate(crops):
        jitter = draw_jitter(rng, demo.DEMO_DEFAULTS["jpeg_quality"])
        sensor = rng.standard_normal(crop.shape)
        # The demo's own gain law (g ~ U(4, 12) at the default strength since format v3).
        strength = demo.DEMO_DEFAULTS["artifact_strength"]
        gain = demo_decoders.GAIN_SCALE * strength * rng.uniform(0.5, 1.5)
        # Half the crops are reals, half fakes: no photo crop appears in both classes.
        fake = index % 2 == 1
        images = {"raw": raw[index] if fake else crop}
        images["residual"] = crop + gain * residual[index] if fake else crop
        for flavour, image in images.items():
            folder = out / flavour / ("fake" if fake else "real")
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{index:05d}.jpg").write_bytes(finish_image(image, jitter, sensor))


def auroc(ckpt: str, root: Path) -> float:
    preds = root / "predictions.csv"
    command = [sys.executable, "-m", "deepinsight.predict", f"ckpt={ckpt}"]
    command += [f"inputs=[{root / 'real'},{root / 'fake'}]", f"output={preds}"]
    subprocess.run(command, check=True, capture_output=True)
    with open(preds, newline="") as handle:
        rows = list(csv.DictReader(handle))
    labels = [Path(row["path"]).parent.name == "fake" for row in rows]
    return roc_auc_score(labels, [float(row["score"]) for row in rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ckpt")
    parser.add_argument("out", type=Path)
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--steps", type=int, default=400)
    args = parser.parse_args()
    if not (args.out / "raw").is_dir():
        write_sets(args.out, args.n, args.steps)
    for flavour in ("raw", "residual"):
        print(f"carry-over AUROC ({flavour}): {auroc(args.ckpt, args.out / flavour):.4f}")


if __name__ == "__main__":
    main()
