"""Who leads an episode, the model or memory: chosen per task by the episodes' own scores.

The calibration (:mod:`jitrl.method.calibration`) judges the model against memory's estimates.
Where memory is wrong as well (an instruction that never comes back, read by the model and
pooled by memory with the outcomes of other instructions), it cannot tell a model that helps
from one that hurts: both look wrong to it. The episodes' scores can. With
``PolicyConfig.pace = "bandit"`` (the default) every learning episode of a task is played by one
of two *leads*:

- ``model``: the model's logits at their calibrated weight (the method as stated);
- ``memory``: weight 0, memory's advantages and exploration alone decide (the model is not
  asked to score, which also saves its time).

The lead is chosen when the episode starts by a sliding-window UCB over the task's last
``pace_window`` finished learning episodes (Garivier and Moulines, 2011): the lead with the
highest ``mean + pace_bonus * s * sqrt(ln n / n_lead)``, where ``n`` is the episodes in the
window, ``n_lead`` those of the lead and ``s`` the standard deviation of all their values, so the
bonus is in the task's own scale. A lead absent from the window is played first (the model
before memory); ties, rounding included (:data:`TOLERANCE`), go to the model. The window
forgets old episodes because memory improves under both leads, so an old score says less about
a lead now. Both leads' episodes go into the same memory. An episode's value is the sum of
its rewards, the environment's own score of it: no penalties, whose size in reward units
changes as the task's unit is learnt, so that early episodes would be judged on another scale
than later ones. A test episode (memory frozen) plays the lead with the best mean in the
window, without exploration, and is not counted.

The learner counts an episode once it is stored (``Episode.finish``). The window lives in the
learner's process; a resumed run rebuilds it from its folder
(:func:`jitrl.running.run_folder.catch_up`). The model leads every episode of a learner
without memory, of a parallel run's worker and where memory does not correct by advantages
(``JitRL.paced``).
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from jitrl.method.config import PolicyConfig
from jitrl.method.types import Lead

LEADS: tuple[Lead, ...] = ("model", "memory")
"""In order of preference: the first one is played first and wins ties."""

TOLERANCE = 1e-9
"""Differences below this share of the window's largest score (at least 1) count as none: the
same score summed from fractional rewards in another order differs in its last bits, and must
neither make a spread nor win a tie."""


class PaceBandit:
    """The lead of each episode per task (``PolicyConfig.pace``).

    Args:
        config: the policy settings (``pace``, ``pace_window``, ``pace_bonus``).
    """

    def __init__(self, config: PolicyConfig) -> None:
        self.config = config
        self._history: dict[str, deque[tuple[Lead, float]]] = {}

    @property
    def active(self) -> bool:
        """Whether leads are chosen (``pace = "bandit"``); otherwise the model always leads."""
        return self.config.pace == "bandit"

    def choose(self, task_id: str, *, explore: bool = True) -> Lead:
        """The lead of the next episode of ``task_id``; ``explore=False`` takes the best mean
        of the leads in the window (a test episode; the model when the window is empty)."""
        if not self.active:
            return "model"
        window = self._history.get(task_id, deque())
        values = {lead: [v for who, v in window if who == lead] for lead in LEADS}
        present = [lead for lead in LEADS if values[lead]]
        if not present:
            return "model"
        if explore and len(present) < len(LEADS):
            return next(lead for lead in LEADS if not values[lead])
        scale = max(1.0, max(abs(v) for _, v in window))
        spread = float(np.std([v for _, v in window]))
        spread = spread if spread > TOLERANCE * scale else 0.0
        n = len(window)

        def index(lead: Lead) -> float:
            mine = values[lead]
            bonus = self.config.pace_bonus * spread * math.sqrt(math.log(n) / len(mine))
            return float(np.mean(mine)) + (bonus if explore else 0.0)

        best = present[0]
        for lead in present[1:]:  # a later lead must be better by more than rounding
            if index(lead) > index(best) + TOLERANCE * scale:
                best = lead
        return best

    def observe(self, task_id: str, lead: Lead, value: float) -> None:
        """Count a finished learning episode of ``task_id`` played by ``lead``."""
        if not math.isfinite(value):
            raise ValueError(f"an episode's value must be finite, got {value}")
        window = self._history.setdefault(task_id, deque(maxlen=self.config.pace_window))
        window.append((lead, float(value)))

    def window(self, task_id: str) -> tuple[tuple[Lead, float], ...]:
        """The window's episodes of ``task_id``, oldest first: who led each and its score."""
        return tuple(self._history.get(task_id, ()))

    def played(self, task_id: str) -> dict[Lead, int]:
        """How many of the window's episodes each lead played."""
        window = self._history.get(task_id, ())
        return {lead: sum(1 for who, _ in window if who == lead) for lead in LEADS}


__all__ = ["LEADS", "Lead", "PaceBandit"]
