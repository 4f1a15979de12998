"""Make a browser available to Playwright (and so to BrowserGym) where Playwright cannot
download its own: what ``jitrl setup browser`` does.

1. Find a Chromium: ``$JITRL_CHROMIUM``, Debian's ``/usr/lib/chromium/chromium`` or Ubuntu's
   ``/usr/lib/chromium-browser/chromium-browser``.
2. If there is none, install Debian's ``chromium`` package with ``apt-get`` (as root, or
   through ``sudo``).
3. Link it where Playwright looks for the chromium revision it expects (read from the
   ``browsers.json`` that Playwright ships): ``<cache>/ms-playwright/chromium-<revision>/
   chrome-linux/chrome``, with ``<cache>`` = ``$JITRL_CACHE`` or ``~/.cache/jitrl``, and mark
   it installed.

Running it again changes nothing. The folder is for anything that launches Playwright's
chromium itself (e.g. BrowserGym used directly); jitrl's BrowserGym adapter finds the binary on
its own. :func:`plan_browser_setup` decides everything without side effects (the dry run shows
it); :func:`run_browser_setup` carries it out.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shlex
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from jitrl.cachedir import CACHE_ENV_VAR, DEFAULT_CACHE_ROOT
from jitrl.envs.errors import WebEnvError
from jitrl.envs.web_browser import BROWSER_CANDIDATES, BROWSER_ENV_VAR

logger = logging.getLogger(__name__)

PLAYWRIGHT_FOLDER = "ms-playwright"
"""The folder under jitrl's cache to use as ``PLAYWRIGHT_BROWSERS_PATH``."""
APT_PACKAGE = "chromium"
"""Debian's package that provides :data:`~jitrl.envs.web_browser.BROWSER_CANDIDATES`."""
_APT_ENV = ("env", "DEBIAN_FRONTEND=noninteractive")
_VERSION_TIMEOUT_S = 30.0
_STDERR = 2  # apt-get's output goes to standard error: standard output ends with the folder

Runner = Callable[[Sequence[str]], int]
"""Runs a command and returns its exit code."""


class BrowserSetupError(WebEnvError):
    """The browser cannot be set up; the message says what to do."""


@dataclass(frozen=True)
class BrowserSetup:
    """What setting the browser up does (see :func:`plan_browser_setup`).

    Attributes:
        binary: the Chromium found, or ``None`` when it must be installed first.
        install: the commands that install it (empty when ``binary`` is set).
        revision: the chromium revision the installed Playwright expects.
        root: the folder to use as ``PLAYWRIGHT_BROWSERS_PATH``.
    """

    binary: str | None
    install: tuple[tuple[str, ...], ...]
    revision: str
    root: Path

    @property
    def link(self) -> Path:
        """The symbolic link to the binary, where Playwright looks for its chromium."""
        return self.root / f"chromium-{self.revision}" / "chrome-linux" / "chrome"

    @property
    def marker(self) -> Path:
        """The file that tells Playwright the revision is installed."""
        return self.root / f"chromium-{self.revision}" / "INSTALLATION_COMPLETE"

    def steps(self) -> list[str]:
        """The plan in words, one line per step (what a dry run prints)."""
        lines = [f"browser: {self.binary}"] if self.binary else ["no Chromium found"]
        lines += [f"would run: {shlex.join(command)}" for command in self.install]
        target = self.binary or "the installed Chromium"
        lines.append(f"would link {self.link} -> {target}")
        lines.append(f"would create {self.marker}")
        return lines


def find_chromium(env: Mapping[str, str]) -> str | None:
    """The first executable of ``$JITRL_CHROMIUM`` and the system Chromiums, or ``None``."""
    for candidate in (env.get(BROWSER_ENV_VAR, ""), *BROWSER_CANDIDATES):
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def install_commands(euid: int, sudo: str | None) -> tuple[tuple[str, ...], ...]:
    """The ``apt-get`` commands that install :data:`APT_PACKAGE` for user ``euid``.

    Args:
        euid: the effective user id (0: root, no ``sudo`` needed).
        sudo: the ``sudo`` executable, or ``None`` when there is none.

    Raises:
        BrowserSetupError: not root and no ``sudo``.
    """
    if euid == 0:
        prefix: tuple[str, ...] = ()
    elif sudo:
        prefix = (sudo,)
    else:
        raise BrowserSetupError(
            f"no Chromium found, and installing Debian's {APT_PACKAGE} needs root (run as root "
            f"or with sudo installed, or set {BROWSER_ENV_VAR} to a Chromium binary)"
        )
    return (
        (*prefix, *_APT_ENV, "apt-get", "update", "-qq"),
        (*prefix, *_APT_ENV, "apt-get", "install", "-y", "-qq", APT_PACKAGE),
    )


