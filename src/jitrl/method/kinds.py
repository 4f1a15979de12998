"""What each kind of action does by itself on a task, pooled over every instance.

A decision's neighbours are a few dozen records, and most of them took the commonest kind of
action (``move``, ``click``); a rarer kind (``look``, ``examine``, ``close``) then has a handful
of returns there, too few to tell it from the others, while the task's memory holds hundreds.
:class:`KindValues` keeps, per task, the mean step reward (penalties included) of every kind of
action (:func:`~jitrl.method.similarity.action_kind`) and of all records, so that
:func:`~jitrl.method.values.estimate` can shrink a candidate's few returns towards
``V(s) + offset(kind)`` (:attr:`~jitrl.method.config.ValueConfig.kind_prior`).

Step rewards, not returns: a return also holds everything that followed, and a kind taken
late in long failing episodes would look bad for it. The mean step reward is what an action of
that kind does by itself (``look`` pays the revisit penalty, ``take`` the points it scores): the
part of an advantage that does not depend on the state, and so carries over to any instance.
"""

from __future__ import annotations

from jitrl.method.similarity import action_kind
from jitrl.method.types import Experience


class KindValues:
    """Running mean step rewards per task and per (task, kind of action), over the records
    added."""

    def __init__(self) -> None:
        self._totals: dict[str, list[float]] = {}
        self._kinds: dict[str, dict[str, list[float]]] = {}

    def add(self, exp: Experience) -> None:
        """Count one record's step reward for its task and for its action's kind."""
        kind = action_kind(exp.action)
        for tally in (
            self._totals.setdefault(exp.task_id, [0.0, 0.0]),
            self._kinds.setdefault(exp.task_id, {}).setdefault(kind, [0.0, 0.0]),
        ):
            tally[0] += 1.0
            tally[1] += exp.reward

    def offsets(self, task_id: str) -> dict[str, float]:
        """``kind -> mean step reward of the task's records of that kind - mean of all its
        records``; empty for a task with no records."""
        if task_id not in self._totals:
            return {}
        count, total = self._totals[task_id]
        mean = total / count
        return {kind: s / n - mean for kind, (n, s) in self._kinds[task_id].items()}

    def count(self, task_id: str, kind: str) -> int:
        """Records of ``kind`` on ``task_id`` seen so far."""
        return int(self._kinds.get(task_id, {}).get(kind, (0.0, 0.0))[0])
