"""Approximate nearest neighbours of a text embedding (usearch HNSW), re-scored exactly.

The embedding is pluggable (:class:`Embedder`): :class:`HashingEmbedder` hashes the same word
n-grams as the similarity into a signed count vector, whose cosine tracks the n-gram overlap;
:class:`jitrl.retrieval.minilm.MiniLMEmbedder` is the all-MiniLM-L6-v2 sentence model. The index
returns the ``candidates`` nearest distinct texts; the caller scores them exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from jitrl.retrieval.base import GramHasher

EXACT_SEARCH_MAX_TEXTS = 2000
"""Up to this many texts the graph is bypassed for a brute-force scan (well under a millisecond):
the answer is then exact and the same however the graph was built (incrementally or at once)."""

__all__ = ["Embedder", "HashingEmbedder", "VectorIndex"]

_FILE = "vectors.usearch"


@runtime_checkable
class Embedder(Protocol):
    """Maps texts to vectors; equal texts must get equal vectors."""

    name: str
    """Identifies the embedding in a saved index (a changed embedding forces a rebuild)."""
    dim: int
    """Vector dimension."""

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), dim)`` float32 vectors; a zero row means "no content"."""
        ...


class HashingEmbedder:
    """Signed feature hashing of a text's word n-grams, L2-normalised.

    The cosine of two such vectors estimates ``|A & B| / sqrt(|A| |B|)`` of the n-gram sets, a
    close relative of their Jaccard, with noise of order ``1 / sqrt(dim)`` from hash collisions.
    Deterministic across processes (n-grams are hashed with SHA-1).
    """

    def __init__(self, ngram: int = 2, dim: int = 256) -> None:
        self.dim = dim
        self.name = f"hashing-n{ngram}-d{dim}"
        self._hasher = GramHasher(ngram)

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        flat, counts = self._hasher.flat(texts)
        rows = np.repeat(np.arange(len(texts), dtype=np.int64), counts)
        cols = (flat % np.uint32(self.dim)).astype(np.int64)
        signs = np.where(flat >> np.uint32(31), -1.0, 1.0)
        mat = np.bincount(rows * self.dim + cols, weights=signs, minlength=len(texts) * self.dim)
        vecs = mat.reshape(len(texts), self.dim).astype(np.float32)
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        return np.divide(vecs, norms, out=np.zeros_like(vecs), where=norms > 0)


class VectorIndex:
    """usearch HNSW over text embeddings; a query returns the nearest ``candidates`` texts.

    Args:
        embedder: the text embedding.
        candidates: texts returned per query (then re-scored exactly by the caller).
        connectivity: HNSW graph degree.
        expansion_add: HNSW beam width while adding.
        expansion_search: HNSW beam width while searching (default ``max(64, 2 * candidates)``).
        dtype: usearch storage type of the vectors (``f32``, ``f16``, ``i8``).
    """

    kind = "vector"

    def __init__(
        self,
        embedder: Embedder,
        candidates: int = 64,
        *,
        connectivity: int = 16,
        expansion_add: int = 128,
        expansion_search: int | None = None,
        dtype: str = "f16",
    ) -> None:
        self.embedder = embedder
        self.candidates = candidates
        self.connectivity = connectivity
        self.expansion_add = expansion_add
        self.expansion_search = expansion_search or max(64, 2 * candidates)
        self.dtype = dtype
        self._index = self._new_index()
        self._size = 0

    def _new_index(self) -> Any:
        from usearch.index import Index

        return Index(
            ndim=self.embedder.dim,
            metric="cos",
            dtype=self.dtype,
            connectivity=self.connectivity,
            expansion_add=self.expansion_add,
            expansion_search=self.expansion_search,
        )

    def __len__(self) -> int:
        return self._size

    def add(self, texts: Sequence[str]) -> None:
        """Embed and index more texts (texts with a zero embedding are not searchable)."""
        if not texts:
            return
        vecs = self.embedder(texts)
        rows = np.flatnonzero(np.abs(vecs).sum(axis=1) > 0)
        if len(rows):
            self._index.add(rows.astype(np.uint64) + np.uint64(self._size), vecs[rows])
        self._size += len(texts)

    def query(self, text: str) -> set[int]:
        """Ids of the ``candidates`` texts nearest to ``text`` by cosine."""
        vec = self.embedder([text])[0]
        if len(self._index) == 0 or not np.any(vec):
            return set()
        size = len(self._index)
        exact = size <= EXACT_SEARCH_MAX_TEXTS  # brute force is cheap here, and reproducible
        found = self._index.search(vec, count=min(self.candidates, size), exact=exact)
        return set(np.asarray(found.keys, dtype=np.int64).tolist())

    def rebuild(self, texts: Sequence[str]) -> None:
        """Re-index ``texts`` from scratch."""
        self._index = self._new_index()
        self._size = 0
        self.add(texts)

    def params(self) -> dict[str, Any]:
        """Settings that a saved index must share to be reused."""
        return {
            "kind": self.kind,
            "embedding": self.embedder.name,
            "dim": self.embedder.dim,
            "connectivity": self.connectivity,
            "dtype": self.dtype,
        }

    def save(self, folder: Path) -> None:
        """Write usearch's own file format (``vectors.usearch``)."""
        self._index.save(str(folder / _FILE))

    def load(self, folder: Path, size: int) -> None:
        """Read the index saved for ``size`` texts."""
        index = self._new_index()
        index.load(str(folder / _FILE))
        if index.ndim != self.embedder.dim:
            raise ValueError(f"saved vectors have {index.ndim} dimensions, not {self.embedder.dim}")
        keys = np.asarray(index.keys, dtype=np.int64) if len(index) else np.empty(0, np.int64)
        if len(keys) and (keys.min() < 0 or keys.max() >= size):
            raise ValueError("saved vector keys do not match the saved number of texts")
        index.expansion_search = self.expansion_search
        self._index, self._size = index, size
