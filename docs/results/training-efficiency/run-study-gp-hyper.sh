#!/usr/bin/env bash
# Trains gp-hyper-5d recipes of the training-efficiency study one after another on one thread each
# (the models are those of a 2-thread run on the idle machine; only the wall time differs).
#
#   run-study-gp-hyper.sh OUT_DIR "NAME STEPS TARGETS LR EMSIZE NHID [PRECISION]" ...
#
# Writes OUT_DIR/NAME.toml, NAME.pfn and NAME.train.log; a killed run continues from its checkpoint
# when started again. The models are then scored together by `pfn reproduce gp-hyper --model ...`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
pfn=${PFN:-$root/target/release/pfn}
out=$1
shift
mkdir -p "$out"
for recipe in "$@"; do
  read -r name _ <<<"$recipe"
  if [[ -f "$out/$name.pfn" ]]; then continue; fi
  # shellcheck disable=SC2086
  "$here/recipe-gp-hyper.sh" $recipe > "$out/$name.toml"
  resume=()
  if [[ -f "$out/$name.pfn.ckpt" ]]; then resume=(--resume); fi
  "$pfn" train --config "$out/$name.toml" --out "$out/$name.pfn" "${resume[@]}" > "$out/$name.train.log" 2>&1
done
