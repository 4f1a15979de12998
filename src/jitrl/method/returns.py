"""Discounted returns of a finished episode."""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence

from jitrl.method.config import ReturnConfig


def revisits(states: Sequence[Hashable]) -> list[bool]:
    """``flags[t]``: step ``t`` led back to a state seen at or before ``t`` in the episode.

    ``states[t]`` is the state in which decision ``t`` was taken, so step ``t`` leads to
    ``states[t + 1]``; the last step's destination is unknown and never flagged.
    """
    seen: set[Hashable] = set()
    flags = []
    for t, state in enumerate(states):
        seen.add(state)
        flags.append(t + 1 < len(states) and states[t + 1] in seen)
    return flags


class RewardUnits:
    """The size of a typical reward, per task: the mean of the non-zero rewards' magnitudes seen
    in finished episodes (1 until the first one). Penalties are counted in this unit."""

    def __init__(self, config: ReturnConfig) -> None:
        self.config = config
        self._sums: dict[str, tuple[float, int]] = {}

    def unit(self, task_id: str) -> float:
        """One reward unit of ``task_id`` (``config.reward_unit`` when it is fixed)."""
        if self.config.reward_unit is not None:
            return self.config.reward_unit
        total, count = self._sums.get(task_id, (0.0, 0))
        return total / count if count else 1.0

    def observe(self, task_id: str, rewards: Sequence[float]) -> None:
        """Count a finished episode's raw rewards."""
        seen = [abs(float(r)) for r in rewards if r != 0.0 and math.isfinite(r)]
        if seen:
            total, count = self._sums.get(task_id, (0.0, 0))
            self._sums[task_id] = (total + sum(seen), count + len(seen))


def step_rewards(
    rewards: Sequence[float],
    *,
    failed: bool,
    config: ReturnConfig,
    revisited: Sequence[bool] = (),
    unit: float = 1.0,
) -> list[float]:
    """The rewards that enter the returns: the raw ones, less the revisit penalty on steps that
    looped back (``revisited``) and the terminal penalty on failure, both times ``unit``."""
    out = [float(r) for r in rewards]
    for i, r in enumerate(out):
        if not math.isfinite(r):
            raise ValueError(f"reward at step {i} is not finite: {r}")
    for i, looped in enumerate(revisited):
        if looped:
            out[i] -= config.revisit_penalty * unit
    if failed and out:
        out[-1] -= config.terminal_penalty * unit
    return out


def discounted_returns(rewards: Sequence[float], gamma: float) -> list[float]:
    """``G_t = sum_{u >= t} gamma^(u - t) r_u`` for every step, computed backwards in O(T).

    Steps after the end of the episode contribute nothing: a truncated episode is not
    bootstrapped, and no missing reward is filled in.
    """
    returns = [0.0] * len(rewards)
    running = 0.0
    for t in range(len(rewards) - 1, -1, -1):
        running = float(rewards[t]) + gamma * running
        returns[t] = running
    return returns


def episode_returns(
    rewards: Sequence[float],
    *,
    failed: bool,
    config: ReturnConfig,
    states: Sequence[Hashable] = (),
    unit: float = 1.0,
) -> tuple[list[float], list[float]]:
    """Step rewards (with the penalties applied) and their discounted returns.

    ``states`` (one hashable per decision, e.g. the exact key) enables the revisit penalty.
    """
    if states and len(states) != len(rewards):
        raise ValueError(f"{len(rewards)} rewards but {len(states)} states")
    flags = revisits(states)
    shaped = step_rewards(rewards, failed=failed, config=config, revisited=flags, unit=unit)
    return shaped, discounted_returns(shaped, config.gamma)
