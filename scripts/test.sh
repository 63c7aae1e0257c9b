#!/usr/bin/env bash
# The test command of the README: installs what the tests need on a fresh Debian machine (headless
# Chromium and ChromeDriver for tests/browser.rs, through apt-get, with sudo when not root), then runs
# every test of the workspace in release mode (extra arguments go to `cargo test`), then the Python
# package's tests (scripts/test-python.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  echo "installing chromium and chromium-driver for the browser test (tests/browser.rs)" >&2
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver
fi
# python3 is needed by the build itself (pyo3's build script in crates/pfn-py).
scripts/install-python.sh
cargo test --workspace --release "$@"
# The Python package (crates/pfn-py + python/pfn): built, installed in .venv-py and tested with pytest.
scripts/test-python.sh
