"""What "similar" means, for states and for actions.

States: ``sim(s, s_i)`` is the word n-gram Jaccard of their abstracted texts; an exact key, when
both states carry the same one, raises it towards 1 but is never required
(:class:`jitrl.method.config.RetrievalConfig`; ``key`` and the earlier ``mix`` remain). The
neighbour search that applies it at scale is :class:`jitrl.retrieval.index.MemoryIndex`.

Actions: a candidate worded for this instance draws on neighbours that took a similarly worded
action of the same kind in theirs: :func:`action_similarity` is the Jaccard of the two actions'
word sets when their first words (verbs) agree (:class:`jitrl.method.config.ValueConfig`).
"""

from __future__ import annotations

import re
from functools import lru_cache

from jitrl.method.config import ActionSimilarity, RetrievalConfig
from jitrl.method.types import State

_WORD = re.compile(r"[a-z0-9']+")
NGRAM_CACHE_SIZE = 65536
"""State texts whose n-gram sets are memoised (states recur within and across episodes)."""


@lru_cache(maxsize=NGRAM_CACHE_SIZE)
def ngrams(text: str, n: int) -> frozenset[str]:
    """Word 1..n-grams of a lower-cased text (unigrams always included, so short texts match)."""
    words = _WORD.findall(text.lower())
    grams: set[str] = set(words)
    for size in range(2, n + 1):
        grams.update(" ".join(words[i : i + size]) for i in range(len(words) - size + 1))
    return frozenset(grams)


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """``|a & b| / |a | b|``; an empty text carries no evidence of similarity (0.0)."""
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


def combine(jac: float, key_match: bool, config: RetrievalConfig) -> float:
    """A state similarity from the texts' Jaccard and whether the exact keys are equal."""
    kind = config.similarity
    if kind == "key":
        return float(key_match)
    if kind == "ngram":
        return jac
    if kind == "mix":
        return config.key_weight * float(key_match) + (1.0 - config.key_weight) * jac
    return jac + config.key_weight * (1.0 - jac) if key_match else jac


def similarity(query: State, other: State, config: RetrievalConfig) -> float:
    """The configured similarity of two states, in ``[0, 1]`` (reference implementation)."""
    key_match = query.key is not None and query.key == other.key
    if config.similarity == "key":
        return float(key_match)
    jac = jaccard(ngrams(query.text, config.ngram), ngrams(other.text, config.ngram))
    return combine(jac, key_match, config)


@lru_cache(maxsize=NGRAM_CACHE_SIZE)
def action_words(action: str) -> frozenset[str]:
    """The lower-cased words of an action (quotes and punctuation dropped)."""
    return frozenset(_WORD.findall(action.lower()))


@lru_cache(maxsize=NGRAM_CACHE_SIZE)
def action_kind(action: str) -> str:
    """The kind of an action: its first word, lower-cased (``go``, ``take``, ``click``);
    memoised, as every candidate is compared with every neighbour's action each decision."""
    words = action.split()
    return words[0].lower() if words else ""


def action_similarity(
    a: str, b: str, kind: ActionSimilarity, threshold: float, same_kind: bool = True
) -> float:
    """How much a neighbour's action ``b`` counts for candidate ``a``, in ``[0, 1]``.

    ``exact``: 1 for the same string, else 0. ``words``: 1 for the same string; 0 for actions
    of different kinds when ``same_kind`` (:func:`action_kind`: ``open door to south`` says
    nothing about ``close door to south``, though they share three words of four); else the
    Jaccard of the word sets when it reaches ``threshold``, else 0.
    """
    if a == b:
        return 1.0
    if kind == "exact" or (same_kind and action_kind(a) != action_kind(b)):
        return 0.0
    value = _word_jaccard(a, b) if a < b else _word_jaccard(b, a)
    return value if value >= threshold else 0.0


@lru_cache(maxsize=NGRAM_CACHE_SIZE)
def _word_jaccard(a: str, b: str) -> float:
    """Jaccard of two actions' word sets (memoised: the same pairs recur every decision)."""
    return jaccard(action_words(a), action_words(b))
