"""Persistent experience memory: the store protocol, the SQLite and PostgreSQL stores, JSON
Lines transfer and copying between stores.

Open a store with :func:`open_store`::

    from contextlib import closing
    with closing(open_store("runs/memory.sqlite")) as store:
        store.add_episode(experiences)

``open_store("postgresql://user:password@host/dbname")`` opens a :class:`PostgresStore` (needs
``pip install 'jitrl[postgres]'``); :func:`migrate` copies every episode between two stores.
"""

from __future__ import annotations

import os
from pathlib import Path

from jitrl.memory.base import DuplicateEpisodeError, ExperienceStore, StoreError, StoreStats
from jitrl.memory.jsonl import ImportResult, export_jsonl, import_jsonl
from jitrl.memory.migrate import migrate
from jitrl.memory.postgres import PostgresConfig, PostgresStore
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
    "PostgresConfig",
    "PostgresStore",
    "SQLiteConfig",
    "SQLiteStore",
    "StoreError",
    "StoreStats",
    "export_jsonl",
    "import_jsonl",
    "migrate",
    "migrate_schema",
    "open_store",
]

_SCHEME_SEPARATOR = "://"
_SQLITE_PREFIX = "sqlite:///"
_POSTGRES_SCHEMES = frozenset({"postgresql", "postgres"})


def _sqlite_config(config: SQLiteConfig | PostgresConfig | None) -> SQLiteConfig | None:
    """``config`` for a SQLite store (``TypeError`` for PostgreSQL settings)."""
    if isinstance(config, PostgresConfig):
        raise TypeError("PostgresConfig given for a SQLite store; pass a SQLiteConfig")
    return config


def open_store(
    spec: str | os.PathLike[str],
    config: SQLiteConfig | PostgresConfig | None = None,
    *,
    create: bool = True,
) -> ExperienceStore:
    """Open the store that ``spec`` names.

    Accepted forms:

    - a filesystem path (``str`` or ``Path``; ``~`` is expanded) → :class:`SQLiteStore`;
    - ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db`` (SQLAlchemy's
      convention: the path is everything after the third slash) → :class:`SQLiteStore`;
    - ``postgresql://[user[:password]@]host[:port]/dbname[?param=value...]`` (or
      ``postgres://``; libpq's URL form) → :class:`PostgresStore`.

    Args:
        spec: the path or URL.
        config: the backend's settings: :class:`SQLiteConfig` or :class:`PostgresConfig`
            (defaults to the backend's default settings).
        create: create a new store when the file does not exist / the database has no jitrl
            tables.

    Raises:
        ValueError: a URL with another scheme, or ``sqlite://`` without a path.
        TypeError: ``config`` is for the other backend.
        StoreError: the file or database cannot be used as a store (see :class:`SQLiteStore`
            and :class:`PostgresStore`).
    """
    if isinstance(spec, os.PathLike):
        return SQLiteStore(spec, _sqlite_config(config), create=create)
    scheme, separator, rest = spec.partition(_SCHEME_SEPARATOR)
    if not separator:
        return SQLiteStore(spec, _sqlite_config(config), create=create)
    scheme = scheme.lower()
    if scheme in _POSTGRES_SCHEMES:
        if isinstance(config, SQLiteConfig):
            raise TypeError("SQLiteConfig given for a PostgreSQL store; pass a PostgresConfig")
        return PostgresStore(f"{scheme}{separator}{rest}", config, create=create)
    if scheme != "sqlite":
        raise ValueError(f"unsupported store URL scheme {scheme!r} in {spec!r}")
    if not spec.lower().startswith(_SQLITE_PREFIX) or len(spec) == len(_SQLITE_PREFIX):
        raise ValueError(f"expected sqlite:///path (e.g. sqlite:///memory.sqlite), got {spec!r}")
    return SQLiteStore(Path(spec[len(_SQLITE_PREFIX) :]), _sqlite_config(config), create=create)
