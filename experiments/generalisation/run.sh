#!/usr/bin/env bash
# Leave-one-generator-out on the demo (issue 19): which input representation carries to a
# generator a model never saw. Each sweep is `sweep=logo` (4 folds: each decoder design held out
# once) at the demo's default budget; the table at the end is rebuilt over all of them.
#   bash experiments/generalisation/run.sh OUT_DIR
set -euo pipefail
out=${1:?usage: run.sh OUT_DIR}
common=(hydra.job.chdir=false logger=csv analysis.enabled=false)

# The custom CNN: pixels, NPR and high-pass, without and with Blur+JPEG, two seeds.
python -m deepinsight.train -m sweep=logo model=custom_cnn data.input=pixels,npr,highpass \
    seed=42,43 "${common[@]}" hydra.sweep.dir="$out/custom_cnn"
python -m deepinsight.train -m sweep=logo model=custom_cnn data.input=pixels,npr,highpass \
    augment=blur_jpeg seed=42,43 "${common[@]}" hydra.sweep.dir="$out/custom_cnn_blurjpeg"
# The study's DenseNet121 (grayscale input, the study's best variant, as the Quickstart), one seed.
python -m deepinsight.train -m sweep=logo model=densenet121 data=grayscale \
    data.input=pixels,npr,highpass seed=42 "${common[@]}" hydra.sweep.dir="$out/densenet121"

# In distribution: trained and tested on all four generators (the table's last section).
all="[transposed,upsample,bilinear,transposed3]"
python -m deepinsight.train -m model=custom_cnn data.demo.generator=mix \
    data.demo.train_generators="$all" data.demo.test_generators="$all" \
    data.input=pixels,npr,highpass seed=42 "${common[@]}" hydra.sweep.dir="$out/in_distribution"

python -m deepinsight.evaluation.logo "$out"
