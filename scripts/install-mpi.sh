#!/usr/bin/env bash
# Makes sure what the `mpi` cargo feature needs is present: MPICH (mpiexec, the library and its
# headers) and libclang, which the mpi crate's bindgen uses to read mpi.h. Debian's mpich,
# libmpich-dev and libclang-dev through apt-get, with sudo when not root.
#
#   scripts/install-mpi.sh && cargo build --release --features mpi
set -euo pipefail
if command -v mpiexec >/dev/null 2>&1 && command -v mpicc >/dev/null 2>&1 \
  && ldconfig -p 2>/dev/null | grep -Eq 'libclang(-[0-9.]+)?\.so '; then
  exit 0
fi
echo "installing mpich, libmpich-dev and libclang-dev for the mpi feature" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mpich libmpich-dev libclang-dev
