#!/usr/bin/env bash
# Trains and evaluates recipes of the training-efficiency study, one after another on one thread
# each (the engine's results do not depend on the thread count, so the models are those of a
# 2-thread run; only the wall time differs). Run two of these at once to use both cores.
#
#   run-study.sh OUT_DIR "NAME STEPS TARGETS LR BATCH EMSIZE NHID NLAYERS BUCKETS SPLIT" ...
#
# For each recipe: OUT_DIR/NAME.toml (the configuration), NAME.pfn (the model), NAME.train.log and
# NAME.eval.md (`pfn eval`: 1000 held-out datasets, query = point 50, n in {0,1,2,3,5,10,...,50}).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
pfn=${PFN:-$root/target/release/pfn}
out=$1
shift
mkdir -p "$out"
for recipe in "$@"; do
  read -r name rest <<<"$recipe"
  if [[ -f "$out/$name.eval.md" ]]; then continue; fi
  THREADS=${THREADS:-1} "$here/recipe.sh" $recipe > "$out/$name.toml"
  resume=()
  if [[ -f "$out/$name.pfn.ckpt" ]]; then resume=(--resume); fi
  "$pfn" train --config "$out/$name.toml" --out "$out/$name.pfn" "${resume[@]}" > "$out/$name.train.log" 2>&1
  "$pfn" eval --model "$out/$name.pfn" --threads 1 --out "$out/$name.eval.md" > "$out/$name.eval.log" 2>&1
done
