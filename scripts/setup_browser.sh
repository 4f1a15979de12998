#!/usr/bin/env bash
# Make a browser available to Playwright (and so to BrowserGym) on a machine where Playwright
# cannot download its own: install Debian's chromium if no chromium is there, then build a
# PLAYWRIGHT_BROWSERS_PATH folder whose expected revision path links to that binary.
#
# Idempotent: a second run changes nothing. Prints the folder on its last line, ready for
#   export PLAYWRIGHT_BROWSERS_PATH="$(bash scripts/setup_browser.sh | tail -n 1)"
# jitrl's BrowserGym adapter finds Debian's binary by itself; the folder is for anything else
# that launches Playwright's chromium (e.g. BrowserGym used directly).
#
# Environment:
#   PYTHON           interpreter with playwright installed (default: .venv/bin/python, else python3)
#   JITRL_CHROMIUM   the browser binary to link (default: Debian's /usr/lib/chromium/chromium)
#   JITRL_CACHE      cache root (default: ~/.cache/jitrl); the folder is $JITRL_CACHE/ms-playwright
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "setup_browser: $*" >&2; }

find_chromium() {
    local candidate
    for candidate in "${JITRL_CHROMIUM:-}" /usr/lib/chromium/chromium /usr/lib/chromium-browser/chromium-browser; do
        if [[ -n "$candidate" && -x "$candidate" ]]; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

if ! BINARY="$(find_chromium)"; then
    log "no chromium found: installing Debian's package"
    SUDO=""
    if [[ "$(id -u)" != 0 ]]; then
        command -v sudo >/dev/null || { log "need root (or sudo) for apt-get"; exit 1; }
        SUDO="sudo"
    fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq >&2
    $SUDO apt-get install -y -qq chromium >&2
    BINARY="$(find_chromium)" || { log "chromium is still missing after apt-get"; exit 1; }
fi
log "browser: $BINARY ($("$BINARY" --version 2>/dev/null || echo 'version unknown'))"

PYTHON="${PYTHON:-}"
if [[ -z "$PYTHON" ]]; then
    if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
# Playwright's expected chromium revision, read from the browsers.json it ships.
if ! REVISION="$("$PYTHON" - <<'PY'
import json
from pathlib import Path

import playwright

table = Path(playwright.__file__).parent / "driver" / "package" / "browsers.json"
browsers = json.loads(table.read_text())["browsers"]
print(next(b["revision"] for b in browsers if b["name"] == "chromium"))
PY
)"; then
    log "playwright is not importable with $PYTHON: install jitrl[web] first"
    exit 1
fi

ROOT="${JITRL_CACHE:-$HOME/.cache/jitrl}/ms-playwright"
TARGET="$ROOT/chromium-$REVISION/chrome-linux/chrome"
mkdir -p "$(dirname "$TARGET")"
ln -sfn "$BINARY" "$TARGET"
touch "$ROOT/chromium-$REVISION/INSTALLATION_COMPLETE"
log "linked $TARGET -> $BINARY"
echo "$ROOT"
