#!/usr/bin/env bash
# Installs the Python side of the XGBoost baseline (`pfn reproduce tabular`): a virtual
# environment with xgboost, scikit-learn and numpy from PyPI.
#
# Usage: scripts/install-xgboost.sh [VENV_DIR]
#   VENV_DIR defaults to .venv-xgboost at the repository root, where the Rust side
#   (pfn_baselines::classifiers::XgBoost) looks for it; elsewhere, point
#   $PFN_XGBOOST_PYTHON at VENV_DIR/bin/python.
# Needs python3 (>= 3.8) with the venv module, and network access to PyPI.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${1:-$repo_root/.venv-xgboost}"
python="${PYTHON:-python3}"

if ! command -v "$python" >/dev/null 2>&1; then
    echo "error: $python not found; install Python 3 or set PYTHON" >&2
    exit 1
fi

echo "creating virtual environment $venv"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
# Versions are bounded from below only; the installed ones are printed at the end and in every
# report the baseline writes.
"$venv/bin/python" -m pip install --quiet "xgboost>=1.7" "scikit-learn>=1.2" "numpy>=1.23"

"$venv/bin/python" - <<'PY'
import numpy, sklearn, xgboost
print(f"installed: xgboost {xgboost.__version__}, scikit-learn {sklearn.__version__}, numpy {numpy.__version__}")
PY
echo "the XGBoost baseline will use $venv/bin/python"
if [ "$venv" != "$repo_root/.venv-xgboost" ]; then
    echo "set PFN_XGBOOST_PYTHON=$venv/bin/python so that pfn finds it"
fi
