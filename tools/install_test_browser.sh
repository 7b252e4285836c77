#!/usr/bin/env bash
# Chromium and its WebDriver, from Debian's packages, for the demo page's browser tests
# (tests/app/test_demo_app_browser.py, pytest marker "browser"). Does nothing when both are
# installed. Needs apt-get and root (or sudo).
#
#   tools/install_test_browser.sh && .venv/bin/python -m pytest tests -m browser
set -euo pipefail

if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
  echo "chromium and chromedriver are installed: $(chromium --version 2>/dev/null | head -n 1)"
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "error: no apt-get here; install Chromium and its chromedriver with your system's packages" >&2
  exit 1
fi
as_root=()
if [[ $(id -u) != 0 ]]; then
  as_root=(sudo)
fi
"${as_root[@]}" apt-get update -q
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver
echo "installed: $(chromium --version 2>/dev/null | head -n 1)"
