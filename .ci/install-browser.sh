#!/usr/bin/env bash
# The headless browser of tests/test_browser.py: Debian's chromium at /usr/bin/chromium
# (the test drives it with Playwright and never downloads a browser of its own).
# Installs it with apt when running as root and apt-get is available; otherwise says how,
# and leaves the decision to the test (it skips without the browser, and fails when CI is set).
set -euo pipefail

browser=/usr/bin/chromium
if [ -x "$browser" ]; then
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "install-browser: installing chromium with apt-get" >&2
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
    exit 0
fi
cat >&2 <<MSG
install-browser: $browser is missing, so tests/test_browser.py will be skipped (and fail under CI=1).
Install Debian's chromium package to run it, for example:
    sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
MSG
exit 0
