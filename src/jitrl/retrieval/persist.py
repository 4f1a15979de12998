"""A candidate index saved next to its store, and reopened only while it matches the store.

Layout: for a store file ``memory.sqlite`` and ``index = "lsh"`` the folder
``memory.sqlite.lsh/`` holds the index's payload (numpy ``.npy`` files for LSH, usearch's own
file for vectors; never pickle) and ``meta.json``::

    {"format": 1, "params": {...}, "texts": 1234, "digest": "<sha256>",
     "records": 20000, "last_episode_id": "..."}

``texts``/``digest`` identify the distinct state texts the index holds, in id order;
``records``/``last_episode_id`` are the store's record count and last episode when it was saved.
:func:`open_index` reads the store (the in-memory index needs every record anyway), then:

- ``loaded``: the saved index holds exactly the store's texts, records and last episode;
- ``caught-up``: the store grew behind the index's back (another process, or no save before
  exit) and the saved texts are a prefix of the store's: only the new texts are indexed;
- ``rebuilt``: the saved index is missing parts, corrupt, built with other settings, or not a
  prefix of the store (e.g. the store was replaced): it is rebuilt from the store's texts;
- ``built``: there was nothing saved (or the store has no file path).

:func:`save_index` writes a new folder beside the old one and swaps them, so a crash leaves
either the old index, the new one, or none (then the next open rebuilds).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

from jitrl.cachedir import cache_root
from jitrl.memory.base import ExperienceStore
from jitrl.method.config import RetrievalConfig
from jitrl.method.types import Experience
from jitrl.retrieval.base import CandidateIndex, PersistentIndex
from jitrl.retrieval.index import MemoryIndex

__all__ = ["FORMAT", "IndexStatus", "index_folder", "open_index", "save_index", "texts_digest"]

log = logging.getLogger(__name__)

FORMAT = 1
"""Version of the saved layout."""
IndexStatus = Literal["built", "loaded", "caught-up", "rebuilt"]
INDEX_CACHE_SUBDIR = "indexes"
"""Candidate indexes of server stores live in ``$JITRL_CACHE/indexes``."""
INDEX_KEY_CHARS = 16
"""Hex characters of the URL hash naming such an index's folder."""
_SUFFIX = {"lsh": ".lsh", "vector": ".vec"}


def index_folder(store: object, kind: str, scope: str | None = None) -> Path | None:
    """Where ``store``'s candidate index of this kind is saved, or None.

    ``scope`` names the part of the store indexed (a learner's namespaces, see
    :class:`~jitrl.method.config.ScopeConfig`); each scope gets its own folder, suffixed by a
    hash of it, and ``None`` (the default namespace) keeps the plain name.

    ``<store file>.lsh`` / ``.vec`` beside a store file (``SQLiteStore``); for a server store
    (``PostgresStore``) a folder under ``$JITRL_CACHE/indexes`` named by a hash of its
    :attr:`~jitrl.memory.base.ExperienceStore.location` (URL and schema), so every process on a
    machine reuses one copy. ``None`` for a store that lives nowhere durable.
    """
    folder = _store_index_folder(store, kind)
    if folder is None or scope is None:
        return folder
    key = hashlib.sha256(scope.encode()).hexdigest()[:INDEX_KEY_CHARS]
    return folder.with_name(f"{folder.stem}.{key}{folder.suffix}")


def _store_index_folder(store: object, kind: str) -> Path | None:
    if kind not in _SUFFIX:
        return None
    if isinstance(store, (str, os.PathLike)):
        return Path(f"{os.fspath(store)}{_SUFFIX[kind]}")
    where = store.location if isinstance(store, ExperienceStore) else None
    if where is None:
        return None
    if "://" not in where:  # a file: the index lives beside it
        return Path(f"{where}{_SUFFIX[kind]}")
    key = hashlib.sha256(where.encode()).hexdigest()[:INDEX_KEY_CHARS]
    return cache_root() / INDEX_CACHE_SUBDIR / f"{key}{_SUFFIX[kind]}"


