"""Persistent experience memory: the store protocol, the SQLite store and JSON Lines transfer.

Open a store with :func:`open_store`::

    from contextlib import closing
    with closing(open_store("runs/memory.sqlite")) as store:
        store.add_episode(experiences)
"""

from __future__ import annotations

import os
from pathlib import Path

from jitrl.memory.base import DuplicateEpisodeError, ExperienceStore, StoreError, StoreStats
from jitrl.memory.jsonl import ImportResult, export_jsonl, import_jsonl
from jitrl.memory.sqlite import (
    APPLICATION_ID,
    SCHEMA_VERSION,
    SQLiteConfig,
    SQLiteStore,
    migrate_schema,
)

__all__ = [
    "APPLICATION_ID",
    "SCHEMA_VERSION",
    "DuplicateEpisodeError",
    "ExperienceStore",
    "ImportResult",
    "SQLiteConfig",
    "SQLiteStore",
    "StoreError",
    "StoreStats",
    "export_jsonl",
    "import_jsonl",
    "migrate_schema",
    "open_store",
]

_SCHEME_SEPARATOR = "://"
_SQLITE_PREFIX = "sqlite:///"
_POSTGRES_SCHEMES = frozenset({"postgresql", "postgres"})


def open_store(
    spec: str | os.PathLike[str],
    config: SQLiteConfig | None = None,
    *,
    create: bool = True,
) -> ExperienceStore:
    """Open the store that ``spec`` names.

    Accepted forms:

    - a filesystem path (``str`` or ``Path``; ``~`` is expanded) → :class:`SQLiteStore`;
    - ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db`` (SQLAlchemy's
      convention: the path is everything after the third slash) → :class:`SQLiteStore`;
    - ``postgresql://...`` / ``postgres://...`` → ``NotImplementedError`` for now.

    Args:
        spec: the path or URL.
        config: SQLite settings (defaults to :class:`SQLiteConfig()`).
        create: create a new store when the file does not exist.

    Raises:
        NotImplementedError: a PostgreSQL URL.
        ValueError: a URL with another scheme, or ``sqlite://`` without a path.
        StoreError: the file cannot be used as a store (see :class:`SQLiteStore`).
    """
    if isinstance(spec, os.PathLike):
        return SQLiteStore(spec, config, create=create)
    scheme, separator, _ = spec.partition(_SCHEME_SEPARATOR)
    if not separator:
        return SQLiteStore(spec, config, create=create)
    scheme = scheme.lower()
    if scheme in _POSTGRES_SCHEMES:
        raise NotImplementedError(
            f"PostgreSQL stores ({scheme}://...) come with a later jitrl release; for now use "
            "a SQLite file path or sqlite:///path"
        )
    if scheme != "sqlite":
        raise ValueError(f"unsupported store URL scheme {scheme!r} in {spec!r}")
    if not spec.lower().startswith(_SQLITE_PREFIX) or len(spec) == len(_SQLITE_PREFIX):
        raise ValueError(f"expected sqlite:///path (e.g. sqlite:///memory.sqlite), got {spec!r}")
    return SQLiteStore(Path(spec[len(_SQLITE_PREFIX) :]), config, create=create)
