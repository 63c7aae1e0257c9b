#!/usr/bin/env bash
# Measures, on an otherwise idle machine, the training rate of the study's recipe shapes (f32 and bf16)
# and the PyTorch reference (f32 and bf16) back to back, and appends the lines to OUT.
#   usage: docs/results/training-efficiency/measure-rates.sh OUT      (SKIP_TORCH=1: pfn only)
set -euo pipefail
out=$1
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
pfn=${PFN:-$root/target/release/pfn}
tmp=$(mktemp -d)
echo "# $(date -u '+%Y-%m-%d %H:%M UTC') load $(cut -d' ' -f1-3 /proc/loadavg); $(grep -m1 'model name' /proc/cpuinfo)" >>"$out"
for shape in "256 512" "128 256"; do
  for precision in f32 bf16; do
    PRECISION=$precision "$here/recipe.sh" probe 100 posterior 1e-3 64 ${shape% *} ${shape#* } 4 1000 uniform >"$tmp/probe.toml"
    rate=$("$pfn" train --config "$tmp/probe.toml" --out "$tmp/probe.pfn" --quiet 2>&1 |
      grep -o '[0-9.]* steps/s, [0-9.]* datasets/s')
    echo "pfn train gp-1d posterior b64 emsize/nhid $shape, 4 layers, 1000 buckets, 2 threads, $precision: $rate" >>"$out"
  done
done
if [[ -n "${SKIP_TORCH:-}" ]]; then rm -rf "$tmp"; exit 0; fi
py=${TORCH_PYTHON:-$HOME/.cache/torchref/bin/python}
ref=${TORCH_REFERENCE:-$root/../shared/bench/torch_reference.py}
for precision in f32 bf16; do
  echo "pfn bench --threads 2 --precision $precision: $("$pfn" bench --threads 2 --precision "$precision" | tail -1)" >>"$out"
  echo "torch_reference.py --threads 2 --precision $precision: $("$py" "$ref" --threads 2 --precision "$precision" | tail -1)" >>"$out"
done
rm -rf "$tmp"
