"""Backtracking is not looping: the way back towards actions not yet tried in an episode.

The loop penalty (``ValueConfig.loop_penalty``) counts every time an action led back to a state
already visited in the episode. That treats two different things alike: a no-op, or a cycle,
which gains nothing; and the way out of a dead end, which leads back to a visited room because
it is the only way on. In a dead end every action is then penalised in turn, and the agent
cycles through them all before it takes the way back.

This module tells them apart from the episode's own record, as depth-first exploration does. A
state is on the *frontier* while some action offered in it has not been taken there in this
episode. The actions taken so far give a map of where each led (worlds that change state
deterministically give it exactly; elsewhere it is what was observed last). An action already
taken from the current state is *on the way back* when it leads to a state strictly closer, in
known steps, to the frontier than the current state is. Such an action is not counted as a
loop; every path of such actions ends on the frontier, so they cannot cycle.

Where the current state is itself on the frontier, nothing is on the way back: its untried
actions (valued by the optimism of the untried, ``ValueConfig.alpha``) come first.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    """One decision of the episode: where it was taken, what was offered and what was taken."""

    state: Hashable
    candidates: Sequence[str]
    action: str


def _moves(steps: Sequence[Step], current: Hashable) -> Iterator[tuple[Step, Hashable]]:
    """Each step with the state it led to (the next step's, the last one's ``current``)."""
    for t, step in enumerate(steps):
        yield step, steps[t + 1].state if t + 1 < len(steps) else current


def distances(
    steps: Sequence[Step], current: Hashable, offered: Sequence[str]
) -> dict[Hashable, int]:
    """Known steps from each visited state to the nearest frontier state (absent: none known).

    Args:
        steps: the episode's decisions so far, in order; ``steps[t]`` led to ``steps[t + 1]``'s
            state, and the last one to ``current``.
        current: the state of the decision about to be taken.
        offered: the candidates offered in ``current``.
    """
    offers: dict[Hashable, set[str]] = {}
    taken: dict[Hashable, set[str]] = {}
    into: dict[Hashable, set[Hashable]] = {}  # state -> the states with a known step into it
    for step, dest in _moves(steps, current):
        offers[step.state] = set(step.candidates)  # the latest offer in that state
        taken.setdefault(step.state, set()).add(step.action)
        into.setdefault(dest, set()).add(step.state)
    offers[current] = set(offered)
    frontier = [s for s, acts in offers.items() if acts - taken.get(s, set())]
    dist: dict[Hashable, int] = dict.fromkeys(frontier, 0)
    queue = deque(frontier)
    while queue:
        here = queue.popleft()
        for before in into.get(here, ()):
            if before not in dist:
                dist[before] = dist[here] + 1
                queue.append(before)
    return dist


def ways_back(steps: Sequence[Step], current: Hashable, offered: Sequence[str]) -> set[str]:
    """The actions taken before from ``current`` whose last known result is strictly closer to
    the frontier than ``current`` (see the module's docstring); empty where ``current`` is on
    the frontier or no frontier is known to be reachable."""
    dist = distances(steps, current, offered)
    here = dist.get(current)
    if here is None or here == 0:
        return set()
    led = {step.action: dest for step, dest in _moves(steps, current) if step.state == current}
    return {
        action
        for action, dest in led.items()  # where it led the last time
        if dest != current and dist.get(dest, here) < here and action in offered
    }


__all__ = ["Step", "distances", "ways_back"]
