"""Candidate pruning for large action spaces: keep the few candidates worth scoring.

ScienceWorld lists hundreds of valid actions per state, a web page may offer hundreds of
elements, a tool API many calls; scoring each with the model costs a decode per candidate. The
pruning step runs before the model and keeps at most ``prune_to`` candidates:

1. every candidate memory proposed (an action of a similar state that paid off);
2. candidates memory has evidence for (a neighbour took it, or a similar action), best ``Q``
   first, up to ``memory_share`` of the slots;
3. then a breadth-first pick over the kinds of action (their first word: ``go``, ``open``,
   ``focus``, ...): the best candidate of every kind, then the second best of every kind, and so
   on, kinds in the order of their best candidate. Within a kind, candidates rank by how much of
   their words the state's text names (the task, the room, the observation), each word weighted
   by its rarity among the candidates, per word of the candidate, so that short actions about
   what the state mentions come first and long combinations of objects last.

It is recall-oriented (``benchmarks/pruning.py`` measures how often the gold action survives),
cheap (word sets, no model), and keeps the candidates' original order.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

from jitrl.method.config import PruneConfig
from jitrl.method.similarity import action_words
from jitrl.method.types import Estimates

STOPWORDS = frozenset(
    {
        "a",
        "an",
        "and",
        "as",
        "at",
        "by",
        "for",
        "from",
        "in",
        "into",
        "is",
        "it",
        "of",
        "on",
        "onto",
        "or",
        "the",
        "then",
        "this",
        "to",
        "with",
    }
)
"""Function words, which say nothing about what an action is about."""


def relevance(state_text: str, candidates: Sequence[str]) -> list[float]:
    """How much each candidate's words overlap the state's text, rarer words counting more
    (inverse frequency among the candidates), normalised by the candidate's length; function
    words do not count."""
    context = action_words(state_text) - STOPWORDS
    words = [action_words(c) for c in candidates]
    frequency: Counter[str] = Counter(w for ws in words for w in ws)
    total = len(candidates)
    scores = []
    for ws in words:
        if not ws:
            scores.append(0.0)
            continue
        weight = sum(math.log(1.0 + total / frequency[w]) for w in ws & context)
        scores.append(weight / len(ws))
    return scores


def breadth_first(candidates: Sequence[str], scores: Sequence[float], pool: list[int]) -> list[int]:
    """``pool`` ordered kind by kind: the best of every kind (first word), then the second best
    of every kind, ... (kinds ordered by their best candidate's score; within a kind, equal
    scores go to the shorter action first)."""
    kinds: dict[str, list[int]] = {}
    for i in sorted(pool, key=lambda i: (-scores[i], len(candidates[i].split()), i)):
        words = candidates[i].split()
        kinds.setdefault(words[0].lower() if words else "", []).append(i)
    ordered = sorted(kinds.values(), key=lambda group: -scores[group[0]])
    out = []
    for rank in range(max((len(g) for g in ordered), default=0)):
        out += [group[rank] for group in ordered if rank < len(group)]
    return out


def prune(
    state_text: str,
    candidates: Sequence[str],
    proposed: Sequence[str],
    estimates: Estimates | None,
    config: PruneConfig,
) -> list[int]:
    """Indices of the candidates to keep, in their original order (all of them when there are
    no more than ``config.prune_to``).

    Args:
        state_text: the abstracted state.
        candidates: every candidate, memory's proposals included.
        proposed: the candidates memory proposed (always kept).
        estimates: memory's estimates over ``candidates`` (``None``: no memory).
        config: the pruning settings.
    """
    limit = config.prune_to
    if limit is None or len(candidates) <= limit:
        return list(range(len(candidates)))
    keep: list[int] = [i for i, c in enumerate(candidates) if c in set(proposed)]
    if estimates is not None:
        seen = [i for i, n in enumerate(estimates.counts) if n > 0 and i not in keep]
        seen.sort(key=lambda i: -estimates.q[i])
        keep += seen[: int(limit * config.memory_share)]
    scores = relevance(state_text, candidates)
    chosen = set(keep)
    rest = breadth_first(candidates, scores, [i for i in range(len(candidates)) if i not in chosen])
    keep += rest[: max(0, limit - len(keep))]
    return sorted(keep)
