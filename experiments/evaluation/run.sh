#!/usr/bin/env bash
# The commands behind experiments/evaluation/README.md (2-core CPU, no GPU). Run from the repo root.
set -euo pipefail
export WANDB_MODE=offline
DEMOS=${DEMOS:-/tmp/e8x/demos}
RUN=${RUN:-/tmp/e8x/run_densenet_gray}

# Two demo datasets: the default one (seed 0, artifact strength 0.2) and another seed with weaker
# artifacts (seed 1, strength 0.1). Both 1600/400/400 images, 64 px, upconv generator.
python - <<PY
from deepinsight.data.demo import ensure_demo_dataset
print(ensure_demo_dataset(cache_dir="$DEMOS", seed=0, artifact_strength=0.2))
print(ensure_demo_dataset(cache_dir="$DEMOS", seed=1, artifact_strength=0.1))
PY
A=$DEMOS/demo-v2-0a22fa6919f8   # seed 0, strength 0.2
B=$DEMOS/demo-v2-c2a0bd1020e1   # seed 1, strength 0.1

# A small DenseNet121 on grayscale, trained on A (3 epochs instead of the demo's 7: shared CPU).
python -m deepinsight.train model=densenet121 data=grayscale data.root=$A data.image_size=64 \
    data.batch_size=64 data.num_workers=0 trainer=cpu trainer.max_epochs=3 logger=none \
    analysis.enabled=false hydra.run.dir=$RUN

# The final model (best.ckpt = epoch 3) on A's own test split (equal to $RUN/results.json), B's
# test split (Kaggle layout), and B's validation images as a bare real/fake folder.
python -m deepinsight.evaluate ckpt=$RUN/checkpoints/best.ckpt \
    data.root=[$A,$B,$B/real_vs_fake/real-vs-fake/valid] \
    name=[demo_s0_a0.2_test,demo_s1_a0.1_test,demo_s1_a0.1_valid_bare] \
    output=/tmp/e8x/eval_final num_workers=0
cp -r /tmp/e8x/eval_final/* experiments/evaluation/demo_cpu/
mkdir -p experiments/evaluation/demo_cpu/training_run
(cd $RUN && cp results.json classification_report.txt reliability.png roc_curve.png pr_curve.png \
    confusion_matrix.png config.yaml "$OLDPWD/experiments/evaluation/demo_cpu/training_run/")

# Earlier, while epoch 3 ran: the epoch-2 checkpoint (then best.ckpt), copied and evaluated the
# same way into demo_cpu_epoch2/ (output=/tmp/e8x/eval_epoch2).
# cp $RUN/checkpoints/best.ckpt /tmp/e8x/epoch2.ckpt   # right after epoch 2
# python -m deepinsight.evaluate ckpt=/tmp/e8x/epoch2.ckpt data.root=[...same...] name=[...same...] \
#     output=/tmp/e8x/eval_epoch2 num_workers=0
