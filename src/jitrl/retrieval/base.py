"""The candidate-index protocol and the exact reference.

A candidate index holds the distinct abstracted state *texts* of a memory, numbered in the order
they were added (text ``i`` has id ``i``; :attr:`jitrl.retrieval.index.MemoryIndex.texts`). Given a
query text it returns the ids of texts that may be similar; the caller then re-scores those
exactly (:meth:`jitrl.retrieval.index.MemoryIndex.neighbours`), so an approximate index can only
*miss* neighbours, never report a wrong similarity. Texts, not (text, key) states, are indexed:
states that share a text share every n-gram, and exact-key matches come from a key table.
"""

from __future__ import annotations

import hashlib
import struct
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from jitrl.method.similarity import ngrams

__all__ = ["CandidateIndex", "ExactIndex", "GramHasher", "PersistentIndex"]


@runtime_checkable
class CandidateIndex(Protocol):
    """Proposes candidate state texts for a query; the caller re-scores them exactly."""

    kind: str
    """Short name (``exact``, ``lsh``, ``vector``), as in ``RetrievalConfig.index``."""

    def __len__(self) -> int:
        """Number of texts indexed (their ids are ``0 .. len - 1``)."""
        ...

    def add(self, texts: Sequence[str]) -> None:
        """Index more texts; they get the next ids, in order."""
        ...

    def query(self, text: str) -> Collection[int]:
        """Ids of indexed texts that may be similar to ``text``."""
        ...

    def rebuild(self, texts: Sequence[str]) -> None:
        """Forget everything and index ``texts`` as ids ``0 .. len(texts) - 1``."""
        ...

    def params(self) -> dict[str, Any]:
        """JSON-serialisable settings; a saved index is reused only when they are equal."""
        ...


@runtime_checkable
class PersistentIndex(CandidateIndex, Protocol):
    """A candidate index that can be written to and read from a folder (no pickle)."""

    def save(self, folder: Path) -> None:
        """Write the index's payload files into ``folder`` (which exists)."""
        ...

    def load(self, folder: Path, size: int) -> None:
        """Replace the content by the ``size`` texts saved in ``folder``.

        Raises:
            ValueError / OSError: the files are missing, corrupt or of another shape.
        """
        ...


class GramHasher:
    """32-bit hashes of n-grams: datasketch's ``sha1_hash32`` of the UTF-8 text, memoised.

    Hashes are stable across processes and versions (unlike ``hash()``), so they may be saved.
    """

    def __init__(self, ngram: int, cache_size: int = 1 << 21) -> None:
        self.ngram = ngram
        self.cache_size = cache_size
        self._cache: dict[str, int] = {}

    def gram(self, gram: str) -> int:
        """The hash of one n-gram."""
        value = self._cache.get(gram)
        if value is None:
            if len(self._cache) >= self.cache_size:
                self._cache.clear()
            value = struct.unpack("<I", hashlib.sha1(gram.encode("utf-8")).digest()[:4])[0]
            self._cache[gram] = value
        return value

    def text(self, text: str) -> np.ndarray:
        """Hashes of the text's n-grams (uint32, one per distinct n-gram, no fixed order)."""
        return np.fromiter(map(self.gram, ngrams(text, self.ngram)), dtype=np.uint32)

    def flat(self, texts: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
        """All texts' hashes concatenated, and each text's n-gram count."""
        parts = [self.text(t) for t in texts]
        counts = np.fromiter((len(p) for p in parts), dtype=np.int64, count=len(parts))
        flat = np.concatenate(parts) if parts else np.empty(0, dtype=np.uint32)
        return flat, counts


class ExactIndex:
    """Every text sharing at least one n-gram with the query: the exact reference.

    With a positive threshold a text that shares no n-gram has Jaccard 0 and is never a neighbour
    (exact-key matches are added by the caller), so re-scoring these candidates gives exactly the
    result of a full scan. A query costs time in the overlap; texts sharing frequent words (``the``,
    ``location``) make it approach a scan of the whole memory.
    """

    kind = "exact"

    def __init__(self, ngram: int = 2) -> None:
        self.ngram = ngram
        self._by_gram: dict[str, list[int]] = defaultdict(list)
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def add(self, texts: Sequence[str]) -> None:
        """Index more texts."""
        for text in texts:
            for gram in ngrams(text, self.ngram):
                self._by_gram[gram].append(self._size)
            self._size += 1

    def query(self, text: str) -> set[int]:
        """Ids of the texts that share an n-gram with ``text``."""
        out: set[int] = set()
        for gram in ngrams(text, self.ngram):
            out.update(self._by_gram.get(gram, ()))
        return out

    def rebuild(self, texts: Sequence[str]) -> None:
        """Re-index ``texts`` from scratch."""
        self._by_gram.clear()
        self._size = 0
        self.add(texts)

    def params(self) -> dict[str, Any]:
        """The n-gram size."""
        return {"kind": self.kind, "ngram": self.ngram}
