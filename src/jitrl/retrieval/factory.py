"""Build candidate indexes and embedders from the retrieval settings."""

from __future__ import annotations

import importlib.util
from dataclasses import replace
from functools import lru_cache

from jitrl.method.config import RetrievalConfig
from jitrl.retrieval.base import CandidateIndex, ExactIndex


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


def resolve_auto(config: RetrievalConfig, records: int) -> RetrievalConfig:
    """``config`` with ``index="auto"`` made concrete for a memory of ``records`` records:
    ``vector`` from ``auto_index_records`` on when usearch is installed, else unchanged (an
    ``auto`` index starts exact and switches itself if it grows past the limit)."""
    large = records >= config.auto_index_records
    if config.index == "auto" and large and importlib.util.find_spec("usearch") is not None:
        return replace(config, index="vector")
    return config
