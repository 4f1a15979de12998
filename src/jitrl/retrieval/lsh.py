"""MinHash LSH over word n-grams (datasketch's MinHash, banded into sorted numpy tables).

Each state text's n-gram set gets a MinHash signature that is bit-for-bit datasketch's
``MinHash(num_perm, seed).update_batch(...)`` (default ``affine32`` scheme, ``sha1_hash32``), but
computed for many texts at once with numpy. The signature is cut into ``b`` bands of ``r`` rows,
``(b, r)`` being datasketch's ``MinHashLSH`` optimum for ``threshold`` and ``num_perm``; two texts
are candidates when any band agrees, which happens with probability ``1 - (1 - J^r)^b`` for
Jaccard ``J``.

Why not ``datasketch.MinHashLSH`` itself: it keeps a Python set per bucket and a list of band
keys per entry, about 10 KB per text (10 GB and ~7 minutes to build at a million texts on this
machine). Here each band key is one 64-bit hash in one sorted array, ``12 * b`` bytes per text,
built by one ``argsort``; a query is two vectorised binary searches. Texts added later go to a
small dictionary and are merged into the arrays in batches.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from datasketch import MinHash, MinHashLSH

from jitrl.retrieval.base import GramHasher

__all__ = ["MinHashLSHIndex"]

_EMPTY = np.uint32(0xFFFFFFFF)
_K1 = 0x9E3779B97F4A7C15
_MASK64 = (1 << 64) - 1
_K2 = np.uint64(0x100000001B3)
_CHUNK_ROWS = 1 << 17
"""n-gram hashes permuted at once while computing signatures (bounds temporary memory)."""


@lru_cache(maxsize=64)
def _bands(threshold: float, num_perm: int) -> tuple[int, int]:
    """datasketch's optimal (bands, rows) for ``threshold`` (an integral: ~0.1 s, so cached)."""
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    return int(lsh.b), int(lsh.r)


@lru_cache(maxsize=64)
def _permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """datasketch's affine permutations ``(a, b)`` for ``num_perm`` and ``seed`` (read-only)."""
    a, b = MinHash(num_perm=num_perm, seed=seed).permutations
    out = np.asarray(a, dtype=np.uint32), np.asarray(b, dtype=np.uint32)
    for arr in out:
        arr.flags.writeable = False
    return out


