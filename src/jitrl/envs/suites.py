"""Suites: one command-line spec that names several environments (a folder of games, K
generated games, every MiniWoB task)."""

from __future__ import annotations

import re
from pathlib import Path

from jitrl.envs.factory import (
    JERICHO_SUFFIXES,
    TEXTWORLD_SUITES,
    WEB_TASK_PREFIXES,
    expand_suite,
)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "env"


def expand_envs(spec: str, game_seed: int = 1) -> dict[str, str]:
    """Turn a comma-separated list of suite specs into environment slug -> single-game spec.

    - ``jericho:DIR``: every game file in the folder (``.z3/.z4/.z5/.z8``);
    - ``jericho:PATH`` or ``jericho:NAME``: one game;
    - ``textworld:K``: K generated games with generation seeds ``game_seed .. game_seed+K-1``;
    - ``textworld``: one generated game from ``game_seed``;
    - ``textworld-simple:K``: K ``tw-simple`` games (one house, K goals), seeds as above;
    - ``miniwob:TASK`` or ``miniwob:all``; ``webarena:ID``, ``workarena:NAME`` (hosted sites).
    """
    envs: dict[str, str] = {}
    for part in (p.strip() for p in spec.split(",")):
        kind, sep, target = part.partition(":")
        if kind == "jericho" and target and Path(target).expanduser().is_dir():
            folder = Path(target).expanduser()
            games = sorted(p for p in folder.iterdir() if p.suffix in JERICHO_SUFFIXES)
            if not games:
                kinds = ", ".join(JERICHO_SUFFIXES)
                raise ValueError(f"no Jericho game files ({kinds}) in {folder}")
            envs.update({g.stem: f"jericho:{g}" for g in games})
        elif kind == "jericho" and target:
            envs[_slug(Path(target).stem)] = part
        elif kind in ("twx", "scienceworld") and target:
            envs[_slug(target)] = part
        elif kind in WEB_TASK_PREFIXES and target:
            envs.update({s.partition(":")[2]: s for s in expand_suite(part)})
        elif kind in TEXTWORLD_SUITES:
            count = 1 if not sep else _positive_int(target, part)
            prefix = TEXTWORLD_SUITES[kind]
            seeds = range(game_seed, game_seed + count)
            envs.update({f"{prefix}{s}": f"{kind}:{s}" for s in seeds})
        else:
            raise ValueError(
                f"unknown suite {part!r}: use jericho:DIR, jericho:PATH, textworld:K, "
                "textworld-simple:K, twx:GAME, scienceworld:TASK, miniwob:TASK, miniwob:all"
            )
    return envs


def _positive_int(text: str, spec: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"bad suite {spec!r}: K must be an int >= 1")
    return int(text)
