#!/usr/bin/env bash
# Trains and evaluates recipes of the training-efficiency study, one after another on one thread
# each (the engine's results do not depend on the thread count, so the models are those of a
# 2-thread run; only the wall time differs). Run two of these at once to use both cores.
#
#   run-study.sh OUT_DIR "NAME STEPS TARGETS LR BATCH EMSIZE NHID NLAYERS BUCKETS SPLIT" ...
#   RECIPE=recipe-gp-hyper.sh run-study.sh OUT_DIR "NAME STEPS TARGETS LR EMSIZE NHID [PRECISION]" ...
#
# For each recipe: OUT_DIR/NAME.toml (the configuration, written by $RECIPE, default recipe.sh),
# NAME.pfn (the model), NAME.train.log and, for the gp-1d recipes, NAME.eval.md (`pfn eval`: 1000
# held-out datasets, query = point 50, n in {0,1,2,3,5,10,...,50}). The gp-hyper-5d models are
# scored together afterwards by `pfn reproduce gp-hyper --model ...`. A killed run continues from
# its checkpoint when started again.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
pfn=${PFN:-$root/target/release/pfn}
recipe=${RECIPE:-recipe.sh}
out=$1
shift
mkdir -p "$out"
for line in "$@"; do
  read -r name _ <<<"$line"
  if [[ -f "$out/$name.eval.md" || ( "$recipe" != recipe.sh && -f "$out/$name.pfn" ) ]]; then continue; fi
  # shellcheck disable=SC2086
  THREADS=${THREADS:-1} "$here/$recipe" $line > "$out/$name.toml"
  resume=()
  if [[ -f "$out/$name.pfn.ckpt" ]]; then resume=(--resume); fi
  "$pfn" train --config "$out/$name.toml" --out "$out/$name.pfn" "${resume[@]}" > "$out/$name.train.log" 2>&1
  if [[ "$recipe" == recipe.sh ]]; then
    "$pfn" eval --model "$out/$name.pfn" --threads 1 --out "$out/$name.eval.md" > "$out/$name.eval.log" 2>&1
  fi
done
