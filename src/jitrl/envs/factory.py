"""Build a step-limited environment from a short spec string (as used on the command line).

Specs:

- ``"textworld"``: the default custom TextWorld game generated from ``seed``;
- ``"textworld:SEED"``: the default custom TextWorld game generated from ``SEED``;
- ``"textworld-simple:SEED"``: TextWorld's ``tw-simple`` house (dense rewards) from ``SEED``; the
  house is the same for every seed, the goal and its rewards change;
- ``"jericho:PATH"``: a Jericho game file; a bare name without suffix or folder (``jericho:zork1``)
  is looked up as ``$JITRL_JERICHO_DIR/<name>.z5``.
"""

from __future__ import annotations

import os
from pathlib import Path

from jitrl.envs.base import StepLimit, TextEnv

JERICHO_DIR_ENV_VAR = "JITRL_JERICHO_DIR"
JERICHO_DEFAULT_EXT = ".z5"
VALID_SPECS = (
    "'textworld', 'textworld:SEED', 'textworld-simple:SEED' (SEED an int >= 0) or 'jericho:PATH'"
)


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
    else:
        raise ValueError(f"unknown environment spec {spec!r}; valid forms: {VALID_SPECS}")
    try:
        return StepLimit(env, max_steps)
    except ValueError:
        env.close()
        raise
