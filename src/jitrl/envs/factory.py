"""Build a step-limited environment from a short spec string (as used on the command line).

Specs:

- ``"textworld"``: the default custom TextWorld game generated from ``seed``;
- ``"textworld:SEED"``: the default custom TextWorld game generated from ``SEED``;
- ``"textworld-simple:SEED"``: TextWorld's ``tw-simple`` house (dense rewards) from ``SEED``; the
  house is the same for every seed, the goal and its rewards change;
- ``"jericho:PATH"``: a Jericho game file; a bare name without suffix or folder (``jericho:zork1``)
  is looked up as ``$JITRL_JERICHO_DIR/<name>.z5``;
- ``"miniwob:TASK"``: a MiniWoB++ task in a headless browser (``miniwob:click-test``);
  ``"miniwob:all"`` is a suite: :func:`expand_suite` lists its specs;
- ``"webarena:ID"``, ``"webarena-lite:ID"``, ``"workarena:NAME"``: tasks on sites the user hosts
  (see :mod:`jitrl.envs.web_benchmarks` for the variables they need);
- ``"twx:GAME[?k=v,...]"``: a TextWorldExpress game; every episode a new instance of the fold
  (:mod:`jitrl.envs.twx`);
- ``"scienceworld:TASK"``: a ScienceWorld task; every episode a new variation
  (:mod:`jitrl.envs.scienceworld`);
- ``"browsergym:ID"``: any registered BrowserGym task id (``browsergym:miniwob.click-test``);
- ``"module:factory"``: your own environment: ``factory(max_steps=..., seed=...,
  privileged_key=...)`` (keywords it does not take are left out) returns a
  :class:`~jitrl.envs.base.TextEnv`.
"""

from __future__ import annotations

import importlib
import inspect
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from jitrl.envs.base import StepLimit, TextEnv

JERICHO_DIR_ENV_VAR = "JITRL_JERICHO_DIR"
JERICHO_DEFAULT_EXT = ".z5"
VALID_SPECS = (
    "'textworld', 'textworld:SEED', 'textworld-simple:SEED' (SEED an int >= 0), 'jericho:PATH', "
    "'twx:GAME[?k=v,...]', 'scienceworld:TASK', "
    "'miniwob:TASK', 'webarena:ID', 'webarena-lite:ID', 'workarena:NAME', 'browsergym:ID' or "
    "'module:factory'"
)
WEB_TASK_PREFIXES = {
    "miniwob": "miniwob.",
    "webarena": "webarena.",
    "webarena-lite": "webarenalite.",
    "workarena": "workarena.servicenow.",
    "browsergym": "",
}
"""Spec kind -> BrowserGym task-id prefix."""
HOSTED_WEB_KINDS = frozenset({"webarena", "webarena-lite", "workarena"})
"""Benchmarks whose tasks may be answered in the chat and whose pages load slower."""
SUITE_TARGET = "all"
KNOWN_KINDS = frozenset(
    {"textworld", "textworld-simple", "jericho", "twx", "scienceworld", *WEB_TASK_PREFIXES}
)
"""Spec kinds built in (anything else may be ``module:factory``)."""
JERICHO_SUFFIXES = (".z3", ".z4", ".z5", ".z8")
"""Game files that ``jericho:DIR`` picks up in a folder."""
TEXTWORLD_SUITES = {"textworld": "tw", "textworld-simple": "tws"}
"""TextWorld suite kinds and the slug prefix of their games."""


def is_web_spec(spec: str) -> bool:
    """Whether an environment spec names a web task (BrowserGym)."""
    return spec.strip().partition(":")[0] in WEB_TASK_PREFIXES


def _jericho_path(target: str) -> Path:
    """Resolve a ``jericho:`` target: a path, or a bare game name under ``$JITRL_JERICHO_DIR``."""
    path = Path(target).expanduser()
    is_bare_name = not path.suffix and len(path.parts) == 1
    if is_bare_name and not path.exists():
        folder = os.environ.get(JERICHO_DIR_ENV_VAR)
        if not folder:
            raise ValueError(
                f"jericho:{target} is a bare game name but {JERICHO_DIR_ENV_VAR} is not set; "
                "give a path to the game file instead"
            )
        return Path(folder).expanduser() / f"{target}{JERICHO_DEFAULT_EXT}"
    return path


def _parse_seed(text: str, spec: str) -> int:
    if not text.isdigit():
        raise ValueError(
            f"bad environment spec {spec!r}: seed must be an int >= 0; valid forms: {VALID_SPECS}"
        )
    return int(text)


