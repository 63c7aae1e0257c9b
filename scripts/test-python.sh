#!/usr/bin/env bash
# The Python package's tests: builds and installs the package (`pip install ".[test]"`, which runs
# maturin on crates/pfn-py) into the virtual environment .venv-py, then runs pytest on tests/python.
# Called by scripts/test.sh (the README's test command); needs python3 with venv and PyPI access.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${PFN_PY_VENV:-.venv-py}
scripts/install-python.sh
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q ".[test]"
# Run from the repository root: `pfn` resolves to the installed package (python/ is not on the path).
"$venv/bin/python" -m pytest tests/python -q "$@"
