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


def lambda_returns(
    rewards: Sequence[float], values: Sequence[float | None], gamma: float, lam: float
) -> list[float]:
    """``G_t = r_t + gamma * ((1 - lam) * V_{t+1} + lam * G_{t+1})``, backwards in O(T).

    ``values[t]`` is memory's value ``V`` of the state of decision ``t`` (``None`` where memory
    had no neighbours: the return then carries on whole, as with ``lam = 1``). ``lam = 1`` gives
    :func:`discounted_returns`; the last step is never bootstrapped (nothing is filled in past
    the end of an episode).
    """
    if len(values) != len(rewards):
        raise ValueError(f"{len(rewards)} rewards but {len(values)} values")
    returns = [0.0] * len(rewards)
    running = 0.0
    for t in range(len(rewards) - 1, -1, -1):
        after = values[t + 1] if t + 1 < len(rewards) else None
        ahead = running if after is None else (1.0 - lam) * after + lam * running
        running = float(rewards[t]) + gamma * ahead
        returns[t] = running
    return returns


def episode_returns(
    rewards: Sequence[float],
    *,
    failed: bool,
    config: ReturnConfig,
    states: Sequence[Hashable] = (),
    unit: float = 1.0,
    values: Sequence[float | None] = (),
) -> tuple[list[float], list[float]]:
    """Step rewards (with the penalties applied) and their returns.

    ``states`` (one hashable per decision, e.g. the exact key) enables the revisit penalty;
    ``values`` (memory's ``V`` of each decision's state, ``None`` where unknown) the
    bootstrapped returns of ``config.td_lambda < 1`` (:func:`lambda_returns`).
    """
    if states and len(states) != len(rewards):
        raise ValueError(f"{len(rewards)} rewards but {len(states)} states")
    flags = revisits(states)
    shaped = step_rewards(rewards, failed=failed, config=config, revisited=flags, unit=unit)
    return shaped, returns_of(shaped, config, values)


def returns_of(
    shaped: Sequence[float], config: ReturnConfig, values: Sequence[float | None] = ()
) -> list[float]:
    """The returns of shaped step rewards: :func:`lambda_returns` when ``config.td_lambda < 1``
    and ``values`` are given, else :func:`discounted_returns`."""
    if config.td_lambda < 1.0 and values:
        return lambda_returns(shaped, values, config.gamma, config.td_lambda)
    return discounted_returns(shaped, config.gamma)