def _fmix32(hv: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer, as datasketch applies it before the permutations."""
    hv = hv ^ (hv >> np.uint32(16))
    hv = hv * np.uint32(0x85EBCA6B)
    hv = hv ^ (hv >> np.uint32(13))
    hv = hv * np.uint32(0xC2B2AE35)
    return hv ^ (hv >> np.uint32(16))


def _fmix64(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xFF51AFD7ED558CCD)
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xC4CEB9FE1A85EC53)
    return h ^ (h >> np.uint64(33))


class MinHashLSHIndex:
    """Candidate texts whose MinHash signature shares a band with the query's.

    Args:
        ngram: word n-gram size (as ``RetrievalConfig.ngram``).
        threshold: Jaccard at which a text is found with probability about 1/2.
        num_perm: MinHash permutations.
        seed: MinHash seed (datasketch's default is 1).
        max_candidates: most texts returned per query: when more share a band with the query,
            those sharing the most bands (an estimate of the highest Jaccard) are kept.
        merge_every: band entries kept in the dictionary before a merge into the sorted arrays.
    """

    kind = "lsh"

    def __init__(
        self,
        ngram: int = 2,
        threshold: float = 0.4,
        num_perm: int = 128,
        seed: int = 1,
        max_candidates: int = 64,
        merge_every: int = 1 << 18,
    ) -> None:
        self.ngram = ngram
        self.threshold = threshold
        self.num_perm = num_perm
        self.seed = seed
        self.max_candidates = max_candidates
        self.merge_every = merge_every
        self.bands, self.rows = _bands(threshold, num_perm)
        self._a, self._b = _permutations(num_perm, seed)
        self._hasher = GramHasher(ngram)
        self._size = 0
        self._keys = np.empty(0, dtype=np.uint64)
        self._ids = np.empty(0, dtype=np.int64)
        self._pending: dict[int, list[int]] = {}
        self._pending_n = 0

    def __len__(self) -> int:
        return self._size

    def signatures(self, texts: Sequence[str]) -> np.ndarray:
        """MinHash hash values of each text's n-grams, ``(len(texts), num_perm)`` uint32.

        Equal to datasketch's ``MinHash.hashvalues`` after ``update_batch`` of the n-grams
        encoded as UTF-8; an empty text keeps datasketch's empty value (all ``2**32 - 1``).
        """
        flat, counts = self._hasher.flat(texts)
        sig = np.full((len(texts), self.num_perm), _EMPTY, dtype=np.uint32)
        offsets = np.concatenate(([0], np.cumsum(counts)))
        start = 0
        while start < len(texts):
            stop = int(np.searchsorted(offsets, offsets[start] + _CHUNK_ROWS, side="right")) - 1
            stop = min(max(stop, start + 1), len(texts))
            rows = np.flatnonzero(counts[start:stop]) + start
            if len(rows):
                lo = offsets[start]
                hv = _fmix32(flat[lo : offsets[stop]])[:, None] * self._a + self._b
                sig[rows] = np.minimum.reduceat(hv, offsets[rows] - lo, axis=0)
            start = stop
        return sig

    def band_keys(self, sig: np.ndarray) -> np.ndarray:
        """One 64-bit key per band, ``(n, bands)``; the band number is mixed in."""
        used = sig[:, : self.bands * self.rows].astype(np.uint64)
        rows = used.reshape(sig.shape[0], self.bands, self.rows)
        seeds = [((band + 1) * _K1) & _MASK64 for band in range(self.bands)]
        h = np.broadcast_to(np.array(seeds, dtype=np.uint64), rows.shape[:2])
        for col in range(self.rows):
            h = (h ^ rows[:, :, col]) * _K2
        return _fmix64(h)

    def add(self, texts: Sequence[str]) -> None:
        """Index more texts (empty texts get an id but no band entries)."""
        if not texts:
            return
        sig = self.signatures(texts)
        rows = np.flatnonzero((sig != _EMPTY).any(axis=1))
        keys = self.band_keys(sig[rows]).ravel()
        ids = np.repeat(rows + self._size, self.bands)
        self._size += len(texts)
        if self._pending_n + len(keys) >= self.merge_every:
            self._merge(keys, ids)
            return
        for key, ident in zip(keys.tolist(), ids.tolist(), strict=True):
            self._pending.setdefault(key, []).append(ident)
        self._pending_n += len(keys)

    def _merge(self, keys: np.ndarray, ids: np.ndarray) -> None:
        """Move the pending entries and ``keys``/``ids`` into the sorted arrays."""
        if self._pending:
            pk = np.fromiter(
                (k for k, v in self._pending.items() for _ in v), dtype=np.uint64, count=-1
            )
            pi = np.fromiter((i for v in self._pending.values() for i in v), dtype=np.int64)
            keys, ids = np.concatenate((keys, pk)), np.concatenate((ids, pi))
            self._pending.clear()
            self._pending_n = 0
        order = np.argsort(keys, kind="stable")
        keys, ids = keys[order], ids[order]
        if len(self._keys) == 0:
            self._keys, self._ids = keys, ids
            return
        where = np.searchsorted(self._keys, keys, side="right")
        self._keys = np.insert(self._keys, where, keys)
        self._ids = np.insert(self._ids, where, ids)

    def query(self, text: str) -> set[int]:
        """Ids of the texts sharing at least one band with ``text`` (at most ``max_candidates``,
        those sharing the most bands)."""
        sig = self.signatures([text])
        if not (sig != _EMPTY).any():
            return set()
        qkeys = self.band_keys(sig)[0]
        lo = np.searchsorted(self._keys, qkeys, side="left")
        hi = np.searchsorted(self._keys, qkeys, side="right")
        parts = [self._ids[a:b] for a, b in zip(lo.tolist(), hi.tolist(), strict=True) if b > a]
        if self._pending:
            found = [self._pending[k] for k in qkeys.tolist() if k in self._pending]
            parts += [np.asarray(ids, dtype=np.int64) for ids in found]
        if not parts:
            return set()
        ids = np.concatenate(parts)
        if len(ids) > self.max_candidates:
            ids, counts = np.unique(ids, return_counts=True)
            if len(ids) > self.max_candidates:
                ids = ids[np.argpartition(-counts, self.max_candidates - 1)[: self.max_candidates]]
        return set(ids.tolist())

    def rebuild(self, texts: Sequence[str]) -> None:
        """Re-index ``texts`` from scratch."""
        self._size = 0
        self._keys = np.empty(0, dtype=np.uint64)
        self._ids = np.empty(0, dtype=np.int64)
        self._pending.clear()
        self._pending_n = 0
        sig = self.signatures(texts)
        rows = np.flatnonzero((sig != _EMPTY).any(axis=1))
        self._size = len(texts)
        self._merge(self.band_keys(sig[rows]).ravel(), np.repeat(rows, self.bands))

    def params(self) -> dict[str, Any]:
        """Settings that a saved index must share to be reused."""
        return {
            "kind": self.kind,
            "ngram": self.ngram,
            "threshold": self.threshold,
            "num_perm": self.num_perm,
            "seed": self.seed,
            "bands": self.bands,
            "rows": self.rows,
            "permutations": hashlib.sha256(self._a.tobytes() + self._b.tobytes()).hexdigest()[:16],
        }  # max_candidates only acts at query time: a saved index serves any value

    def save(self, folder: Path) -> None:
        """Write the band tables as ``lsh_keys.npy`` and ``lsh_ids.npy``."""
        self._merge(np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.int64))
        np.save(folder / "lsh_keys.npy", self._keys, allow_pickle=False)
        np.save(folder / "lsh_ids.npy", self._ids, allow_pickle=False)

    def load(self, folder: Path, size: int) -> None:
        """Read the band tables saved for ``size`` texts."""
        keys = np.load(folder / "lsh_keys.npy", allow_pickle=False)
        ids = np.load(folder / "lsh_ids.npy", allow_pickle=False)
        if keys.dtype != np.uint64 or ids.dtype != np.int64 or keys.shape != ids.shape:
            raise ValueError("LSH tables of the wrong type or shape")
        if keys.ndim != 1 or (len(ids) and (ids.min() < 0 or ids.max() >= size)):
            raise ValueError("LSH tables do not match the saved number of texts")
        if len(keys) > 1 and not bool(np.all(keys[1:] >= keys[:-1])):
            raise ValueError("LSH keys are not sorted")
        self._keys, self._ids, self._size = keys, ids, size
        self._pending.clear()
        self._pending_n = 0
