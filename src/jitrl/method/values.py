"""Value estimates over neighbours: ``Q(s, a)``, ``V(s)`` and advantages ``A = Q - V``."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from jitrl.method.config import ValueConfig
from jitrl.method.similarity import action_kind, action_similarity
from jitrl.method.types import Estimates, Neighbour


def estimate(
    neighbours: Sequence[Neighbour],
    candidates: Sequence[str],
    config: ValueConfig,
    looped: Mapping[str, float] | None = None,
    kind_offsets: Mapping[str, float] | None = None,
) -> Estimates:
    """Similarity-weighted Q, V and A for each candidate.

    - ``V(s)``: similarity-weighted mean return of all neighbours (0 with no neighbours).
    - ``Q(s, a)``: similarity-weighted mean return of the neighbours that took ``a``, backed
      off to those that took a similar action (:func:`~jitrl.method.similarity.action_similarity`,
      weighted by state times action similarity; see :func:`_backoff`), plus
      ``seen_bonus * sqrt(ln|N| / n(s, a))``; for an action no neighbour's action matches,
      ``max(V(s), unseen_floor) + alpha / (1 + |N|)``, an optimism that shrinks as evidence
      grows (``unseen_floor=None`` gives the plain ``V + alpha / (1 + |N|)``), backed off to
      the returns of the neighbours' actions of the same kind when ``kind_backoff`` is on.
    - With ``kind_prior`` and ``kind_offsets`` (:meth:`jitrl.method.kinds.KindValues.offsets`)
      giving the candidate's kind, ``Q`` is shrunk towards ``V(s) + offset``: ``(W Q +
      kind_prior (V + offset)) / (W + kind_prior)``, with ``W`` the candidate's similarity-weighted
      evidence (``action_prior`` for an untried one, the weight of its optimism).
    - With ``action_exclusive``, a neighbour's action that is itself among ``candidates``
      stands in for no other candidate: offered side by side, they are alternatives.
    - ``n(s, a)``: the number of neighbours whose action matches ``a``.
    - ``Q(s, a)`` is lowered by ``loop_penalty * looped[a]``: ``looped`` counts the times ``a``
      looped from this state in the current episode, in reward units.
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
    optimism = base + config.alpha / (1.0 + size)
    kinds = _kind_values(neighbours, config.action_prior, optimism) if config.kind_backoff else {}
    stand_ins = by_action
    if config.action_exclusive:  # an offered action keeps its evidence to itself
        offered = set(candidates)
        stand_ins = {a: group for a, group in by_action.items() if a not in offered}
    ctx = _Context(config, by_action, stand_ins, v, size, optimism, kinds, kind_offsets or {})
    q: list[float] = []
    counts: list[int] = []
    for action in candidates:
        value, count = _candidate_value(action, ctx)
        counts.append(count)
        q.append(value - config.loop_penalty * loops.get(action, 0))
    adv = [qa - v for qa in q]
    if config.scale == "max_abs":
        peak = max((abs(a) for a in adv), default=0.0)
        if peak > 0.0:
            adv = [a / peak for a in adv]
    return Estimates(q=tuple(q), counts=tuple(counts), v=v, advantages=tuple(adv))


@dataclass(frozen=True)
class _Context:
    """What every candidate of one decision is valued against."""

    config: ValueConfig
    by_action: Mapping[str, list[Neighbour]]
    stand_ins: Mapping[str, list[Neighbour]]
    """The neighbours' actions that may stand in for a similar candidate (``action_exclusive``:
    those not offered themselves)."""
    v: float
    size: int
    optimism: float
    kinds: Mapping[str, float]
    """Per kind, the value of an untried action (``kind_backoff``)."""
    offsets: Mapping[str, float]
    """Per kind, its task-wide mean step reward minus the task's (``kind_prior``)."""


def _candidate_value(action: str, ctx: _Context) -> tuple[float, int]:
    """``Q(s, action)`` before the loop penalty, and ``n(s, action)``."""
    config = ctx.config
    exact = ctx.by_action.get(action, [])
    similar = _similar(action, ctx.stand_ins, config)
    count = len(exact) + sum(len(group) for group, _ in similar)
    kind = action_kind(action)
    unseen_q = ctx.kinds.get(kind, ctx.optimism)
    if count == 0:
        value, weight = unseen_q, config.action_prior
    else:
        size = ctx.size
        bonus = config.seen_bonus * math.sqrt(math.log(size) / count) if size > 1 else 0.0
        value, weight = _backoff(exact, similar, config.action_prior, unseen_q)
        value += bonus
    offset = ctx.offsets.get(kind)
    if offset is not None and config.kind_prior > 0.0:
        prior = config.kind_prior
        value = (weight * value + prior * (ctx.v + offset)) / (weight + prior)
    return value, count


def _similar(
    action: str, by_action: Mapping[str, list[Neighbour]], config: ValueConfig
) -> list[tuple[list[Neighbour], float]]:
    """The neighbours that took another action similar to ``action``, with that similarity."""
    out = []
    for taken, group in by_action.items():
        if taken == action:
            continue
        match = action_similarity(
            action,
            taken,
            config.action_similarity,
            config.action_threshold,
            config.action_same_kind,
        )
        if match > 0.0:
            out.append((group, match))
    return out


def _kind_values(
    neighbours: Sequence[Neighbour], prior: float, optimism: float
) -> dict[str, float]:
    """The value of an untried action, per kind of action the neighbours took: the optimism of
    the untried backed off to the similarity-weighted mean return of the neighbours' actions of
    that kind, with weight ``prior`` (:attr:`~jitrl.method.config.ValueConfig.kind_backoff`).
    A kind no neighbour took is absent: its untried actions keep the plain optimism."""
    sums: dict[str, tuple[float, float]] = {}
    for nb in neighbours:
        kind = action_kind(nb.experience.action)
        weight, total = sums.get(kind, (0.0, 0.0))
        sums[kind] = (weight + nb.similarity, total + nb.similarity * nb.experience.ret)
    return {
        kind: (total + prior * optimism) / (weight + prior)
        for kind, (weight, total) in sums.items()
        if weight > 0.0
    }


def _backoff(
    exact: Sequence[Neighbour],
    similar: Sequence[tuple[list[Neighbour], float]],
    prior: float,
    unseen: float,
) -> tuple[float, float]:
    """``Q`` and its evidence ``W_e + W_s``. ``Q`` has three levels, each backed off to the next
    with weight ``prior``: the neighbours that took the action itself, those that took a similar
    action, and the optimistic value of an untried action::

        Q_s = (W_s Q_similar + prior unseen) / (W_s + prior)
        Q   = (W_e Q_own + prior Q_s) / (W_e + prior)

    ``W`` are similarity-weighted counts (state similarity, times action similarity for similar
    actions). An action no neighbour took keeps part of its optimism however much similar
    actions were tried; as its own evidence grows, what the others say fades.
    """
    w_exact = sum(nb.similarity for nb in exact)
    s_exact = sum(nb.similarity * nb.experience.ret for nb in exact)
    w_similar = sum(nb.similarity * match for group, match in similar for nb in group)
    if w_similar == 0.0:
        return s_exact / w_exact, w_exact
    s_similar = sum(
        nb.similarity * match * nb.experience.ret for group, match in similar for nb in group
    )
    q_similar = (s_similar + prior * unseen) / (w_similar + prior)
    return (s_exact + prior * q_similar) / (w_exact + prior), w_exact + w_similar


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
    looped: Mapping[str, float],
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
