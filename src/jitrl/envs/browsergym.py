"""BrowserGym adapter: web tasks (MiniWoB++, WebArena, WorkArena) as a :class:`TextEnv`.

The observation is the task's goal, the URL and title of the page and its accessibility tree,
pruned to rendered nodes and cut to ``max_axtree_chars`` (:mod:`jitrl.envs.web_page`).
Candidates are BrowserGym action strings built from the page's elements
(:mod:`jitrl.envs.web_candidates`); the reward and the end of the episode come from the task's
own validator. Browsers are launched and watched by :mod:`jitrl.envs.web_browser`: a reset or a
step returns, or raises :class:`WebEnvError` within its deadline; it never hangs.

Errors: :class:`BrowserLaunchError` (the browser cannot start), :class:`WebTimeoutError` (a page
or a whole reset/step ran out of time) and :class:`WebConfigError` (missing site variables,
unreachable sites) are all :class:`WebEnvError`. After one, the environment has stopped its
browsers; ``reset()`` starts fresh ones. An action that fails on the page (unknown bid, element
not clickable) is not an error: the step returns and ``info["last_action_error"]`` says why.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from jitrl.envs import web_candidates as wc
from jitrl.envs import web_page as wp
from jitrl.envs.base import BaseTextEnv, Fold, StepInfo, StepResult
from jitrl.envs.errors import BrowserLaunchError, WebConfigError, WebEnvError, WebTimeoutError
from jitrl.envs.web_benchmarks import WEB_INSTALL_HINT, miniwob_tasks, miniwob_url, task_kwargs
from jitrl.envs.web_browser import Watchdog, find_browser, kill_marked, playwright_for
from jitrl.method.types import State

logger = logging.getLogger(__name__)
T = TypeVar("T")

BENCHMARK_PREFIXES = {
    "miniwob.": "miniwob:",
    "webarenalite.": "webarena-lite:",
    "webarena.": "webarena:",
    "workarena.servicenow.": "workarena:",
}
"""BrowserGym task-id prefixes and the jitrl spec prefixes they map to."""
_OVERRIDE_NOTICE = "Overriding the task's"
PROGRAMMING_ERRORS = (TypeError, AttributeError, NameError, ImportError)
"""Raised as they are by reset/step (after closing the browsers): bugs, not web failures."""

__all__ = [
    "BrowserGymConfig",
    "BrowserGymEnv",
    "BrowserLaunchError",
    "WebConfigError",
    "WebEnvError",
    "WebTimeoutError",
    "find_browser",
    "miniwob_tasks",
    "miniwob_url",
]


@dataclass(frozen=True)
class BrowserGymConfig:
    """Settings of a :class:`BrowserGymEnv`.

    Attributes:
        task: BrowserGym task id without ``browsergym/``, e.g. ``miniwob.click-test``,
            ``webarena.310``, ``webarenalite.4``, ``workarena.servicenow.create-incident``.
        seed: task seed used until ``reset(seed=...)`` gives another.
        headless: run Chromium without a window.
        slow_mo_ms: Playwright's delay after each browser operation (MiniWoB's own is 100).
        page_timeout_ms: timeout of page operations (navigation, clicks); ``None`` keeps the
            task's own (MiniWoB 5 s, WebArena 10 s).
        launch_timeout_s: how long one browser may take to start.
        reset_deadline_s: wall-clock limit of a whole reset (two launches and the task set-up).
        step_deadline_s: wall-clock limit of a whole step (action, validation, observation).
        pre_observation_delay_s: pause before reading the page after an action (BrowserGym's
            default is 0.5 s; autocomplete menus may need it).
        max_candidates: at most this many candidate actions.
        max_axtree_chars: the page text in the observation is cut to this length.
        max_state_chars: the abstracted state text is cut to this length.
        max_goal_values: at most this many values taken from the goal for ``fill``.
        scroll_actions: offer ``scroll(0, 300)`` and ``scroll(0, -300)``.
        back_action: offer ``go_back()`` once the page left the task's start URL.
        chat_actions: offer ``send_msg_to_user(value)`` for values in the goal (WebArena answers).
        action_subsets: BrowserGym action subsets accepted by ``step`` and ``is_valid``.
        browser_path: Chromium binary; ``None`` asks :func:`find_browser`.
    """

    task: str = "miniwob.click-test"
    seed: int = 0
    headless: bool = True
    slow_mo_ms: int = 0
    page_timeout_ms: int | None = None
    launch_timeout_s: float = 30.0
    reset_deadline_s: float = 120.0
    step_deadline_s: float = 60.0
    pre_observation_delay_s: float = 0.0
    max_candidates: int = 30
    max_axtree_chars: int = 4000
    max_state_chars: int = 600
    max_goal_values: int = 8
    scroll_actions: bool = True
    back_action: bool = True
    chat_actions: bool = False
    action_subsets: tuple[str, ...] = ("chat", "infeas", "bid", "nav")
    browser_path: str | None = None

    def __post_init__(self) -> None:
        if not self.task.strip() or self.task.startswith("browsergym/"):
            raise ValueError(f"task must be a BrowserGym id (no 'browsergym/'), got {self.task!r}")
        if isinstance(self.seed, bool) or not 0 <= self.seed < 2**31:
            raise ValueError(f"seed must be an int in [0, 2**31), got {self.seed!r}")
        positive = ["launch_timeout_s", "reset_deadline_s", "step_deadline_s", "max_candidates"]
        for name in [*positive, "max_axtree_chars", "max_state_chars"]:
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("slow_mo_ms", "pre_observation_delay_s", "max_goal_values"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.page_timeout_ms is not None and self.page_timeout_ms <= 0:
            raise ValueError(f"page_timeout_ms must be > 0 or None, got {self.page_timeout_ms}")
        if not self.action_subsets:
            raise ValueError("action_subsets must not be empty")

    @property
    def task_id(self) -> str:
        """The jitrl task id: ``miniwob:click-test``, ``webarena:310``, ... (``browsergym:ID``)."""
        for prefix, spec in BENCHMARK_PREFIXES.items():
            if self.task.startswith(prefix):
                return spec + self.task[len(prefix) :]
        return f"browsergym:{self.task}"


def _import_browsergym() -> Any:
    try:
        import browsergym.core  # noqa: F401
        import gymnasium
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        raise ImportError(f"BrowserGymEnv needs browsergym: {WEB_INSTALL_HINT}") from exc
    _quiet_overrides()
    return gymnasium


class _QuietOverrides(logging.Filter):
    """Drop BrowserGym's warning that slow_mo/timeout differ from the task's (we mean it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(_OVERRIDE_NOTICE)


def _quiet_overrides() -> None:
    env_logger = logging.getLogger("browsergym.core.env")
    if not any(isinstance(f, _QuietOverrides) for f in env_logger.filters):
        env_logger.addFilter(_QuietOverrides())


MAX_RESOLVABLE = 10_000
"""Most actions of one page whose labels resolve (every action a page allows, in practice)."""


def _display_url(url: str) -> str:
    """URLs as shown to the agent; local files (MiniWoB) by their name only."""
    return Path(url[len("file://") :]).name if url.startswith("file://") else url


class BrowserGymEnv(BaseTextEnv):
    """A BrowserGym task behind the :class:`jitrl.envs.base.TextEnv` protocol.

    ``info.labels`` name each candidate readably (``click button 'Submit'``); ``info.extra``
    carries ``"elements"`` (the actionable elements: bid, role, label, value, states), ``"url"``,
    ``"title"``, ``"axtree"`` (the page text), ``"last_action_error"`` and ``"task_info"`` (the
    validator's details). A label of any action the page allows now resolves to its action, also
    when it is not among the candidates shown (memory proposes labels of similar pages).

    Seeding: ``reset(seed=s)`` seeds the task and the seed sticks; ``reset()`` replays the last
    seed (initially ``config.seed``).
    """

    def __init__(self, config: BrowserGymConfig | None = None) -> None:
        self.config = config if config is not None else BrowserGymConfig()
        self.task_id = self.config.task_id
        self._gymnasium = _import_browsergym()
        from browsergym.core.action.highlevel import HighLevelActionSet

        self.executable = find_browser(self.config.browser_path)
        self._task_kwargs = task_kwargs(self.config.task)
        if f"browsergym/{self.config.task}" not in self._gymnasium.registry:
            raise ValueError(f"unknown BrowserGym task {self.config.task!r}")
        subsets = list(self.config.action_subsets)
        self._actions = HighLevelActionSet(subsets=subsets, multiaction=False, strict=True)
        self._watchdog = Watchdog(uuid.uuid4().hex)
        self._env: Any = None
        self._seed = self.config.seed
        self._elements: list[wp.Element] = []
        self._by_label: dict[str, str] = {}
        self._start_url = ""
        self._score = 0.0
        self._over = True

    @property
    def seed(self) -> int:
        """The seed the next ``reset()`` without a seed will use."""
        return self._seed

    def reset(self, *, seed: int | None = None, fold: Fold = "train") -> tuple[str, StepInfo]:
        """Start a new episode: fresh browsers, the task set up with ``seed`` (MiniWoB draws
        the instance from it; ``fold`` is ignored)."""
        if seed is not None:
            BrowserGymConfig(task=self.config.task, seed=seed)  # validates the seed
            self._seed = seed
        self._over = True
        env = self._ensure_env()
        seed_now = self._seed
        deadline = self.config.reset_deadline_s
        obs, _ = self._guarded("reset", deadline, lambda: env.reset(seed=seed_now))
        self._start_url = str(obs.get("url", ""))
        self._score = 0.0
        self._over = False
        return self._observe(obs, {})

    def step(self, action: str) -> StepResult:
        """Apply a BrowserGym action string; reward and the end come from the task's validator."""
        if self._over or self._env is None:
            raise RuntimeError("the episode is over (or was never started): call reset() first")
        env = self._env
        result = self._guarded("step", self.config.step_deadline_s, lambda: env.step(action))
        obs, reward, terminated, truncated, bg_info = result
        reward = float(reward)
        self._score += reward
        self._over = bool(terminated)
        text, info = self._observe(obs, bg_info.get("task_info") or {}, reward=reward)
        return text, reward, self._over, bool(truncated), info

    def is_valid(self, action: str) -> bool:
        """Whether ``action`` is the label of an action the page allows now, or parses as one
        allowed BrowserGym action on elements shown now."""
        if self._over or not action.strip():
            return False
        if action in self._by_label:
            return True
        try:
            self._actions.to_python_code(action)
        except Exception:  # pyparsing, NameError, ValueError: all mean "not an action"
            return False
        return wc.bids_exist(action, self._elements)

    def resolve(self, action: str) -> str:
        """The BrowserGym action a label names (a candidate shown, else any action the page
        allows now), else ``action`` unchanged."""
        if self._last_info.labels is not None and action in self._last_info.labels:
            return super().resolve(action)
        return self._by_label.get(action, action)

    def close(self) -> None:
        """Close the browsers (and kill any this environment left running)."""
        self._teardown()
        self._over = True

    def _ensure_env(self) -> Any:
        pw = playwright_for()
        pw.chromium.executable = self.executable
        pw.chromium.timeout_ms = self.config.launch_timeout_s * 1000.0
        pw.chromium.mark = self._watchdog.mark
        if self._env is None:
            kwargs: dict[str, Any] = {
                "headless": self.config.headless,
                "slow_mo": self.config.slow_mo_ms,
                "pre_observation_delay": self.config.pre_observation_delay_s,
                "action_mapping": self._actions.to_python_code,
                "task_kwargs": self._task_kwargs,
                "disable_env_checker": True,
            }
            if self.config.page_timeout_ms is not None:
                kwargs["timeout"] = self.config.page_timeout_ms
            self._env = self._gymnasium.make(f"browsergym/{self.config.task}", **kwargs)
        return self._env

    def _guarded(self, what: str, deadline: float, call: Callable[[], T]) -> T:
        """Run ``call`` under the watchdog; turn every failure into a :class:`WebEnvError`."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        try:
            with self._watchdog.deadline(deadline):
                result = call()
        except Exception as exc:
            fired = self._watchdog.fired
            self._teardown()
            if fired or isinstance(exc, PlaywrightTimeout):
                limit = f"its {deadline:g} s deadline" if fired else "a page timeout"
                raise WebTimeoutError(f"{self.task_id}: {what} exceeded {limit}: {exc}") from exc
            if isinstance(exc, (WebEnvError, *PROGRAMMING_ERRORS)):
                raise
            message = f"{self.task_id}: {what} failed: {type(exc).__name__}: {exc}"
            raise WebEnvError(message) from exc
        if self._watchdog.fired:
            self._teardown()
            raise WebTimeoutError(f"{self.task_id}: {what} exceeded its {deadline:g} s deadline")
        return result

    def _teardown(self) -> None:
        env, self._env = self._env, None
        if env is not None:
            try:
                env.close()
            except Exception as exc:  # the browser may be dead already
                logger.debug("closing BrowserGym env: %s", exc)
        kill_marked(self._watchdog.mark)

    def _observe(
        self, obs: dict[str, Any], task_info: dict[str, Any], reward: float = 0.0
    ) -> tuple[str, StepInfo]:
        goal = str(obs.get("goal", ""))
        url = str(obs.get("url", ""))
        titles = obs.get("open_pages_titles") or ("",)
        index = int(obs.get("active_page_index", [0])[0]) if len(titles) > 1 else 0
        title = str(titles[min(index, len(titles) - 1)])
        axtree = obs.get("axtree_object") or {}
        elements = wp.parse_page(axtree, obs.get("extra_element_properties"))
        self._elements = elements
        tree = wp.render_tree(elements, self.config.max_axtree_chars)
        error = str(obs.get("last_action_error", "") or "")
        lines = [f"Goal: {goal}", f"URL: {_display_url(url)}", f"Title: {title}"]
        lines += [f"Last action error: {error}"] if error else []
        text = "\n".join([*lines, "Page:", tree])
        structure = wp.page_structure(elements)
        state = State(
            text=wp.state_text(goal, title, structure, self.config.max_state_chars),
            key=wp.state_key(goal, title, structure),
        )
        shown = [] if self._over else self._candidates(goal, url, self.config.max_candidates)
        every = [] if self._over else self._candidates(goal, url, None)
        self._by_label = {c.label: c.action for c in reversed(every)}
        won = self._over and reward > 0
        info = StepInfo(
            candidates=tuple(c.action for c in shown),
            labels=tuple(c.label for c in shown),
            state=state,
            score=self._score,
            max_score=1.0,
            won=won,
            lost=self._over and not won,
            goal=goal,
            extra={
                "elements": _element_records(elements),
                "url": url,
                "title": title,
                "axtree": tree,
                "last_action_error": error,
                "task_info": task_info,
            },
        )
        return text, self._remember(info)

    def _candidates(self, goal: str, url: str, cap: int | None) -> list[wc.Candidate]:
        """The page's actions, best first: at most ``cap`` (``None``: every one)."""
        cfg = self.config
        extras = wc.global_actions(
            goal,
            scroll=cfg.scroll_actions,
            back=cfg.back_action and url != self._start_url,
            chat=cfg.chat_actions,
            max_values=cfg.max_goal_values,
        )
        return wc.generate_candidates(
            self._elements,
            goal,
            max_candidates=cap if cap is not None else MAX_RESOLVABLE,
            extras=extras,
            max_values=cfg.max_goal_values,
        )


def _element_records(elements: list[wp.Element]) -> list[dict[str, Any]]:
    """JSON-ready records of the elements an action can target."""
    return [
        {"bid": el.bid, "role": el.role, "label": el.label, "value": el.value, "states": el.states}
        for el in elements
        if el.bid is not None
        and (wp.is_click_target(el) or el.role in wp.FILL_ROLES | wp.SELECT_ROLES)
        and not el.in_select
    ]