def playwright_revision(package: Path | None = None) -> str:
    """The chromium revision that Playwright expects, from the ``browsers.json`` it ships.

    Args:
        package: Playwright's package folder (default: the one this Python would import).

    Raises:
        BrowserSetupError: Playwright is not installed, or its table has no chromium.
    """
    if package is None:
        spec = importlib.util.find_spec("playwright")
        if spec is None or not spec.submodule_search_locations:
            raise BrowserSetupError(
                "Playwright is not installed in this Python (pip install 'jitrl[web]')"
            )
        package = Path(next(iter(spec.submodule_search_locations)))
    table = package / "driver" / "package" / "browsers.json"
    try:
        browsers = json.loads(table.read_text(encoding="utf-8"))["browsers"]
        return str(next(b["revision"] for b in browsers if b["name"] == "chromium"))
    except (OSError, ValueError, KeyError, TypeError, StopIteration) as exc:
        raise BrowserSetupError(
            f"cannot read Playwright's chromium revision from {table}: {exc!r} "
            "(reinstall Playwright: pip install --force-reinstall playwright)"
        ) from exc


def plan_browser_setup(
    env: Mapping[str, str] | None = None,
    *,
    euid: int | None = None,
    sudo: str | None = None,
    playwright_package: Path | None = None,
) -> BrowserSetup:
    """Decide what setting the browser up takes, without changing anything.

    Args:
        env: the environment to read ``$JITRL_CHROMIUM`` and ``$JITRL_CACHE`` from (default:
            this process's).
        euid: the effective user id (default: this process's).
        sudo: the ``sudo`` executable (default: found on ``PATH``).
        playwright_package: Playwright's package folder (default: the installed one).

    Raises:
        BrowserSetupError: Playwright is missing, or a Chromium must be installed and cannot be.
    """
    env = os.environ if env is None else env
    revision = playwright_revision(playwright_package)
    binary = find_chromium(env)
    install: tuple[tuple[str, ...], ...] = ()
    if binary is None:
        user = os.geteuid() if euid is None else euid
        install = install_commands(user, sudo if sudo is not None else shutil.which("sudo"))
    cache = Path(env.get(CACHE_ENV_VAR) or DEFAULT_CACHE_ROOT).expanduser()
    return BrowserSetup(binary, install, revision, cache / PLAYWRIGHT_FOLDER)


def _run(command: Sequence[str]) -> int:
    """Run ``command``, its output on standard error; return its exit code."""
    return subprocess.run(command, stdout=_STDERR, check=False).returncode


def browser_version(binary: str) -> str:
    """What ``binary --version`` prints, or ``"version unknown"``."""
    try:
        done = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, timeout=_VERSION_TIMEOUT_S
        )
    except (OSError, subprocess.SubprocessError):
        return "version unknown"
    return done.stdout.strip() or "version unknown"


def link_browser(setup: BrowserSetup, binary: str) -> None:
    """Point :attr:`BrowserSetup.link` at ``binary`` (replacing an older link in one rename)
    and create :attr:`BrowserSetup.marker`."""
    setup.link.parent.mkdir(parents=True, exist_ok=True)
    temporary = setup.link.with_name(f".{setup.link.name}.{os.getpid()}.tmp")
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(binary)
    os.replace(temporary, setup.link)
    setup.marker.touch()


def run_browser_setup(
    setup: BrowserSetup,
    *,
    env: Mapping[str, str] | None = None,
    runner: Runner = _run,
    report: Callable[[str], None] = logger.info,
) -> Path:
    """Carry ``setup`` out: install the Chromium if needed, then link it.

    Args:
        setup: the plan from :func:`plan_browser_setup`.
        env: where to look for the installed Chromium again (default: this process's).
        runner: runs one install command, returns its exit code.
        report: receives one line per step.

    Returns:
        The folder to use as ``PLAYWRIGHT_BROWSERS_PATH``.

    Raises:
        BrowserSetupError: an install command failed, or no Chromium is there after it.
        OSError: the link or the marker cannot be written.
    """
    binary = setup.binary
    if binary is None:
        report(f"no Chromium found: installing Debian's {APT_PACKAGE} package")
        for command in setup.install:
            report(f"running {shlex.join(command)}")
            code = runner(command)
            if code != 0:
                raise BrowserSetupError(
                    f"{shlex.join(command)} failed with exit code {code} (see its output above; "
                    "check the network and the apt sources)"
                )
        binary = find_chromium(os.environ if env is None else env)
        if binary is None:
            raise BrowserSetupError(
                f"Chromium is still missing after apt-get (install one and set "
                f"{BROWSER_ENV_VAR} to its binary)"
            )
    report(f"browser: {binary} ({browser_version(binary)})")
    link_browser(setup, binary)
    report(f"linked {setup.link} -> {binary}")
    return setup.root
