"""BrowserGymEnv: config, errors, benchmark set-up checks, and real MiniWoB++ tasks in Chromium.

The browser tests drive headless Chromium (Debian's, found by ``find_browser``) through BrowserGym;
they are marked slow (a reset takes ~3-6 s) and skip when browsergym-miniwob or Chromium is
missing (``pip install 'jitrl[web]'`` and ``jitrl setup browser``).
"""

from __future__ import annotations

import http.server
import importlib.util
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jitrl.envs import StepLimit, make_env, web_benchmarks
from jitrl.envs.browsergym import BrowserGymConfig, BrowserGymEnv
from jitrl.envs.errors import BrowserLaunchError, WebConfigError, WebEnvError, WebTimeoutError
from jitrl.envs.factory import expand_suite
from jitrl.envs.web_benchmarks import (
    WEBARENA_SITE_VARS,
    WORKARENA_VARS,
    check_reachable,
    check_workarena,
    load_webarena_configs,
    miniwob_url,
    validate_webarena_config,
    webarena_urls,
)
from jitrl.envs.web_browser import BROWSER_ENV_VAR, WATCHDOG_SWITCH, find_browser, kill_marked
from jitrl.envs.web_candidates import parse_action
from jitrl.method.types import State

FAST_FAIL_S = 15.0
"""A browser that cannot start must fail within this (the launch itself fails at once)."""


def _browser_ready() -> str | None:
    """Why the browser tests cannot run here, or ``None`` when they can."""
    try:
        import browsergym.miniwob  # noqa: F401
    except ImportError:
        return "needs the web extra: pip install 'jitrl[web]'"
    try:
        found = find_browser()
    except BrowserLaunchError as exc:
        return str(exc)
    if found is None and not os.environ.get("PLAYWRIGHT_BROWSERS_PATH"):
        return "no Chromium: run jitrl setup browser (or set JITRL_CHROMIUM)"
    return None


SKIP_BROWSER = _browser_ready()
needs_browser = pytest.mark.skipif(SKIP_BROWSER is not None, reason=SKIP_BROWSER or "")


def _has(module: str) -> bool:
    """Whether ``module`` is installed (found, not imported: some imports download data)."""
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


needs_browsergym = pytest.mark.skipif(
    not _has("browsergym.miniwob"), reason="needs the web extra: pip install 'jitrl[web]'"
)


