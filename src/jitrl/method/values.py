"""Value estimates over neighbours: ``Q(s, a)``, ``V(s)`` and advantages ``A = Q - V``."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from jitrl.method.config import ValueConfig
from jitrl.method.similarity import action_similarity
from jitrl.method.types import Estimates, Neighbour


def estimate(
    neighbours: Sequence[Neighbour],
    candidates: Sequence[str],
    config: ValueConfig,
    looped: Mapping[str, int] | None = None,
) -> Estimates:
    """Similarity-weighted Q, V and A for each candidate.

    - ``V(s)``: similarity-weighted mean return of all neighbours (0 with no neighbours).
    - ``Q(s, a)``: similarity-weighted mean return of the neighbours that took ``a``, backed
      off to those that took a similar action (:func:`~jitrl.method.similarity.action_similarity`,
      weighted by state times action similarity; see :func:`_backoff`), plus
      ``seen_bonus * sqrt(ln|N| / n(s, a))``; for an action no neighbour's action matches,
      ``max(V(s), unseen_floor) + alpha / (1 + |N|)``, an optimism that shrinks as evidence
      grows (``unseen_floor=None`` gives the plain ``V + alpha / (1 + |N|)``).
    - ``n(s, a)``: the number of neighbours whose action matches ``a``.
    - ``Q(s, a)`` is lowered by ``loop_penalty`` per time ``a`` looped from this state in the
      current episode (``looped``).
    - ``A = Q - V``, divided by ``max |A|`` when ``config.scale == "max_abs"``.

    With no neighbours every advantage is 0, so the policy is the LLM's own.
    """
    loops = looped or {}
    if not neighbours:
        zeros = tuple(0.0 for _ in candidates)
        return Estimates(q=zeros, counts=tuple(0 for _ in candidates), v=0.0, advantages=zeros)
    total_w = sum(nb.similarity for nb in neighbours)
    v = sum(nb.similarity * nb.experience.ret for nb in neighbours) / total_w
    by_action: dict[str, list[Neighbour]] = {}
    for nb in neighbours:
        by_action.setdefault(nb.experience.action, []).append(nb)
    size = len(neighbours)
    base = v if config.unseen_floor is None else max(v, config.unseen_floor)
    unseen_q = base + config.alpha / (1.0 + size)
    q: list[float] = []
    counts: list[int] = []
    for action in candidates:
        exact = by_action.get(action, [])
        similar = _similar(action, by_action, config)
        count = len(exact) + sum(len(group) for group, _ in similar)
        counts.append(count)
        tabu = config.loop_penalty * loops.get(action, 0)
        if count == 0:
            q.append(unseen_q - tabu)
            continue
        bonus = config.seen_bonus * math.sqrt(math.log(size) / count) if size > 1 else 0.0
        q.append(_backoff(exact, similar, config.action_prior) + bonus - tabu)
    adv = [qa - v for qa in q]
    if config.scale == "max_abs":
        peak = max((abs(a) for a in adv), default=0.0)
        if peak > 0.0:
            adv = [a / peak for a in adv]
    return Estimates(q=tuple(q), counts=tuple(counts), v=v, advantages=tuple(adv))


def _similar(
    action: str, by_action: Mapping[str, list[Neighbour]], config: ValueConfig
) -> list[tuple[list[Neighbour], float]]:
    """The neighbours that took another action similar to ``action``, with that similarity."""
    out = []
    for taken, group in by_action.items():
        if taken == action:
            continue
        match = action_similarity(action, taken, config.action_similarity, config.action_threshold)
        if match > 0.0:
            out.append((group, match))
    return out


def _backoff(
    exact: Sequence[Neighbour], similar: Sequence[tuple[list[Neighbour], float]], prior: float
) -> float:
    """``Q`` from the neighbours that took the action itself, backed off to those that took
    similar actions: ``(W_e Q_e + prior Q_s) / (W_e + prior)``. With no evidence of its own the
    similar actions decide; as its own evidence grows (``W_e``, similarity-weighted) they fade."""
    w_exact = sum(nb.similarity for nb in exact)
    s_exact = sum(nb.similarity * nb.experience.ret for nb in exact)
    w_similar = sum(nb.similarity * match for group, match in similar for nb in group)
    if w_similar == 0.0:
        return s_exact / w_exact
    s_similar = sum(
        nb.similarity * match * nb.experience.ret for group, match in similar for nb in group
    )
    q_similar = s_similar / w_similar
    if w_exact == 0.0:
        return q_similar
    return (s_exact + prior * q_similar) / (w_exact + prior)


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


def exploration(
    estimates: Estimates,
    candidates: Sequence[str],
    looped: Mapping[str, int],
    config: ValueConfig,
) -> tuple[float, ...]:
    """Only the exploration part of the advantages: the optimism of actions no neighbour took
    (``Q_unseen - V``) and ``-loop_penalty`` per time an action looped from this state in this
    episode. The ``icl`` agent adds these to the logits so that it explores and avoids loops as
    ``jitrl`` does, while memory's returns reach it only through the prompt."""
    v = estimates.v
    out = []
    for action, q, n in zip(candidates, estimates.q, estimates.counts, strict=True):
        tabu = config.loop_penalty * looped.get(action, 0)
        out.append((q + tabu - v if n == 0 else 0.0) - tabu)
    if config.scale == "max_abs":
        peak = max((abs(a) for a in out), default=0.0)
        if peak > 0.0:
            out = [a / peak for a in out]
    return tuple(out)
