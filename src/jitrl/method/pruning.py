"""Candidate pruning for large action spaces: keep the few candidates worth scoring.

ScienceWorld lists hundreds of valid actions per state, a web page may offer hundreds of
elements, a tool API many calls; scoring each with the model costs a decode per candidate. The
pruning step runs before the model and keeps at most ``prune_to`` candidates:

1. every candidate memory proposed (an action of a similar state that paid off);
2. candidates memory has evidence for (a neighbour took it, or a similar action), best ``Q``
   first, up to ``memory_share`` of the slots;
3. then the candidates whose words overlap most with the state's text (the task, the room, the
   observation), each word weighted by its rarity among the candidates, so that words every
   candidate shares ("open", "door") count little and the objects the task names count a lot.

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
        scores.append(weight / math.sqrt(len(ws)))
    return scores


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
    rest = sorted((i for i in range(len(candidates)) if i not in chosen), key=lambda i: -scores[i])
    keep += rest[: max(0, limit - len(keep))]
    return sorted(keep)
