"""What "similar" means: word n-gram Jaccard over abstracted state texts, exact keys, a mix.

``sim(s, s_i)`` is word n-gram Jaccard over abstracted state texts, an exact-key match, or a
weighted mix (:class:`jitrl.method.config.RetrievalConfig`). The neighbour search that applies
it at scale is :class:`jitrl.retrieval.index.MemoryIndex`.
"""

from __future__ import annotations

import re
from functools import lru_cache

from jitrl.method.config import RetrievalConfig
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


def similarity(query: State, other: State, config: RetrievalConfig) -> float:
    """The configured similarity of two states, in ``[0, 1]`` (reference implementation)."""
    key_match = float(query.key is not None and query.key == other.key)
    if config.similarity == "key":
        return key_match
    jac = jaccard(ngrams(query.text, config.ngram), ngrams(other.text, config.ngram))
    if config.similarity == "ngram":
        return jac
    return config.key_weight * key_match + (1.0 - config.key_weight) * jac
