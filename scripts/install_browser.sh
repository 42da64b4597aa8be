#!/usr/bin/env bash
# Install what the demo's browser test (tests/test_demo_browser.py) needs: Debian's Chromium, driven by the Python
# package playwright. `playwright install` is not used: it downloads browsers from a CDN, which CI cannot reach.
# Idempotent: does nothing that is already done. Run as root (or with sudo available) on Debian / Ubuntu.
set -euo pipefail

have_chromium() {
    command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1
}

if have_chromium; then
    echo "install_browser: chromium already installed: $(command -v chromium || command -v chromium-browser)"
else
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then
        SUDO="sudo"
    fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update
    $SUDO apt-get install -y chromium
fi

# The Python side: playwright (part of the `browser` extra); install it only when it is missing.
PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c "import playwright" >/dev/null 2>&1; then
    "$PYTHON" -m pip install -q "playwright>=1.40"
fi

# Chromium runs headless here; print its version so that CI logs show which browser the test used.
# (Debian's wrapper script prints a harmless "[: ... unexpected operator" on some machines; it is filtered out.)
{ chromium --version 2>/dev/null || chromium-browser --version 2>/dev/null; } | grep -i chrom || true
