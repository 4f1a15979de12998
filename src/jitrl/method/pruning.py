"""Candidate pruning for large action spaces: keep the few candidates worth scoring.

ScienceWorld lists hundreds of valid actions per state, a web page may offer hundreds of
elements, a tool API many calls; scoring each with the model costs a decode per candidate. The
pruning step runs before the model and keeps at most ``prune_to`` candidates:

1. every candidate memory proposed (an action of a similar state that paid off);
2. candidates memory has evidence for (a neighbour took it, or a similar action), best ``Q``
   first, up to ``memory_share`` of the slots;
3. then a breadth-first pick over the kinds of action (their first word: ``go``, ``open``,
   ``focus``, ...): the best candidate of every kind, then the second best of every kind, and so
   on, kinds in the order of their best candidate. Within a kind, actions about no thing
   (``look around``) come first, then candidates rank by how much of the things they name the
   state's text names (the task, the room, the observation), each word weighted by its rarity
   among the candidates, per thing named, so that short actions about what the state mentions
   come first and long combinations of objects last; a longer variant of a simpler candidate
   of the same kind (``go to door to kitchen`` beside ``go to kitchen``) waits until every kind
   has offered its simpler ones.

It is recall-oriented (``benchmarks/pruning.py`` measures how often the gold action survives),
cheap (word sets, no model), and keeps the candidates' original order.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence, Set
from itertools import combinations

from jitrl.method.config import PruneConfig
from jitrl.method.similarity import action_kind, action_words
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

GENERAL_MAX_WORDS = 2
"""An action about no thing is taken as one that applies anywhere (``look around``) when it has
at most this many words; a longer one (``click link 'Item 7'`` whose label the state does not
name) is merely unnamed."""

SPECIFIC_SHARE = 0.5
"""A part of a candidate's things defers it (see ``_simplest_first``) only when each of the
part's words occurs in at most this share of its kind's candidates (or in two): ``kitchen``
among the ``go`` actions is specific, ``link`` among a page's clicks is not."""

MAX_THINGS_CHECKED = 8
"""Candidates naming more things than this are not checked for simpler variants (the check
enumerates the subsets of their things)."""


def object_words(candidates: Sequence[str], named: Set[str] = frozenset()) -> list[frozenset[str]]:
    """The words of each candidate that name a thing: words the state names (``named``) or
    that go with more than one kind of action (a thing can be looked at, taken, opened), other
    than the candidate's first word and function words. A word the state does not name and that
    only ever follows one verb is part of that verb's phrasing (``up`` in ``pick up``,
    ``around`` in ``look around``)."""
    words = [action_words(c) - STOPWORDS for c in candidates]
    heads = [action_kind(c) for c in candidates]
    kinds: dict[str, set[str]] = {}
    for head, ws in zip(heads, words, strict=True):
        for w in ws:
            kinds.setdefault(w, set()).add(head)
    return [
        frozenset(w for w in ws if w != head and (w in named or len(kinds[w]) > 1))
        for head, ws in zip(heads, words, strict=True)
    ]


def relevance(state_text: str, candidates: Sequence[str]) -> list[float]:
    """How much of the things each candidate names (:func:`object_words`) the state's text
    names, rarer words counting more (inverse frequency among the candidates), per thing named.
    A short action about no thing (``look around``, ``inventory``, ``wait``: at most
    :data:`GENERAL_MAX_WORDS` words) applies anywhere and gets ``inf``: there are few such
    actions, and they are often the right one. A longer one naming nothing the state names
    (a link whose label appears nowhere else) gets 0."""
    return _things_and_scores(state_text, candidates)[1]


def _things_and_scores(
    state_text: str, candidates: Sequence[str]
) -> tuple[list[frozenset[str]], list[float]]:
    """The candidates' things (:func:`object_words`) and their :func:`relevance`."""
    context = action_words(state_text) - STOPWORDS
    objects = object_words(candidates, context)
    frequency: Counter[str] = Counter(w for ws in objects for w in ws)
    total = len(objects)
    scores = []
    for c, ws in zip(candidates, objects, strict=True):
        if not ws:
            general = len(c.split()) <= GENERAL_MAX_WORDS
            scores.append(math.inf if general else 0.0)
            continue
        weight = math.fsum(math.log(1.0 + total / frequency[w]) for w in ws & context)
        scores.append(weight / len(ws))
    return objects, scores


def _simplest_first(group: list[int], objects: Sequence[frozenset[str]]) -> list[int]:
    """``group`` (one kind, best first) with the longer variants deferred: a candidate is put
    after the others when another candidate of the same kind names a strict part of its things,
    and that part is specific (each of its words in at most :data:`SPECIFIC_SHARE` of the kind's
    candidates): ``go to door to kitchen`` waits when there is ``go to kitchen``, ``pick up
    orange in bowl`` when there is ``pick up orange``, but a link does not wait for another
    link. The simplest way of saying a thing is the one usually meant."""
    share: Counter[str] = Counter(w for i in group for w in objects[i])
    limit = max(2.0, SPECIFIC_SHARE * len(group))  # a thing and one longer variant of it
    named = {objects[i] for i in group if objects[i] and all(share[w] <= limit for w in objects[i])}
    simple: list[int] = []
    longer: list[int] = []
    for i in group:
        things = sorted(objects[i])
        has_part = len(things) <= MAX_THINGS_CHECKED and any(
            frozenset(part) in named
            for size in range(1, len(things))
            for part in combinations(things, size)
        )
        (longer if has_part else simple).append(i)
    return simple + longer


def breadth_first(
    candidates: Sequence[str],
    scores: Sequence[float],
    pool: list[int],
    objects: Sequence[frozenset[str]],
) -> list[int]:
    """``pool`` ordered kind by kind: the best of every kind (first word), then the second best
    of every kind, ... (kinds ordered by their best candidate's score; within a kind, equal
    scores go to the shorter action first, and longer variants of a simpler candidate go last:
    ``objects`` are the candidates' things, from :func:`object_words`)."""
    kinds: dict[str, list[int]] = {}
    for i in sorted(pool, key=lambda i: (-scores[i], len(candidates[i].split()), i)):
        kinds.setdefault(action_kind(candidates[i]), []).append(i)
    ordered = sorted(
        (_simplest_first(g, objects) for g in kinds.values()), key=lambda group: -scores[group[0]]
    )
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
    wanted = set(proposed)
    keep: list[int] = [i for i, c in enumerate(candidates) if c in wanted]
    if estimates is not None:
        first = set(keep)
        seen = [i for i, n in enumerate(estimates.counts) if n > 0 and i not in first]
        seen.sort(key=lambda i: -estimates.q[i])
        keep += seen[: int(limit * config.memory_share)]
    objects, scores = _things_and_scores(state_text, candidates)
    chosen = set(keep)
    pool = [i for i in range(len(candidates)) if i not in chosen]
    rest = breadth_first(candidates, scores, pool, objects)
    keep += rest[: max(0, limit - len(keep))]
    return sorted(keep)
