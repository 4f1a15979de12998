"""State similarity and the in-memory neighbour index.

``sim(s, s_i)`` is word n-gram Jaccard over abstracted state texts, an exact-key match, or a
weighted mix (:class:`jitrl.config.RetrievalConfig`). The index groups experiences by state, keeps
an inverted index from n-grams to states, and scores exactly only the states that share at least
one n-gram (or the key) with the query, so a query costs time in the overlap, not the whole memory.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from functools import lru_cache

from jitrl.config import RetrievalConfig
from jitrl.types import Experience, Neighbour, State

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


class _StateGroup:
    """All experiences recorded in one (text, key) state."""

    __slots__ = ("experiences", "grams", "latest", "state")

    def __init__(self, state: State, grams: frozenset[str]) -> None:
        self.state = state
        self.grams = grams
        self.experiences: list[Experience] = []
        self.latest = 0


class MemoryIndex:
    """In-memory neighbour search over experiences, kept in step with a store by the caller."""

    def __init__(self, config: RetrievalConfig, experiences: Iterable[Experience] = ()) -> None:
        self.config = config
        self._groups: dict[tuple[str, str | None], _StateGroup] = {}
        self._by_gram: dict[str, list[_StateGroup]] = defaultdict(list)
        self._by_key: dict[str, list[_StateGroup]] = defaultdict(list)
        self._count = 0
        self.add(experiences)

    def __len__(self) -> int:
        return self._count

    def add(self, experiences: Iterable[Experience]) -> None:
        """Index more experiences (e.g. the episode just stored)."""
        for exp in experiences:
            ident = (exp.state.text, exp.state.key)
            group = self._groups.get(ident)
            if group is None:
                group = _StateGroup(exp.state, ngrams(exp.state.text, self.config.ngram))
                self._groups[ident] = group
                for gram in group.grams:
                    self._by_gram[gram].append(group)
                if exp.state.key is not None:
                    self._by_key[exp.state.key].append(group)
            self._count += 1
            group.experiences.append(exp)
            group.latest = self._count

    def _scored_groups(self, state: State) -> list[tuple[float, _StateGroup]]:
        cfg = self.config
        key_hits = set(map(id, self._by_key.get(state.key, []))) if state.key is not None else set()
        if cfg.similarity == "key":
            return [(1.0, g) for g in self._by_key.get(state.key or "", []) if state.key]
        grams = ngrams(state.text, cfg.ngram)
        shared: Counter[int] = Counter()
        groups: dict[int, _StateGroup] = {}
        for gram in grams:
            for group in self._by_gram.get(gram, ()):
                shared[id(group)] += 1
                groups[id(group)] = group
        for group in self._by_key.get(state.key, []) if state.key is not None else []:
            groups[id(group)] = group
        scored = []
        for gid, group in groups.items():
            inter = shared.get(gid, 0)
            union = len(grams) + len(group.grams) - inter
            jac = inter / union if inter else 0.0
            if cfg.similarity == "ngram":
                sim = jac
            else:
                sim = cfg.key_weight * float(gid in key_hits) + (1.0 - cfg.key_weight) * jac
            scored.append((sim, group))
        return scored

    def neighbours(self, state: State) -> list[Neighbour]:
        """Top-k experiences by similarity above the threshold, most recent first among ties."""
        cfg = self.config
        scored = [(s, g) for s, g in self._scored_groups(state) if s >= cfg.threshold]
        scored.sort(key=lambda sg: (sg[0], sg[1].latest), reverse=True)
        out: list[Neighbour] = []
        for sim, group in scored:
            for exp in reversed(group.experiences):
                out.append(Neighbour(exp, sim))
                if len(out) >= cfg.k:
                    return out
        return out
