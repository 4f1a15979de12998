"""Candidate indexes in front of the exact neighbour scoring, for large memories.

:class:`~jitrl.method.similarity.MemoryIndex` scores states exactly. With ``RetrievalConfig.index``
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

from jitrl.retrieval.base import CandidateIndex, ExactIndex, GramHasher, PersistentIndex
from jitrl.retrieval.factory import make_candidate_index, make_embedder
from jitrl.retrieval.index import MemoryIndex
from jitrl.retrieval.persist import IndexStatus, index_folder, open_index, save_index

__all__ = [
    "CandidateIndex",
    "ExactIndex",
    "GramHasher",
    "IndexStatus",
    "MemoryIndex",
    "PersistentIndex",
    "index_folder",
    "make_candidate_index",
    "make_embedder",
    "open_index",
    "save_index",
]