@pytest.fixture(scope="module")
def browser_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Chromium's config and Playwright's temp folders go to a temporary folder; the shared
    Playwright driver (which inherited them) is stopped afterwards."""
    root = tmp_path_factory.mktemp("browser")
    with pytest.MonkeyPatch.context() as mp:
        for var, sub in (("XDG_CONFIG_HOME", "config"), ("TMPDIR", "tmp")):
            (root / sub).mkdir()
            mp.setenv(var, str(root / sub))
        yield
        if _has("browsergym.core"):
            from jitrl.envs.web_browser import shutdown_playwright

            shutdown_playwright()


@pytest.fixture
def clean_web_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in [*WEBARENA_SITE_VARS.values(), *WORKARENA_VARS, "SNOW_INSTANCE_POOL"]:
        monkeypatch.delenv(var, raising=False)


# --- config and ids ---------------------------------------------------------------------------


def test_config_validation() -> None:
    for bad in (
        {"task": ""},
        {"task": "browsergym/miniwob.click-test"},
        {"seed": -1},
        {"max_candidates": 0},
        {"step_deadline_s": 0},
        {"page_timeout_ms": 0},
        {"slow_mo_ms": -1},
        {"action_subsets": ()},
    ):
        with pytest.raises(ValueError):
            BrowserGymConfig(**bad)


@pytest.mark.parametrize(
    ("task", "task_id"),
    [
        ("miniwob.click-test", "miniwob:click-test"),
        ("webarena.310", "webarena:310"),
        ("webarenalite.4", "webarena-lite:4"),
        ("workarena.servicenow.create-incident", "workarena:create-incident"),
        ("assistantbench.validation.1", "browsergym:assistantbench.validation.1"),
    ],
)
def test_task_ids(task: str, task_id: str) -> None:
    assert BrowserGymConfig(task=task).task_id == task_id


def test_expand_suite() -> None:
    assert expand_suite("textworld:3") == ["textworld:3"]
    assert expand_suite("miniwob:click-test") == ["miniwob:click-test"]


@needs_browsergym
def test_miniwob_suite_lists_every_task() -> None:
    specs = expand_suite("miniwob:all")
    assert len(specs) >= 100 and "miniwob:click-test" in specs and specs == sorted(specs)
    with pytest.raises(ValueError, match="suite"):
        make_env("miniwob:all", max_steps=5, seed=0)


@needs_browsergym
def test_miniwob_url_points_at_the_packaged_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MINIWOB_URL", raising=False)
    url = miniwob_url()
    assert url.startswith("file://") and url.endswith("/miniwob/")
    assert (Path(url[len("file://") :]) / "click-test.html").is_file()
    monkeypatch.setenv("MINIWOB_URL", "http://localhost:8000/miniwob/")
    assert miniwob_url() == "http://localhost:8000/miniwob/"


@needs_browsergym
def test_unknown_task_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown BrowserGym task"):
        BrowserGymEnv(BrowserGymConfig(task="miniwob.no-such-task"))


# --- browser path and watchdog (fast) ---------------------------------------------------------


def test_bogus_browser_path_fails_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(BrowserLaunchError, match="browser_path"):
        find_browser("/nonexistent/chromium")
    monkeypatch.setenv(BROWSER_ENV_VAR, "/nonexistent/chromium")
    with pytest.raises(BrowserLaunchError, match=BROWSER_ENV_VAR):
        find_browser()


@needs_browsergym
def test_env_with_bogus_browser_path_fails_quickly() -> None:
    start = time.perf_counter()
    with pytest.raises(BrowserLaunchError, match="not an executable"):
        BrowserGymEnv(BrowserGymConfig(browser_path="/nonexistent/chromium"))
    assert time.perf_counter() - start < FAST_FAIL_S


@needs_browsergym
@pytest.mark.slow
def test_a_binary_that_is_no_browser_fails_quickly(browser_sandbox: None, tmp_path: Path) -> None:
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    env = BrowserGymEnv(BrowserGymConfig(browser_path=str(fake), launch_timeout_s=10))
    start = time.perf_counter()
    with pytest.raises(BrowserLaunchError, match="did not start"):
        env.reset()
    assert time.perf_counter() - start < FAST_FAIL_S
    env.close()


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs Linux /proc")
def test_kill_marked_kills_only_marked_processes() -> None:
    mark = "test" + str(os.getpid())
    code = "import time; time.sleep(60)"
    marked = subprocess.Popen([sys.executable, "-c", code, f"{WATCHDOG_SWITCH}={mark}"])
    other = subprocess.Popen([sys.executable, "-c", code, f"{WATCHDOG_SWITCH}=other{mark}"])
    try:
        time.sleep(0.2)
        assert kill_marked(mark) == [marked.pid]
        assert marked.wait(timeout=10) != 0 and other.poll() is None
        assert kill_marked("") == []
    finally:
        for proc in (marked, other):
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)


# --- WebArena / WorkArena set-up checks -------------------------------------------------------


def test_webarena_variables_are_named_when_missing(clean_web_env: None) -> None:
    with pytest.raises(WebConfigError, match=r"WA_SHOPPING.*WA_HOMEPAGE"):
        webarena_urls()
    partial = {var: "http://h" for var in WEBARENA_SITE_VARS.values()}
    del partial["WA_GITLAB"]
    with pytest.raises(WebConfigError, match="missing: WA_GITLAB \\("):
        webarena_urls(partial)
    full = {**partial, "WA_GITLAB": "http://git/ "}
    assert webarena_urls(full)["gitlab"] == "http://git"


def test_workarena_variables_are_named_when_missing(
    clean_web_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with pytest.raises(WebConfigError, match="SNOW_INSTANCE_URL, SNOW_INSTANCE_UNAME"):
        check_workarena()
    monkeypatch.setenv("SNOW_INSTANCE_POOL", str(tmp_path / "missing.json"))
    with pytest.raises(WebConfigError, match="SNOW_INSTANCE_POOL"):
        check_workarena()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Quiet(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_error(404)  # any HTTP answer means the site is up

    def log_message(self, *args: Any) -> None:
        pass


def test_reachability_names_the_unreachable_site() -> None:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        up = f"http://127.0.0.1:{server.server_address[1]}"
        down = f"http://127.0.0.1:{_closed_port()}"
        check_reachable({"shopping": up}, timeout_s=5)
        start = time.perf_counter()
        with pytest.raises(WebConfigError, match=r"'reddit' \(WA_REDDIT=http://127"):
            check_reachable({"shopping": up, "reddit": down}, timeout_s=5)
        assert time.perf_counter() - start < FAST_FAIL_S
    finally:
        server.shutdown()
        server.server_close()


@needs_browsergym
def test_make_env_webarena_without_sites_fails_clearly(clean_web_env: None) -> None:
    with pytest.raises(WebEnvError, match="WA_SHOPPING"):
        make_env("webarena:0", max_steps=5, seed=0)


def test_webarena_configs_without_package_fail_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    missing = {"webarena": ("no_such_package_jitrl", "test.raw.json", "task_id")}
    monkeypatch.setattr(web_benchmarks, "_CONFIG_FILES", missing)
    with pytest.raises(ImportError, match="pip install browsergym-webarena"):
        load_webarena_configs("webarena")
    with pytest.raises(ValueError, match="benchmark must be"):
        load_webarena_configs("nonsense")  # type: ignore[arg-type]


@pytest.mark.skipif(
    not _has("browsergym.webarenalite") or not _has("webarena"),
    reason="needs pip install browsergym-webarena browsergym-webarenalite",
)
@pytest.mark.parametrize(("benchmark", "count"), [("webarena", 812), ("webarena-lite", 165)])
def test_webarena_task_configs_load_and_validate(benchmark: Any, count: int) -> None:
    raw = load_webarena_configs(benchmark)
    assert len(raw) == count
    urls = {site: f"http://{site}.test" for site in WEBARENA_SITE_VARS}
    configs = load_webarena_configs(benchmark, urls=urls)
    assert set(configs) == set(raw)
    text = repr(configs)
    assert "__SHOPPING" not in text and "__GITLAB__" not in text and "http://gitlab.test" in text
    config = next(iter(configs.values()))
    broken = {k: v for k, v in config.items() if k != "eval"}
    with pytest.raises(ValueError, match="lacks eval"):
        validate_webarena_config(broken)
    with pytest.raises(ValueError, match="bad sites"):
        validate_webarena_config({**config, "sites": ["nowhere"]})


# --- real MiniWoB++ tasks in headless Chromium ------------------------------------------------


def assert_wellformed(env: Any, info: dict[str, Any]) -> None:
    """Protocol keys present; candidates parse, are valid now and have aligned labels."""
    cands = info.candidates
    assert cands and len(cands) == len(set(cands)) <= env.config.max_candidates
    assert len(info.labels) == len(cands)
    assert isinstance(info.state, State) and len(info.state.key) == 40
    assert not any(f"[{e['bid']}]" in info.state.text for e in info.extra["elements"])  # no bids
    for action in cands:
        assert parse_action(action) is not None and env.is_valid(action), action
    assert not env.is_valid('click("no-such-bid")') and not env.is_valid("explode()")
    assert info.extra["elements"] and all(e["bid"] for e in info.extra["elements"])
    assert info.score == 0.0 and not info.won and not info.lost


@needs_browser
@pytest.mark.slow
def test_click_test_end_to_end(browser_sandbox: None) -> None:
    env = make_env("miniwob:click-test", max_steps=5, seed=1)
    assert isinstance(env, StepLimit) and env.task_id == "miniwob:click-test"
    inner = env.env
    assert isinstance(inner, BrowserGymEnv)
    try:
        obs, info = env.reset(seed=1)
        assert obs.startswith("Goal: Click the button.") and "button 'Click Me!'" in obs
        assert_wellformed(inner, info)
        button = next(e for e in info.extra["elements"] if e["role"] == "button")
        assert info.candidates[0] == f'click("{button["bid"]}")'
        obs, reward, terminated, truncated, info = env.step(info.candidates[0])
        assert reward > 0 and terminated and not truncated
        assert info.won and not info.lost and info.score == reward
        assert info.candidates == () and not inner.is_valid("scroll(0, 300)")
        with pytest.raises(RuntimeError, match="reset"):
            env.step("scroll(0, 300)")
    finally:
        env.close()


@needs_browser
@pytest.mark.slow
@pytest.mark.parametrize("task", ["enter-text", "login-user", "choose-list"])
def test_greedy_first_candidate_solves_form_tasks(browser_sandbox: None, task: str) -> None:
    """The ranking puts goal values into fields, then the submitting click: taking the first
    candidate every step wins these tasks."""
    env = BrowserGymEnv(BrowserGymConfig(task=f"miniwob.{task}", seed=3))
    try:
        _, info = env.reset()
        assert_wellformed(env, info)
        terminated, steps = False, 0
        while not terminated and steps < 6:
            _, reward, terminated, _, info = env.step(info.candidates[0])
            steps += 1
            assert isinstance(reward, float) and info.extra["last_action_error"] == ""
        assert terminated and info.won and reward == 1.0, (task, steps, info.extra["task_info"])
    finally:
        env.close()


@needs_browser
@pytest.mark.slow
def test_overrun_step_is_killed_and_env_recovers(browser_sandbox: None) -> None:
    env = BrowserGymEnv(BrowserGymConfig(task="miniwob.click-test", step_deadline_s=2))
    try:
        env.reset()
        start = time.perf_counter()
        with pytest.raises(WebTimeoutError, match="deadline"):
            env.step("noop(60000)")  # waits a minute in the page
        assert time.perf_counter() - start < FAST_FAIL_S
        with pytest.raises(RuntimeError, match="reset"):
            env.step("scroll(0, 300)")
        _, info = env.reset()
        assert info.candidates
    finally:
        env.close()
