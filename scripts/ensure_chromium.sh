#!/usr/bin/env bash
# Make sure Debian's headless-capable Chromium and its matching chromedriver are installed, for the
# browser tests of the model-registry plugin (tests/ui). Idempotent: installs only what is missing.
# Runs as root (CI, dev containers); uses sudo only if it is not root and sudo exists.
set -euo pipefail

CHROMIUM=/usr/bin/chromium
DRIVER=/usr/bin/chromedriver

if [[ ! -x "$CHROMIUM" || ! -x "$DRIVER" ]]; then
    SUDO=""
    if [[ "$(id -u)" != "0" ]]; then
        if command -v sudo >/dev/null 2>&1; then
            SUDO="sudo"
        else
            echo "ensure_chromium: $CHROMIUM or $DRIVER is missing and this is not root (no sudo): install" \
                 "the Debian packages 'chromium' and 'chromium-driver'" >&2
            exit 1
        fi
    fi
    echo "ensure_chromium: installing chromium and chromium-driver (Debian packages)"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
fi

for bin in "$CHROMIUM" "$DRIVER"; do
    if [[ ! -x "$bin" ]]; then
        echo "ensure_chromium: $bin is still missing after the install" >&2
        exit 1
    fi
done
"$CHROMIUM" --version 2>/dev/null || "$CHROMIUM" --headless --no-sandbox --version
"$DRIVER" --version
