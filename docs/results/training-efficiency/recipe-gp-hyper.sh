#!/usr/bin/env bash
# Writes the run configuration of one gp-hyper-5d recipe of the training-efficiency study to stdout:
# the shipped configs/gp-hyper.toml (prior, normalisation, borders, tails, batch 32) with only the
# study's levers changed.
#
#   recipe-gp-hyper.sh NAME STEPS TARGETS LR EMSIZE NHID [PRECISION]
#
# Warm-up is 5 % of STEPS, the cosine decays to 0 at STEPS, seed 0; THREADS sets run.threads
# (default 1). The engine's results do not depend on the thread count.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
name=$1 steps=$2 targets=$3 lr=$4 emsize=$5 nhid=$6 precision=${7:-f32}
warmup=$(( steps / 20 > 10 ? steps / 20 : 10 ))
echo "# Training-efficiency study, gp-hyper-5d recipe \"$name\" (docs/results/training-efficiency/report.md)."
sed -E \
  -e "s/^targets = .*/targets = \"$targets\"/" \
  -e "s/^emsize = .*/emsize = $emsize/" \
  -e "s/^nhid = .*/nhid = $nhid/" \
  -e "s/^lr = .*/lr = $lr/" \
  -e "s/^warmup_steps = .*/warmup_steps = $warmup/" \
  -e "s/^steps = .*/steps = $steps/" \
  -e "s/^checkpoint_every = .*/checkpoint_every = 500/" \
  -e "s/^validation_every = .*/validation_every = 100000000/" \
  -e "s/^threads = .*/threads = ${THREADS:-1}/" \
  "$root/configs/gp-hyper.toml" | grep -v '^#'
if [[ "$precision" != f32 ]]; then echo "precision = \"$precision\""; fi
