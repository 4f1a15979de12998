"""Prompts for text games: a fixed system part (cached by backends) and a short per-step part.

Prefill dominates a decision on a CPU, so the per-step part is kept short: location, inventory,
the last few actions and a trimmed observation.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from jitrl.envs.base import StepInfo
from jitrl.envs.factory import is_web_spec
from jitrl.llm.base import Prompt
from jitrl.method.types import Neighbour

DEFAULT_SYSTEM = (
    "You are playing a text adventure game. Read where you are and what you see, "
    "then answer with the next command that explores, collects useful objects and earns points."
)


@dataclass(frozen=True)
class PromptConfig:
    """How observations become prompts."""

    system: str = DEFAULT_SYSTEM
    """Instructions (the fixed, cached part of the prompt)."""
    history: int = 3
    """Number of recent actions shown."""
    max_observation_chars: int = 300
    """The observation is cut to this many characters (from the start)."""
    answer_prefix: str = "Command:"
    """Text that opens the answer; candidates are scored after it."""
    experience_header: str = "Past experience in similar situations (command: mean return, times):"
    """Heading of the in-context memory block (``icl`` agent): one line per neighbour follows."""
    return_decimals: int = 1
    """Decimals of the returns written into the in-context memory block."""
    show_goal: bool = False
    """Open the per-step part with the environment's goal (``info.goal``), for tasks whose goal
    changes from instance to instance; off for games with a fixed objective."""

    def __post_init__(self) -> None:
        if self.history < 0:
            raise ValueError("history must be >= 0")
        if self.max_observation_chars < 1:
            raise ValueError("max_observation_chars must be >= 1")
        if self.return_decimals < 0:
            raise ValueError("return_decimals must be >= 0")


WEB_SYSTEM = (
    "You are a web agent. Read the goal and the page's elements, then answer with the next "
    "action that makes progress towards the goal."
)
WEB_OBSERVATION_CHARS = 2000
"""Web observations (goal plus accessibility tree) need more room than a game's text."""


GOAL_KINDS = ("twx", "scienceworld")
"""Environment kinds whose goal changes from instance to instance: prompts show it."""


def prompt_config_for(env_spec: str) -> PromptConfig:
    """The prompt settings that suit an environment: web tasks get their own instructions, and
    environments whose instances have their own goal show it."""
    if env_spec.strip().partition(":")[0] in GOAL_KINDS:
        return PromptConfig(show_goal=True)
    if is_web_spec(env_spec):
        return PromptConfig(
            system=WEB_SYSTEM,
            max_observation_chars=WEB_OBSERVATION_CHARS,
            answer_prefix="Action:",
        )
    return PromptConfig()


_SPACES = re.compile(r"\s+")


def build_prompt(
    observation: str,
    info: StepInfo,
    history: Sequence[str],
    config: PromptConfig | None = None,
    experience: Sequence[Neighbour] = (),
) -> Prompt:
    """The prompt for one step of a text game.

    ``experience`` (the ``icl`` agent's retrieved neighbours) is written as one line per command
    that neighbours took, most similar first: the mean discounted return that followed it and
    how many neighbours took it (one line per command keeps the prompt, and its cost, short).
    """
    cfg = config or PromptConfig()
    obs = _SPACES.sub(" ", observation).strip()[: cfg.max_observation_chars]
    lines = []
    if cfg.show_goal and info.goal:
        lines.append(f"Task: {_SPACES.sub(' ', info.goal).strip()}")
    if info.location:
        lines.append(f"Location: {info.location}")
    inventory = info.inventory
    if inventory is not None:
        lines.append(f"Inventory: {', '.join(inventory) if inventory else 'nothing'}")
    if cfg.history and history:
        lines.append(f"Recent commands: {', '.join(history[-cfg.history :])}")
    lines.append(f"Observation: {obs}")
    if experience:
        lines.append(cfg.experience_header)
        lines += _experience_lines(experience, cfg.return_decimals)
    return Prompt(system=cfg.system, user="\n".join(lines), answer_prefix=cfg.answer_prefix)


def _experience_lines(experience: Sequence[Neighbour], decimals: int) -> list[str]:
    returns: dict[str, list[float]] = {}
    for nb in sorted(experience, key=lambda n: -n.similarity):
        returns.setdefault(nb.experience.action, []).append(nb.experience.ret)
    return [
        f"- {action}: {sum(rets) / len(rets):.{decimals}f}, {len(rets)}x"
        for action, rets in returns.items()
    ]
