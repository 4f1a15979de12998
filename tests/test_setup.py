"""``jitrl setup browser`` (planning, the dry run, linking; apt-get only through a fake runner)
and ``jitrl --version``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

import jitrl
from jitrl import setup_browser
from jitrl.setup_browser import (
    BrowserSetup,
    BrowserSetupError,
    install_commands,
    plan_browser_setup,
    playwright_revision,
    run_browser_setup,
)

REVISION = "4242"


@pytest.fixture
def playwright_package(tmp_path: Path) -> Path:
    """A Playwright package folder with the table of the revisions it expects."""
    table = tmp_path / "playwright" / "driver" / "package" / "browsers.json"
    table.parent.mkdir(parents=True)
    browsers = [{"name": "firefox", "revision": "1"}, {"name": "chromium", "revision": REVISION}]
    table.write_text(json.dumps({"browsers": browsers}))
    return tmp_path / "playwright"


def fake_browser(path: Path) -> str:
    """An executable that answers ``--version`` like Chromium."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\necho 'Chromium 125.0 fake'\n")
    path.chmod(0o755)
    return str(path)


@pytest.fixture
def no_system_browser(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(setup_browser, "BROWSER_CANDIDATES", ())


def test_plan_with_a_browser(tmp_path: Path, playwright_package: Path) -> None:
    binary = fake_browser(tmp_path / "bin" / "chromium")
    env = {"JITRL_CHROMIUM": binary, "JITRL_CACHE": str(tmp_path / "cache")}
    plan = plan_browser_setup(env, euid=1000, sudo=None, playwright_package=playwright_package)
    root = tmp_path / "cache" / "ms-playwright"
    assert plan == BrowserSetup(binary, (), REVISION, root)
    assert plan.link == root / f"chromium-{REVISION}" / "chrome-linux" / "chrome"
    assert plan.steps() == [
        f"browser: {binary}",
        f"would link {plan.link} -> {binary}",
        f"would create {root / f'chromium-{REVISION}' / 'INSTALLATION_COMPLETE'}",
    ]
    assert not (tmp_path / "cache").exists()  # planning changes nothing


@pytest.mark.usefixtures("no_system_browser")
def test_plan_without_a_browser(tmp_path: Path, playwright_package: Path) -> None:
    env = {"JITRL_CHROMIUM": str(tmp_path / "missing"), "JITRL_CACHE": str(tmp_path)}
    plan = plan_browser_setup(
        env, euid=1000, sudo="/usr/bin/sudo", playwright_package=playwright_package
    )
    assert plan.binary is None
    assert plan.steps()[:3] == [
        "no Chromium found",
        "would run: /usr/bin/sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq",
        "would run: /usr/bin/sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "
        "chromium",
    ]
    with pytest.raises(BrowserSetupError, match="needs root"):
        plan_browser_setup(env, euid=1000, sudo="", playwright_package=playwright_package)


def test_install_commands_as_root_need_no_sudo() -> None:
    update, install = install_commands(0, None)
    assert update[:3] == ("env", "DEBIAN_FRONTEND=noninteractive", "apt-get")
    assert install[-4:] == ("install", "-y", "-qq", "chromium")


def test_playwright_revision(tmp_path: Path, playwright_package: Path) -> None:
    assert playwright_revision(playwright_package) == REVISION
    (playwright_package / "driver" / "package" / "browsers.json").write_text("{}")
    with pytest.raises(BrowserSetupError, match="cannot read Playwright's chromium revision"):
        playwright_revision(playwright_package)
    with pytest.raises(BrowserSetupError, match=r"browsers\.json"):
        playwright_revision(tmp_path / "nothing")


@pytest.mark.usefixtures("no_system_browser")
def test_run_installs_then_links(tmp_path: Path, playwright_package: Path) -> None:
    binary = tmp_path / "usr" / "chromium"
    env = {"JITRL_CHROMIUM": str(binary), "JITRL_CACHE": str(tmp_path / "cache")}
    plan = plan_browser_setup(env, euid=0, playwright_package=playwright_package)
    ran: list[Sequence[str]] = []

    def apt(command: Sequence[str]) -> int:
        ran.append(command)
        if "install" in command:
            fake_browser(binary)
        return 0

    lines: list[str] = []
    root = run_browser_setup(plan, env=env, runner=apt, report=lines.append)
    assert ran == list(plan.install) and root == tmp_path / "cache" / "ms-playwright"
    assert os.readlink(plan.link) == str(binary) and plan.marker.is_file()
    assert f"browser: {binary} (Chromium 125.0 fake)" in lines
    # again, now that the browser is there: nothing is installed, the link stays right
    again = plan_browser_setup(env, euid=0, playwright_package=playwright_package)
    assert again.install == () and run_browser_setup(again, env=env, runner=apt) == root
    assert len(ran) == 2 and os.readlink(plan.link) == str(binary)
    assert sorted(p.name for p in plan.link.parent.iterdir()) == ["chrome"]


@pytest.mark.usefixtures("no_system_browser")
def test_failed_install_links_nothing(tmp_path: Path, playwright_package: Path) -> None:
    env = {"JITRL_CACHE": str(tmp_path / "cache")}
    plan = plan_browser_setup(env, euid=0, playwright_package=playwright_package)
    with pytest.raises(BrowserSetupError, match=r"apt-get update -qq failed with exit code 100"):
        run_browser_setup(plan, env=env, runner=lambda command: 100)
    with pytest.raises(BrowserSetupError, match="still missing after apt-get"):
        run_browser_setup(plan, env=env, runner=lambda command: 0)
    assert not (tmp_path / "cache").exists()


# --- through the command line ------------------------------------------------------------------


def cli(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jitrl", *args],
        cwd=cwd,
        env={**os.environ, "COLUMNS": "300", **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cli_dry_run_then_run(tmp_path: Path) -> None:
    pytest.importorskip("playwright")
    binary = fake_browser(tmp_path / "bin" / "chromium")
    env = {"JITRL_CHROMIUM": binary, "JITRL_CACHE": str(tmp_path / "cache")}
    root = tmp_path / "cache" / "ms-playwright"
    dry = cli("setup", "browser", "--dry-run", cwd=tmp_path, env=env)
    assert dry.returncode == 0, dry.stderr
    lines = dry.stdout.strip().splitlines()
    assert lines[0] == f"browser: {binary}" and lines[-1] == str(root)
    assert any(line.startswith(f"would link {root}") for line in lines)
    assert not (tmp_path / "cache").exists()
    done = cli("setup", "browser", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines() == [str(root)]  # the folder, ready for export
    assert "linked" in done.stderr
    (link,) = root.glob("chromium-*/chrome-linux/chrome")
    assert os.readlink(link) == binary


def test_cli_version(tmp_path: Path) -> None:
    proc = cli("--version", cwd=tmp_path, env={})
    assert proc.returncode == 0 and proc.stdout == f"jitrl {jitrl.__version__}\n"
