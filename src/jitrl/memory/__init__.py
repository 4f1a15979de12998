"""Persistent experience memory: the store protocol, the SQLite and PostgreSQL stores, JSON
Lines transfer and copying between stores.

Open a store with :func:`open_store`::

    from contextlib import closing
    with closing(open_store("runs/memory.sqlite")) as store:
        store.add_episode(experiences)

``open_store("postgresql://user:password@host/dbname")`` opens a :class:`PostgresStore` (needs
``pip install 'jitrl[postgres]'``); :func:`migrate` copies every episode between two stores.
``open_store(path, read_only=True)`` reads a store without writing anything next to it.

Copy a SQLite store with :func:`backup_store` (``jitrl memory backup SRC DST``), not by copying
its file: the newest episodes may still be in the ``-wal`` file beside it (see
:mod:`jitrl.memory.sqlite`).
"""

from __future__ import annotations

import logging
import os
import sqlite3
from contextlib import closing
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
    "backup_store",
    "export_jsonl",
    "import_jsonl",
    "migrate",
    "migrate_schema",
    "open_store",
]

logger = logging.getLogger(__name__)

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
    read_only: bool = False,
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
        read_only: only read the store (``create`` is then ignored). A SQLite store is opened
            so that nothing is written and no ``-wal``/``-shm`` file is left beside it, even in a
            folder this process may not write; for PostgreSQL it means ``create=False``.

    Raises:
        ValueError: a URL with another scheme, or ``sqlite://`` without a path.
        TypeError: ``config`` is for the other backend.
        StoreError: the file or database cannot be used as a store (see :class:`SQLiteStore`
            and :class:`PostgresStore`).
    """
    if isinstance(spec, os.PathLike):
        return _sqlite(spec, config, create, read_only)
    scheme, separator, rest = spec.partition(_SCHEME_SEPARATOR)
    if not separator:
        return _sqlite(spec, config, create, read_only)
    scheme = scheme.lower()
    if scheme in _POSTGRES_SCHEMES:
        if isinstance(config, SQLiteConfig):
            raise TypeError("SQLiteConfig given for a PostgreSQL store; pass a PostgresConfig")
        url = f"{scheme}{separator}{rest}"
        return PostgresStore(url, config, create=create and not read_only)
    if scheme != "sqlite":
        raise ValueError(
            f"unsupported store URL scheme {scheme!r} in {spec!r} (use a file path, sqlite:///PATH "
            "or postgresql://...)"
        )
    if not spec.lower().startswith(_SQLITE_PREFIX) or len(spec) == len(_SQLITE_PREFIX):
        raise ValueError(f"expected sqlite:///path (e.g. sqlite:///memory.sqlite), got {spec!r}")
    return _sqlite(Path(spec[len(_SQLITE_PREFIX) :]), config, create, read_only)


def _sqlite(
    path: str | os.PathLike[str],
    config: SQLiteConfig | PostgresConfig | None,
    create: bool,
    read_only: bool,
) -> SQLiteStore:
    """The :class:`SQLiteStore` at ``path``, opened as :func:`open_store` was asked to."""
    return SQLiteStore(path, _sqlite_config(config), create=create, read_only=read_only)


def backup_store(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    force: bool = False,
    config: SQLiteConfig | None = None,
) -> StoreStats:
    """Copy the SQLite store ``src`` to ``dst`` with SQLite's online backup API.

    The copy is a consistent snapshot that includes what is still in ``src``'s ``-wal`` file,
    taken while other processes may keep writing to ``src``, which is only read (opened
    read-only: this works in a folder this process may not write). A new ``dst`` is written
    to a temporary file beside it and renamed into place when complete, so it never holds half
    a copy. An existing ``dst`` is overwritten only with ``force`` and only if it is a jitrl
    store; it is then replaced in one transaction under its own lock, so processes using it
    see the old content or the new one.

    Args:
        src: the store to copy (a SQLite file; see :func:`open_store` for paths).
        dst: the file to write (missing folders are created).
        force: overwrite ``dst`` when it exists.
        config: how to open both stores (lock wait, ``synchronous``).

    Returns:
        The statistics of the copy.

    Raises:
        StoreError: ``src`` is not a readable jitrl store, ``dst`` exists (without ``force``),
            is ``src`` itself or is not a jitrl store, or the copy cannot be written.
    """
    source, target = Path(src).expanduser(), Path(dst).expanduser()
    cfg = config if config is not None else SQLiteConfig()
    exists = target.exists() or target.is_symlink()
    if exists and not force:
        raise StoreError(f"{target} already exists (give --force to overwrite it, or another name)")
    if target.exists() and source.exists() and os.path.samefile(source, target):
        raise StoreError(f"{target} is the store being copied (choose another destination)")
    with closing(SQLiteStore(source, cfg, read_only=True)) as reader:
        if exists:
            with closing(SQLiteStore(target, cfg, create=False)) as writer:
                reader.backup_to(writer)
        else:
            _backup_to_new_file(reader, target, cfg)
    with closing(SQLiteStore(target, cfg, read_only=True)) as copy:
        stats = copy.stats()
    logger.info("backed up %s to %s: %s", source, target, stats)
    return stats


def _backup_to_new_file(reader: SQLiteStore, target: Path, config: SQLiteConfig) -> None:
    """Back ``reader`` up to a temporary file beside ``target``, then rename it to ``target``."""
    temporary = target.with_name(f".{target.name}.{os.getpid()}.backup")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"{target}: cannot create the folder: {exc} (check the path)") from exc
    if not os.access(target.parent, os.W_OK | os.X_OK):
        raise StoreError(f"cannot write {target}: its folder is read-only (choose another folder)")
    try:
        # A plain connection to a new file: the copy takes the source's page size and WAL mode.
        with closing(sqlite3.connect(temporary, timeout=config.busy_timeout_s)) as conn:
            reader.backup_to(conn)
        if target.exists():
            raise StoreError(f"{target} was created meanwhile (give --force to overwrite it)")
        os.replace(temporary, target)
    finally:
        for leftover in (temporary, *(Path(f"{temporary}{s}") for s in ("-journal", "-wal"))):
            leftover.unlink(missing_ok=True)
