"""Value estimates over neighbours: ``Q(s, a)``, ``V(s)`` and advantages ``A = Q - V``."""

from __future__ import annotations

import math
from collections.abc import Sequence

from jitrl.method.config import ValueConfig
from jitrl.method.types import Estimates, Neighbour


def estimate(
    neighbours: Sequence[Neighbour], candidates: Sequence[str], config: ValueConfig
) -> Estimates:
    """Similarity-weighted Q, V and A for each candidate.

    - ``V(s)``: similarity-weighted mean return of all neighbours (0 with no neighbours).
    - ``Q(s, a)``: similarity-weighted mean return of the neighbours that took ``a``, plus
      ``seen_bonus * sqrt(ln|N| / n(s, a))``; for an action no neighbour took,
      ``max(V(s), unseen_floor) + alpha / (1 + |N|)``, an optimism that shrinks as evidence
      grows (``unseen_floor=None`` gives the plain ``V + alpha / (1 + |N|)``).
    - ``A = Q - V``, divided by ``max |A|`` when ``config.scale == "max_abs"``.

    With no neighbours every advantage is 0, so the policy is the LLM's own.
    """
    if not neighbours:
        zeros = tuple(0.0 for _ in candidates)
        return Estimates(q=zeros, counts=tuple(0 for _ in candidates), v=0.0, advantages=zeros)
    total_w = sum(nb.similarity for nb in neighbours)
    v = sum(nb.similarity * nb.experience.ret for nb in neighbours) / total_w
    sums: dict[str, float] = {}
    weights: dict[str, float] = {}
    counts: dict[str, int] = {}
    for nb in neighbours:
        action = nb.experience.action
        sums[action] = sums.get(action, 0.0) + nb.similarity * nb.experience.ret
        weights[action] = weights.get(action, 0.0) + nb.similarity
        counts[action] = counts.get(action, 0) + 1
    size = len(neighbours)
    base = v if config.unseen_floor is None else max(v, config.unseen_floor)
    unseen_q = base + config.alpha / (1.0 + size)
    q: list[float] = []
    for action in candidates:
        if action not in counts:
            q.append(unseen_q)
            continue
        bonus = config.seen_bonus * math.sqrt(math.log(size) / counts[action]) if size > 1 else 0.0
        q.append(sums[action] / weights[action] + bonus)
    adv = [qa - v for qa in q]
    if config.scale == "max_abs":
        peak = max((abs(a) for a in adv), default=0.0)
        if peak > 0.0:
            adv = [a / peak for a in adv]
    return Estimates(
        q=tuple(q),
        counts=tuple(counts.get(a, 0) for a in candidates),
        v=v,
        advantages=tuple(adv),
    )


def proposals(
    neighbours: Sequence[Neighbour], candidates: Sequence[str], config: ValueConfig
) -> list[str]:
    """Actions that neighbours took, that paid off, and that are not candidates yet.

    "Paid off" means a positive ``Q(s, a)`` that is at least ``V(s)`` (a non-negative advantage:
    with a single neighbour, or when every neighbour took the same action, ``A`` is exactly 0).
    Ordered by advantage, best first. The caller keeps only those that are valid now.
    """
    if not neighbours:
        return []
    seen = sorted({nb.experience.action for nb in neighbours} - set(candidates))
    if not seen:
        return []
    est = estimate(neighbours, seen, config)
    ranked = sorted(zip(est.advantages, est.q, seen, strict=False), key=lambda row: -row[0])
    return [action for adv, q, action in ranked if adv >= 0.0 and q > 0.0]
