#!/usr/bin/env bash
# The commands behind experiments/evaluation/README.md's "demo format v3" sections and
# sweep_demo_cpu/ (2-core CPU, no GPU). Run from the repo root.
set -euo pipefail
export WANDB_MODE=offline
CACHE=${CACHE:-/tmp/exp/sweepcache}   # DEEPINSIGHT_CACHE of the runs: the demos are built there
SWEEP=${SWEEP:-/tmp/sweep/robust}
OUT=${OUT:-/tmp/e8v3}

# 1. The seed's four variants plus DenseNet121 with Blur+JPEG, at the demo's default budget
#    (64 px, batch 64, 7 epochs), then the robustness grid of each run, then the report.
DEEPINSIGHT_CACHE=$CACHE python -m deepinsight.train -m sweep=robust logger=csv \
    hydra.sweep.dir=$SWEEP
python -m deepinsight.evaluation.robustness_runs $SWEEP device=cpu
python -m deepinsight.report $SWEEP output=experiments/evaluation/sweep_demo_cpu wandb=false

# 2. Dataset B: the demo with another seed and weaker artifacts (other photos' crops, other
#    decoders, a fainter trace). A is the default demo the sweep trained on.
A=$(python -c "from deepinsight.data.demo import ensure_demo_dataset as e; print(e('$CACHE'))")
B=$(python -c "from deepinsight.data.demo import ensure_demo_dataset as e; print(e('$CACHE', seed=1, artifact_strength=0.1))")

# 3. The sweep's DenseNet121 grayscale (the Quickstart's model) on A's own test split, B's test
#    split and B's validation images as a bare real/fake folder: cross-dataset table,
#    calibration before/after and the robustness grid per dataset, all logged to one W&B run.
python -m deepinsight.evaluate ckpt=$SWEEP/2/checkpoints/best.ckpt \
    data.root=[$A,$B,$B/real_vs_fake/real-vs-fake/valid] \
    name=[demo_s0_a0.2_test,demo_s1_a0.1_test,demo_s1_a0.1_valid_bare] \
    output=$OUT num_workers=0 device=cpu robustness=true wandb=true
mkdir -p experiments/evaluation/demo_v3
(cd $OUT && cp --parents cross_dataset.csv cross_dataset.md */results.json */robustness.csv \
    */reliability.png */robustness_jpeg_blur_heatmap.png "$OLDPWD/experiments/evaluation/demo_v3/")
