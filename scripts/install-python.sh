#!/usr/bin/env bash
# Makes sure python3 with venv is present (Debian's python3 and python3-venv through apt-get, with
# sudo when not root). Building the workspace needs it: pyo3's build script (crates/pfn-py) asks
# the interpreter for its configuration, and the Python tests and the XGBoost baseline create
# virtual environments.
set -euo pipefail
if command -v python3 >/dev/null 2>&1 && python3 -c "import ensurepip, venv" >/dev/null 2>&1; then
  exit 0
fi
echo "installing python3 and python3-venv" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv
