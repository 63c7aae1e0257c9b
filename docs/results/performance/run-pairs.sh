#!/usr/bin/env bash
# Runs `pfn bench` and the PyTorch reference back to back, N times, each under `perf stat` (to record
# how many CPUs each got), and appends the JSON lines to OUT.
#   usage: docs/results/performance/run-pairs.sh N OUT [bench flags...]
#   e.g.   docs/results/performance/run-pairs.sh 5 pairs.txt --threads 2
set -euo pipefail
n=$1; out=$2; shift 2
py=${TORCH_PYTHON:-$HOME/.cache/torchref/bin/python}
ref=${TORCH_REFERENCE:-$(dirname "$0")/../../../../shared/bench/torch_reference.py}
for i in $(seq "$n"); do
  echo "# pair $i $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out"
  perf stat -e task-clock -x, -o /tmp/ours.stat target/release/pfn bench "$@" | tail -1 >>"$out"
  echo "# ours cpus: $(awk -F, '/task-clock/{print $6}' /tmp/ours.stat)" >>"$out"
  perf stat -e task-clock -x, -o /tmp/ref.stat "$py" "$ref" "$@" | tail -1 >>"$out"
  echo "# reference cpus: $(awk -F, '/task-clock/{print $6}' /tmp/ref.stat)" >>"$out"
done
