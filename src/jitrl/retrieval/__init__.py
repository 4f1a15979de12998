"""Candidate indexes in front of the exact neighbour scoring, for large memories.

:class:`~jitrl.similarity.MemoryIndex` scores states exactly. With ``RetrievalConfig.index``
set to ``lsh`` or ``vector`` it first asks a :class:`CandidateIndex` which distinct state texts
may be similar, then scores only those exactly: the neighbours and their similarities are those
of the exact search, except for neighbours whose text the candidate index missed.

- :class:`ExactIndex`: every text sharing an n-gram (the reference);
- :class:`~jitrl.retrieval.lsh.MinHashLSHIndex`: MinHash LSH (datasketch) over the n-grams;
- :class:`~jitrl.retrieval.vector.VectorIndex`: usearch HNSW over an embedding
  (:class:`~jitrl.retrieval.vector.HashingEmbedder` or
  :class:`~jitrl.retrieval.minilm.MiniLMEmbedder`).

:func:`open_index` builds the index of a store and reuses the candidate index saved beside it
when it still matches; :func:`save_index` saves it.
"""

from __future__ import annotations

from functools import lru_cache

from jitrl.config import RetrievalConfig
from jitrl.retrieval.base import CandidateIndex, ExactIndex, GramHasher, PersistentIndex
from jitrl.retrieval.persist import IndexStatus, index_folder, open_index, save_index

__all__ = [
    "CandidateIndex",
    "ExactIndex",
    "GramHasher",
    "IndexStatus",
    "PersistentIndex",
    "index_folder",
    "make_candidate_index",
    "make_embedder",
    "open_index",
    "save_index",
]


@lru_cache(maxsize=1)
def _minilm() -> object:
    from jitrl.retrieval.minilm import MiniLMEmbedder

    return MiniLMEmbedder()


def make_embedder(config: RetrievalConfig) -> object:
    """The embedding ``config.embedding`` names; the MiniLM weights are loaded once per process
    (only when asked), since an index is also built for every decision's working memory."""
    if config.embedding == "minilm":
        return _minilm()
    from jitrl.retrieval.vector import HashingEmbedder

    return HashingEmbedder(config.ngram, config.embedding_dim)


def make_candidate_index(config: RetrievalConfig) -> CandidateIndex:
    """An empty candidate index of the kind and settings ``config`` names."""
    if config.index == "lsh":
        from jitrl.retrieval.lsh import MinHashLSHIndex

        return MinHashLSHIndex(
            config.ngram,
            config.lsh_threshold,
            config.lsh_num_perm,
            max_candidates=config.lsh_max_candidates,
        )
    if config.index == "vector":
        from jitrl.retrieval.vector import Embedder, VectorIndex

        embedder = make_embedder(config)
        assert isinstance(embedder, Embedder)
        return VectorIndex(embedder, config.vector_candidates)
    return ExactIndex(config.ngram)
