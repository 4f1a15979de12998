"""The browser side of the web environments: which Chromium, launched how, killed when late.

BrowserGym launches two Chromiums per reset (the task page and a chat window) through one
process-wide Playwright. :func:`playwright_for` wraps that Playwright once so that every launch
uses the binary from :func:`find_browser` (Debian's chromium where Playwright cannot download its
own), a launch timeout, and a command-line mark (``--jitrl-watchdog=<id>``). A :class:`Watchdog`
finds this environment's browsers by that mark and kills them when a call overruns its deadline,
so that the blocked Playwright call fails instead of hanging.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from jitrl.envs.errors import BrowserLaunchError

logger = logging.getLogger(__name__)

BROWSER_ENV_VAR = "JITRL_CHROMIUM"
"""Path of the Chromium binary to use; overrides the search in :func:`find_browser`."""
BROWSER_CANDIDATES = ("/usr/lib/chromium/chromium", "/usr/lib/chromium-browser/chromium-browser")
"""Debian's and Ubuntu's real binaries (``/usr/bin/chromium`` is a shell wrapper)."""
WATCHDOG_SWITCH = "--jitrl-watchdog"


def find_browser(explicit: str | None = None) -> str | None:
    """The Chromium binary to launch: ``explicit``, ``$JITRL_CHROMIUM``, a system Chromium, else
    ``None`` (Playwright's own browser, e.g. through ``PLAYWRIGHT_BROWSERS_PATH``).

    Raises:
        BrowserLaunchError: ``explicit`` or ``$JITRL_CHROMIUM`` names no executable file.
    """
    chosen = explicit or os.environ.get(BROWSER_ENV_VAR)
    if chosen:
        path = Path(chosen).expanduser()
        if not (path.is_file() and os.access(path, os.X_OK)):
            source = "browser_path" if explicit else f"${BROWSER_ENV_VAR}"
            raise BrowserLaunchError(f"{source} {chosen!r} is not an executable file")
        return str(path)
    for candidate in BROWSER_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    return None


class MarkedChromium:
    """Playwright's ``chromium`` with jitrl's binary, launch timeout and watchdog mark."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.executable: str | None = None
        self.timeout_ms = 30_000.0
        self.mark = ""

    def launch(self, **kwargs: Any) -> Any:
        from playwright.sync_api import Error

        if self.executable:
            kwargs.setdefault("executable_path", self.executable)
        kwargs.setdefault("timeout", self.timeout_ms)
        kwargs["args"] = [*(kwargs.get("args") or []), f"{WATCHDOG_SWITCH}={self.mark}"]
        try:
            return self._inner.launch(**kwargs)
        except Error as exc:
            where = self.executable or "Playwright's own chromium"
            raise BrowserLaunchError(
                f"Chromium ({where}) did not start: {str(exc).splitlines()[0]}. "
                f"Run: jitrl setup browser, or set ${BROWSER_ENV_VAR}."
            ) from exc

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class MarkedPlaywright:
    """The process-wide Playwright handed to BrowserGym, with :class:`MarkedChromium` inside."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.chromium = MarkedChromium(inner.chromium)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def playwright_for() -> MarkedPlaywright:
    """BrowserGym's global Playwright, wrapped once (starting it if needed)."""
    import browsergym.core as core

    pw = core._get_global_playwright()
    if not isinstance(pw, MarkedPlaywright):
        pw = MarkedPlaywright(pw)
        core._set_global_playwright(pw)
    return pw


def shutdown_playwright() -> None:
    """Stop BrowserGym's global Playwright driver (a later reset starts a new one)."""
    import browsergym.core as core

    pw = core._PLAYWRIGHT
    if pw is not None:
        core._set_global_playwright(None)
        try:
            pw.stop()
        except Exception as exc:  # a dead driver cannot be stopped twice
            logger.debug("stopping Playwright: %s", exc)


def kill_marked(mark: str) -> list[int]:
    """SIGKILL the processes started with ``--jitrl-watchdog=<mark>`` (Linux); return their ids."""
    needle = f"{WATCHDOG_SWITCH}={mark}".encode()
    killed = []
    proc = Path("/proc")
    for entry in proc.iterdir() if mark and proc.is_dir() else ():
        if not entry.name.isdigit():
            continue
        try:
            if needle in (entry / "cmdline").read_bytes().split(b"\0"):
                os.kill(int(entry.name), signal.SIGKILL)
                killed.append(int(entry.name))
        except (OSError, ValueError):
            continue  # the process ended meanwhile, or is not ours to read
    return killed


class Watchdog:
    """Kills the marked browsers when a call overruns its deadline, so that the call fails."""

    def __init__(self, mark: str) -> None:
        self.mark = mark
        self.fired = False

    @contextmanager
    def deadline(self, seconds: float) -> Iterator[None]:
        self.fired = False
        timer = threading.Timer(seconds, self._fire)
        timer.daemon = True
        timer.start()
        try:
            yield
        finally:
            timer.cancel()

    def _fire(self) -> None:
        self.fired = True
        pids = kill_marked(self.mark)
        logger.warning("web env deadline passed: killed browser processes %s", pids)


def chromium_available() -> bool:
    """Whether a Chromium binary is known (for tests and set-up checks)."""
    try:
        return find_browser() is not None or shutil.which("chromium") is not None
    except BrowserLaunchError:
        return False
