"""The in-memory neighbour index: exact similarity over candidate states.

The index groups experiences by state, keeps an inverted index from n-grams to states, and scores
exactly only the states that share at least one n-gram (or the key) with the query, so a query
costs time in the overlap, not the whole memory.

With ``RetrievalConfig.index`` set to ``lsh`` or ``vector``, a candidate index
(:mod:`jitrl.retrieval`) proposes distinct state texts instead, and those are re-scored with the
same exact similarity: neighbours and similarities stay exact, only candidates can be missed.
Memory hygiene (near-duplicate cap, capacity, leave-one-task-out) is applied here too
(:mod:`jitrl.retrieval.hygiene`).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING

from jitrl.method.config import RetrievalConfig
from jitrl.method.kinds import KindValues
from jitrl.method.similarity import combine, ngrams
from jitrl.method.types import Experience, Neighbour, State

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from jitrl.retrieval.base import CandidateIndex
    from jitrl.retrieval.hygiene import Hygiene


class _StateGroup:
    """All experiences recorded in one (text, key) state, by sequence number."""

    __slots__ = ("experiences", "grams", "latest", "state", "text_id")

    def __init__(self, state: State, grams: frozenset[str], text_id: int) -> None:
        self.state = state
        self.grams = grams
        self.text_id = text_id
        self.experiences: dict[int, Experience] = {}
        self.latest = 0


def _make_candidates(config: RetrievalConfig) -> CandidateIndex | None:
    if config.index in ("exact", "auto"):  # auto starts exact (see MemoryIndex.add)
        return None
    from jitrl.retrieval.factory import make_candidate_index

    return make_candidate_index(config)


def _make_hygiene(config: RetrievalConfig) -> Hygiene | None:
    if config.max_per_state_action is None and config.capacity is None:
        return None
    from jitrl.retrieval.hygiene import Hygiene

    return Hygiene.from_config(config)


class MemoryIndex:
    """In-memory neighbour search over experiences, kept in step with a store by the caller.

    Args:
        config: retrieval settings (similarity, top-k, candidate index, hygiene).
        experiences: records to index now, in store order.
        candidates: a candidate index to use instead of the one ``config.index`` names (e.g. one
            loaded from disk by :func:`jitrl.retrieval.open_index`); it may already hold a
            prefix of the distinct state texts, and only texts beyond it are added.
    """

    def __init__(
        self,
        config: RetrievalConfig,
        experiences: Iterable[Experience] = (),
        *,
        candidates: CandidateIndex | None = None,
    ) -> None:
        self.config = config
        self._groups: dict[tuple[str, str | None], _StateGroup] = {}
        self._by_gram: dict[str, list[_StateGroup]] = defaultdict(list)
        self._by_key: dict[str, list[_StateGroup]] = defaultdict(list)
        self._text_ids: dict[str, int] = {}
        self._texts: list[str] = []
        self._by_text: list[list[_StateGroup]] = []
        self._candidates = candidates if candidates is not None else _make_candidates(config)
        self._inverted = self._candidates is None
        self._auto = config.index == "auto" and candidates is None
        self._hygiene = _make_hygiene(config)
        self._count = 0
        self._seq = 0
        self._episodes: set[str] = set()
        self.last_episode_id: str | None = None
        """Episode id of the last record added (with :attr:`seen`, what a saved index matches)."""
        self.kinds = KindValues()
        """Mean step rewards per task and kind of action, over every record added (evicted
        ones included)."""
        self.add(experiences)

    def __len__(self) -> int:
        """Number of retrievable experiences (after hygiene evictions)."""
        return self._count

    @property
    def seen(self) -> int:
        """Number of records ever added, evicted ones included (the store's record count)."""
        return self._seq

    def has_episode(self, episode_id: str) -> bool:
        """Whether records of this episode were added (evicted ones included)."""
        return episode_id in self._episodes

    @property
    def texts(self) -> list[str]:
        """The distinct state texts in first-seen order: text ``i`` is candidate id ``i``."""
        return self._texts

    @property
    def candidates(self) -> CandidateIndex | None:
        """The candidate index in front of the exact scoring (``None``: the inverted index)."""
        return self._candidates

    def set_candidates(self, candidates: CandidateIndex | None) -> None:
        """Switch to another candidate index, given the texts it lacks (e.g. to compare indexes
        over one memory); ``None`` switches to the inverted n-gram index (built if needed)."""
        if candidates is None and not self._inverted:
            for group in self._groups.values():
                for gram in group.grams:
                    self._by_gram[gram].append(group)
            self._inverted = True
        if candidates is not None and len(candidates) < len(self._texts):
            candidates.add(self._texts[len(candidates) :])
        self._candidates = candidates

    def add(self, experiences: Iterable[Experience]) -> None:
        """Index more experiences (e.g. the episode just stored)."""
        for exp in experiences:
            group = self._group(exp.state)
            self._seq += 1
            self._count += 1
            group.experiences[self._seq] = exp
            group.latest = self._seq
            self.last_episode_id = exp.episode_id
            self._episodes.add(exp.episode_id)
            self.kinds.add(exp)
            if self._hygiene is not None:
                for seq, handle in self._hygiene.admit(self._seq, exp, group):
                    assert isinstance(handle, _StateGroup)
                    del handle.experiences[seq]
                    self._count -= 1
        cand = self._candidates
        if cand is not None and len(cand) < len(self._texts):
            cand.add(self._texts[len(cand) :])
        elif self._auto and self._count >= self.config.auto_index_records:
            self._auto = False  # one try: the vector index, or exact for good
            self._switch_to_vector()

    def _switch_to_vector(self) -> None:
        """``index="auto"`` past ``auto_index_records``: put the vector index in front."""
        from jitrl.retrieval.factory import make_candidate_index

        try:
            vector = make_candidate_index(replace(self.config, index="vector"))
        except ImportError as err:
            log.warning(
                "memory holds %d records: the exact scan slows decisions down from here (%s; "
                "pip install 'jitrl[scale]' for the vector index)",
                self._count,
                err,
            )
            return
        log.info("memory holds %d records: switching to the vector index", self._count)
        self.set_candidates(vector)
        self._by_gram.clear()  # the inverted index is not needed any more
        self._inverted = False

    def _group(self, state: State) -> _StateGroup:
        ident = (state.text, state.key)
        group = self._groups.get(ident)
        if group is not None:
            return group
        text_id = self._text_ids.get(state.text)
        if text_id is None:
            text_id = self._text_ids[state.text] = len(self._texts)
            self._texts.append(state.text)
            self._by_text.append([])
        group = _StateGroup(state, ngrams(state.text, self.config.ngram), text_id)
        self._groups[ident] = group
        self._by_text[text_id].append(group)
        if self._inverted:
            for gram in group.grams:
                self._by_gram[gram].append(group)
        if state.key is not None:
            self._by_key[state.key].append(group)
        return group

    def _scored_groups(self, state: State) -> list[tuple[float, _StateGroup]]:
        cfg = self.config
        key_hits = set(map(id, self._by_key.get(state.key, []))) if state.key is not None else set()
        if cfg.similarity == "key":
            return [(1.0, g) for g in self._by_key.get(state.key or "", []) if state.key]
        if self._candidates is not None:
            return self._rescored_groups(state)
        grams = ngrams(state.text, cfg.ngram)
        postings = [self._by_gram.get(gram, ()) for gram in grams]
        groups: dict[int, _StateGroup] = {}
        if sum(map(len, postings)) > len(self._groups):  # the query shares grams with most
            groups = {id(g): g for g in self._groups.values()}
        else:
            for posting in postings:
                for group in posting:
                    groups[id(group)] = group
        for group in self._by_key.get(state.key, []) if state.key is not None else []:
            groups[id(group)] = group
        scored = []
        size = len(grams)
        for gid, group in groups.items():
            inter = len(grams & group.grams)  # set intersection in C, not a count per gram
            union = size + len(group.grams) - inter
            jac = inter / union if inter else 0.0
            scored.append((combine(jac, gid in key_hits, cfg), group))
        return scored

    def _rescored_groups(self, state: State) -> list[tuple[float, _StateGroup]]:
        """Exact scores of the groups whose text the candidate index proposes (plus key hits)."""
        assert self._candidates is not None
        cfg = self.config
        grams = ngrams(state.text, cfg.ngram)
        text_ids = set(self._candidates.query(state.text)) if grams else set()
        if state.key is not None:
            text_ids.update(g.text_id for g in self._by_key.get(state.key, ()))
        size, threshold, kw = len(grams), cfg.threshold, cfg.key_weight
        keys_count = cfg.similarity != "ngram"
        # without a key, a text reaches the threshold only if min/max size allows the Jaccard:
        # mix scales the Jaccard by (1 - kw), text and ngram do not
        mix = cfg.similarity == "mix"
        bound = threshold if not mix else (threshold / (1.0 - kw) if kw < 1.0 else 2.0)
        scored = []
        for text_id in text_ids:
            groups = self._by_text[text_id]
            other = groups[0].grams
            small, large = sorted((size, len(other)))
            keyed = (
                keys_count
                and state.key is not None
                and any(g.state.key == state.key for g in groups)
            )
            if not keyed and (not large or small < bound * large):
                continue
            inter = len(grams & other)
            union = size + len(other) - inter
            jac = inter / union if inter else 0.0
            for group in groups:
                hit = state.key is not None and group.state.key == state.key
                sim = combine(jac, hit, cfg)
                if sim >= threshold:
                    scored.append((sim, group))
        return scored

    def neighbours(self, state: State, task_id: str | None = None) -> list[Neighbour]:
        """Top-k experiences by similarity above the threshold, most recent first among ties.

        Args:
            state: the query state.
            task_id: the deciding episode's task; with ``config.exclude_own_task`` its records
                are never returned (leave-one-task-out). ``None``: nothing is excluded.
        """
        cfg = self.config
        skip = task_id if cfg.exclude_own_task else None
        scored = [(s, g) for s, g in self._scored_groups(state) if s >= cfg.threshold]
        scored.sort(key=lambda sg: (sg[0], sg[1].latest), reverse=True)
        out: list[Neighbour] = []
        for sim, group in scored:
            for exp in reversed(group.experiences.values()):
                if skip is not None and exp.task_id == skip:
                    continue
                out.append(Neighbour(exp, sim))
                if len(out) >= cfg.k:
                    return out
        return out
