#!/usr/bin/env bash
# The Python package's tests: builds and installs the package (`pip install ".[test]"`, which runs
# maturin on crates/pfn-py) into the virtual environment .venv-py, then runs pytest on tests/python.
# Called by scripts/test.sh (the README's test command); needs python3 with venv and PyPI access.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${PFN_PY_VENV:-.venv-py}
if ! command -v python3 >/dev/null 2>&1 || ! python3 -c "import ensurepip, venv" >/dev/null 2>&1; then
  echo "installing python3 and python3-venv for the Python package's tests" >&2
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv
fi
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q ".[test]"
# Run from the repository root: `pfn` resolves to the installed package (python/ is not on the path).
"$venv/bin/python" -m pytest tests/python -q "$@"
