#!/usr/bin/env bash
# Leave-one-generator-out on the demo (issue 19): which input representation carries to a
# generator a model never saw. Each sweep is `sweep=logo` (5 folds: each of the mix demo's four
# learned decoders and its hand-made up-convolution held out once) at the demo's default budget;
# the table at the end is rebuilt over all of them. About 100 min on 2 CPU cores.
#   bash experiments/generalisation/run.sh OUT_DIR
set -euo pipefail
out=${1:?usage: run.sh OUT_DIR}
common=(hydra.job.chdir=false logger=csv analysis.enabled=false)
inputs=data.input=pixels,npr,highpass

# The study's DenseNet121 (grayscale input, the study's best variant, as the Quickstart): the
# three inputs, two seeds; with Blur+JPEG, one seed, and a second one for NPR (the best).
python -m deepinsight.train -m sweep=logo model=densenet121 data=grayscale $inputs seed=42,43 \
    "${common[@]}" hydra.sweep.dir="$out/densenet121"
python -m deepinsight.train -m sweep=logo model=densenet121 data=grayscale $inputs seed=42 \
    augment=blur_jpeg "${common[@]}" hydra.sweep.dir="$out/densenet121_blurjpeg"
python -m deepinsight.train -m sweep=logo model=densenet121 data=grayscale data.input=npr \
    seed=43 augment=blur_jpeg "${common[@]}" hydra.sweep.dir="$out/densenet121_blurjpeg_seed43"

# In distribution: trained and tested on all five generators (the table's last section).
all="[transposed,upsample,bilinear,transposed3,upconv]"
in_distribution=(data.demo.generator=mix data.demo.n_test=2000 data.demo.train_generators="$all"
    data.demo.test_generators="$all" seed=42 "${common[@]}")
python -m deepinsight.train -m model=densenet121 data=grayscale data.input=pixels,npr \
    "${in_distribution[@]}" hydra.sweep.dir="$out/densenet121_in_distribution"
python -m deepinsight.train -m model=densenet121 data=grayscale data.input=npr augment=blur_jpeg \
    "${in_distribution[@]}" hydra.sweep.dir="$out/densenet121_blurjpeg_in_distribution"

# The custom CNN (RGB): the three inputs without and with Blur+JPEG, two seeds.
python -m deepinsight.train -m sweep=logo model=custom_cnn $inputs seed=42,43 \
    "${common[@]}" hydra.sweep.dir="$out/custom_cnn"
python -m deepinsight.train -m sweep=logo model=custom_cnn $inputs seed=42,43 augment=blur_jpeg \
    "${common[@]}" hydra.sweep.dir="$out/custom_cnn_blurjpeg"
python -m deepinsight.train -m model=custom_cnn $inputs \
    "${in_distribution[@]}" hydra.sweep.dir="$out/custom_cnn_in_distribution"

# Added last: does colour help NPR? DenseNet121 on RGB NPR with Blur+JPEG, held out and in
# distribution, one seed.
python -m deepinsight.train -m sweep=logo model=densenet121 data=rgb data.input=npr \
    augment=blur_jpeg seed=42 "${common[@]}" hydra.sweep.dir="$out/densenet121_rgb_blurjpeg"
python -m deepinsight.train -m model=densenet121 data=rgb data.input=npr augment=blur_jpeg \
    "${in_distribution[@]}" hydra.sweep.dir="$out/densenet121_rgb_blurjpeg_in_distribution"

python -m deepinsight.evaluation.logo "$out"
