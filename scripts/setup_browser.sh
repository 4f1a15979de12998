#!/usr/bin/env bash
# Debian's Chromium for the web tasks (apt, only if missing), linked where Playwright looks.
# Kept for older instructions: the same set-up is the command `jitrl setup browser`.
#   export PLAYWRIGHT_BROWSERS_PATH="$(bash scripts/setup_browser.sh | tail -n 1)"
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
exec "$PYTHON" -m jitrl setup browser "$@"
