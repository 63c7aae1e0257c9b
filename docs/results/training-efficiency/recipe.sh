#!/usr/bin/env bash
# Writes the run configuration of one recipe of the training-efficiency study to stdout.
#
#   recipe.sh NAME STEPS TARGETS LR BATCH EMSIZE NHID NLAYERS BUCKETS SPLIT [PRIOR SEQ_LEN FEATURES]
#
# Every recipe trains on the paper's 1-D GP prior by default (gp-1d, 51 points, n in 0..=50) with
# AdamW, no weight decay, gradient clipping at 1, linear warm-up over 5 % of the steps (at least 10)
# and a cosine decay to 0 at STEPS, seed 0. The study gives each recipe the number of optimizer steps
# it runs in its wall-clock budget on the idle machine (see report.md), so the models do not depend
# on what else ran on the machine while they trained. PRECISION=bf16 adds run.precision = "bf16";
# THREADS sets run.threads (default 2).
set -euo pipefail
name=$1 steps=$2 targets=$3 lr=$4 batch=$5 emsize=$6 nhid=$7 nlayers=$8 buckets=$9 split=${10}
prior=${11:-gp-1d} seq_len=${12:-51} features=${13:-1}
warmup=$(( steps / 20 > 10 ? steps / 20 : 10 ))
cat <<TOML
# Training-efficiency study, recipe "$name" (docs/results/training-efficiency/report.md).
[prior]
name = "$prior"
num_features = $features
seq_len = $seq_len
split = "$split"
targets = "$targets"

[model]
emsize = $emsize
nlayers = $nlayers
nhead = 4
nhid = $nhid
buckets = $buckets
query_self_attention = false

[borders]
samples = 1000000
full_support = true

[optimizer]
lr = $lr
weight_decay = 0.0
warmup_steps = $warmup
schedule = "cosine"
grad_clip = 1.0

[budget]
steps = $steps
batch_size = $batch
checkpoint_every = 500
validation_every = 100000000
validation_datasets = 512

[run]
seed = 0
threads = ${THREADS:-2}
TOML
if [[ -n "${PRECISION:-}" ]]; then echo "precision = \"$PRECISION\""; fi
