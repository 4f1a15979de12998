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
- ``"browsergym:ID"``: any registered BrowserGym task id (``browsergym:miniwob.click-test``).
"""

from __future__ import annotations

import os
from pathlib import Path

from jitrl.envs.base import StepLimit, TextEnv

JERICHO_DIR_ENV_VAR = "JITRL_JERICHO_DIR"
JERICHO_DEFAULT_EXT = ".z5"
VALID_SPECS = (
    "'textworld', 'textworld:SEED', 'textworld-simple:SEED' (SEED an int >= 0), 'jericho:PATH', "
    "'miniwob:TASK', 'webarena:ID', 'webarena-lite:ID', 'workarena:NAME' or 'browsergym:ID'"
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


def make_env(spec: str, *, max_steps: int, seed: int) -> TextEnv:
    """Create the environment named by ``spec``, wrapped in :class:`StepLimit`.

    Args:
        spec: see the module docstring.
        max_steps: episode length limit (truncation).
        seed: the emulator seed for Jericho, the generation seed for ``"textworld"``; ignored by
            ``"textworld:SEED"``, whose game is fixed by ``SEED``.

    Raises:
        ValueError: unknown or malformed spec, or invalid ``max_steps``/``seed``.
        FileNotFoundError: a Jericho game file that does not exist.
        ImportError: the extra an adapter needs is not installed.
        jitrl.envs.errors.WebEnvError: a web benchmark's sites are not set up or unreachable.
    """
    kind, sep, target = spec.strip().partition(":")
    env: TextEnv
    if kind == "textworld" and not sep:
        from jitrl.envs.textworld import TextWorldConfig, TextWorldEnv

        env = TextWorldEnv(TextWorldConfig(seed=seed))
    elif kind == "textworld":
        from jitrl.envs.textworld import TextWorldConfig, TextWorldEnv

        env = TextWorldEnv(TextWorldConfig(seed=_parse_seed(target, spec)))
    elif kind == "textworld-simple":
        from jitrl.envs.textworld import TextWorldConfig, TextWorldEnv

        game_seed = _parse_seed(target, spec) if sep else seed
        env = TextWorldEnv(TextWorldConfig(seed=game_seed, kind="simple"))
    elif kind == "jericho" and target:
        from jitrl.envs.jericho import JerichoConfig, JerichoEnv

        env = JerichoEnv(_jericho_path(target), JerichoConfig(seed=seed))
    elif kind in WEB_TASK_PREFIXES and target:
        env = _web_env(kind, target, seed)
    else:
        raise ValueError(f"unknown environment spec {spec!r}; valid forms: {VALID_SPECS}")
    try:
        return StepLimit(env, max_steps)
    except ValueError:
        env.close()
        raise