def _web_env(kind: str, target: str, seed: int) -> TextEnv:
    """A BrowserGym environment for ``kind:target`` (imports the browser stack only now)."""
    from jitrl.envs.browsergym import BrowserGymConfig, BrowserGymEnv

    if target == SUITE_TARGET:
        raise ValueError(f"{kind}:{target} is a suite, not one task: expand it with expand_suite()")
    hosted = kind in HOSTED_WEB_KINDS
    config = BrowserGymConfig(
        task=WEB_TASK_PREFIXES[kind] + target,
        seed=seed,
        chat_actions=hosted,
        pre_observation_delay_s=0.5 if hosted else 0.0,
    )
    return BrowserGymEnv(config)


def expand_suite(spec: str) -> list[str]:
    """The specs of a suite (``miniwob:all`` -> every MiniWoB++ task); ``[spec]`` otherwise."""
    kind, _, target = spec.strip().partition(":")
    if kind == "miniwob" and target == SUITE_TARGET:
        from jitrl.envs.web_benchmarks import miniwob_tasks

        return [f"miniwob:{task}" for task in miniwob_tasks()]
    return [spec]


def _user_env(spec: str, **options: Any) -> TextEnv | None:
    """``module:factory`` called with the options it accepts; ``None`` if ``spec`` is not one."""
    module, _, attr = spec.partition(":")
    if ("." not in module and module in KNOWN_KINDS) or not attr.isidentifier():
        return None
    try:
        factory = getattr(importlib.import_module(module), attr)
    except ImportError:
        return None
    except AttributeError:
        raise ValueError(f"module {module!r} has no environment factory {attr!r}") from None
    accepted = inspect.signature(factory).parameters
    takes_all = any(p.kind is p.VAR_KEYWORD for p in accepted.values())
    env = factory(**{k: v for k, v in options.items() if takes_all or k in accepted})
    if not isinstance(env, TextEnv):
        raise ValueError(f"{spec} returned {type(env).__name__}, not a TextEnv")
    return env


@dataclass(frozen=True)
class _Keys:
    """Which exact key the built-in text games give their states."""

    privileged: bool
    view: bool


def _textworld(target: str, spec: str, seed: int, keys: _Keys, kind: str) -> TextEnv:
    from jitrl.envs.textworld import TextWorldConfig, TextWorldEnv

    game_seed = _parse_seed(target, spec) if target else seed
    simple = kind == "textworld-simple"
    config = TextWorldConfig(
        seed=game_seed,
        kind="simple" if simple else "custom",
        privileged_key=keys.privileged,
        view_key=keys.view,
    )
    return TextWorldEnv(config)


def _built_in(spec: str, seed: int, keys: _Keys) -> TextEnv | None:
    """The environment of a built-in spec kind, ``None`` for any other spec."""
    kind, sep, target = spec.strip().partition(":")
    if kind in TEXTWORLD_SUITES and (target or not sep):
        return _textworld(target, spec, seed, keys, kind)
    if kind == "jericho" and target:
        from jitrl.envs.jericho import JerichoConfig, JerichoEnv

        config = JerichoConfig(seed=seed, privileged_key=keys.privileged, view_key=keys.view)
        return JerichoEnv(_jericho_path(target), config)
    if kind == "twx" and target:
        from jitrl.envs.twx import TWXEnv, parse_spec

        return TWXEnv(replace(parse_spec(target), view_key=keys.view))
    if kind == "scienceworld" and target:
        from jitrl.envs.scienceworld import ScienceWorldConfig, ScienceWorldEnv

        return ScienceWorldEnv(ScienceWorldConfig(task=target, view_key=keys.view))
    if kind in WEB_TASK_PREFIXES and target:
        return _web_env(kind, target, seed)
    return None


def make_env(
    spec: str, *, max_steps: int, seed: int, privileged_key: bool = False, view_key: bool = True
) -> TextEnv:
    """Create the environment named by ``spec``, wrapped in :class:`StepLimit`.

    Args:
        spec: see the module docstring.
        max_steps: episode length limit (truncation).
        seed: the emulator seed for Jericho, the generation seed for ``"textworld"``; ignored by
            ``"textworld:SEED"``, whose game is fixed by ``SEED``.
        privileged_key: states carry the emulator's exact key (Jericho, TextWorld).
        view_key: without it, states of text games carry their view as key (what the agent
            reads of the place; :mod:`jitrl.envs.game_text`).

    Raises:
        ValueError: unknown or malformed spec, or invalid ``max_steps``/``seed``.
        FileNotFoundError: a Jericho game file that does not exist.
        ImportError: the extra an adapter needs is not installed.
        jitrl.envs.errors.WebEnvError: a web benchmark's sites are not set up or unreachable.
    """
    env = _built_in(spec, seed, _Keys(privileged_key, view_key))
    if env is None:
        env = _user_env(spec.strip(), max_steps=max_steps, seed=seed, privileged_key=privileged_key)
    if env is None:
        raise ValueError(f"unknown environment spec {spec!r}; valid forms: {VALID_SPECS}")
    try:
        return StepLimit(env, max_steps)
    except ValueError:
        env.close()
        raise