def texts_digest(texts: Sequence[str]) -> str:
    """SHA-256 over the texts in order (each length-prefixed, so the split is unambiguous)."""
    digest = hashlib.sha256()
    for text in texts:
        data = text.encode("utf-8")
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


def _read_meta(folder: Path) -> dict[str, Any]:
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{folder}: unknown index format")
    if not isinstance(meta.get("texts"), int) or not isinstance(meta.get("digest"), str):
        raise ValueError(f"{folder}: meta.json lacks texts/digest")
    return meta


def _load(index: CandidateIndex, folder: Path) -> dict[str, Any] | None:
    """Fill ``index`` from ``folder``; the saved meta, or None when unusable (logged)."""
    if not isinstance(index, PersistentIndex) or not folder.is_dir():
        return None
    try:
        meta = _read_meta(folder)
        if meta.get("params") != index.params():
            log.info("%s: saved with other settings; rebuilding", folder)
            return None
        index.load(folder, meta["texts"])
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        log.warning("%s: unusable saved index (%s); rebuilding", folder, exc)
        return None
    return meta


def open_index(
    config: RetrievalConfig,
    store: Iterable[Experience],
    folder: Path | None = None,
    *,
    candidates: CandidateIndex | None = None,
) -> tuple[MemoryIndex, IndexStatus]:
    """A :class:`MemoryIndex` over ``store``, reusing the candidate index saved beside it.

    Args:
        config: retrieval settings; with ``index="exact"`` nothing is saved or loaded.
        store: the experience store (or any iterable of records, in store order).
        folder: where the index is saved; default :func:`index_folder` of the store.
        candidates: an empty candidate index to fill (default: the one ``config`` names), e.g.
            a :class:`~jitrl.retrieval.vector.VectorIndex` with a custom embedding.
    """
    if config.index == "exact":
        return MemoryIndex(config, store), "built"
    from jitrl.retrieval.factory import make_candidate_index

    cand = candidates if candidates is not None else make_candidate_index(config)
    folder = folder or index_folder(store, config.index)
    meta = _load(cand, folder) if folder is not None else None
    index = MemoryIndex(config, store, candidates=cand)
    status: IndexStatus
    if meta is None:
        status = "rebuilt" if folder is not None and folder.exists() else "built"
    elif (
        meta["texts"] > len(index.texts)
        or texts_digest(index.texts[: meta["texts"]]) != meta["digest"]
    ):
        log.warning("%s: does not match the store's states; rebuilding", folder)
        cand.rebuild(index.texts)
        status = "rebuilt"
    elif (meta.get("records"), meta.get("last_episode_id"), meta["texts"]) == (
        index.seen,
        index.last_episode_id,
        len(index.texts),
    ):
        status = "loaded"
    else:
        log.info("%s: %d records added since it was saved", folder, index.seen - meta["records"])
        status = "caught-up"
    return index, status


def save_index(index: MemoryIndex, folder: Path | None = None, store: object = None) -> Path | None:
    """Save ``index``'s candidate index (LSH or vector) to ``folder`` or beside ``store``.

    Returns the folder written, or None when there is nothing to save (``exact`` index, or no
    folder and no store path) or saving failed (logged: the index is rebuilt on the next open).
    """
    cand = index.candidates
    if not isinstance(cand, PersistentIndex):
        return None
    folder = folder or index_folder(store, cand.kind)
    if folder is None:
        return None
    meta = {
        "format": FORMAT,
        "params": cand.params(),
        "texts": len(cand),
        "digest": texts_digest(index.texts[: len(cand)]),
        "records": index.seen,
        "last_episode_id": index.last_episode_id,
    }
    tmp = folder.with_name(f"{folder.name}.tmp-{os.getpid()}")
    old = folder.with_name(f"{folder.name}.old-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        cand.save(tmp)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
        if folder.exists():
            folder.rename(old)
        tmp.rename(folder)
    except OSError as err:  # e.g. another process saving the same index at this moment
        log.warning("could not save the index to %s (%s); the next open rebuilds it", folder, err)
        return None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return folder
