#!/usr/bin/env bash
# Scaling on this machine: 1 rank x 2 threads against 2 ranks x 1 thread, same global batch
# (docs/DISTRIBUTED.md). Needs pfn built with the mpi feature:
#   scripts/install-mpi.sh && cargo build --release --features mpi
#   docs/results/distributed/measure.sh > docs/results/distributed/measure.txt
# The *.toml here are configs/gp-1d.toml and configs/gp-hyper.toml with the batch, accumulation,
# threads and step budget of each variant, 100k border samples and no validation.
set -u
cd "$(dirname "$0")"
pfn=${PFN:-../../../target/release/pfn}
lscpu | grep -E "Model name|^CPU\(s\)|Flags" | sed 's/Flags:.*avx512_bf16.*/Flags: ... avx512_bf16 .../' 
for p in g1 gh; do
  for v in a1 a2; do
    echo "== $p-$v: one process, 2 threads"; "$pfn" train --config $p-$v.toml --out "${OUT:-/tmp}/$p-$v.pfn" --quiet 2>&1 | grep -E "^trained|all-reduce"
  done
  echo "== $p-b: mpiexec -n 2, 1 thread each"; mpiexec -n 2 "$pfn" train --config $p-b.toml --out "${OUT:-/tmp}/$p-b.pfn" --quiet 2>&1 | grep -E "^trained|all-reduce"
done
