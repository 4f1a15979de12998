"""Identification, access checks, creation and migration of jitrl's SQLite store files.

A jitrl store is marked with ``PRAGMA application_id`` (:data:`APPLICATION_ID`) and versioned
with ``PRAGMA user_version`` (:data:`SCHEMA_VERSION`). :func:`check_file` refuses anything else
*before* the file is opened for writing — a text file, random bytes, another application's
database, a store of a newer schema — and opens it read-only at most while doing so.
:func:`prepare_schema` creates the tables of a new store or runs :func:`migrate_schema`; the
connections themselves are made in :mod:`jitrl.memory.sqlite_connect`.
"""

from __future__ import annotations

import logging
import sqlite3
import struct
from collections.abc import Callable, Mapping
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from jitrl.memory.base import StoreError, apply_migrations

logger = logging.getLogger(__name__)

#: ``PRAGMA application_id`` of every jitrl store: the ASCII bytes ``"JITR"``.
_UNTOUCHED = "left untouched (give a jitrl store, or a new file name)"
APPLICATION_ID: Final = 0x4A49_5452
#: ``PRAGMA user_version`` written by this code; files with a larger value are refused.
SCHEMA_VERSION: Final = 2

_SQLITE_MAGIC = b"SQLite format 3\x00"
_HEADER_SIZE = 100  # the SQLite database header
_APPLICATION_ID_OFFSET = 68  # big-endian int32 inside the header
_FILE_FORMAT_OFFSET = 18  # header byte: 1 = rollback journal, 2 = WAL
_WAL_FORMAT = 2
_READ_HINT = "check its permissions; a -wal left without -shm needs a writer to open it once"
_OPEN: dict[str, Any] = {"isolation_level": None, "check_same_thread": False}
_INT32 = struct.Struct(">i")
_REQUIRED_TABLES = frozenset({"episodes", "experiences"})

NAMESPACE_INDEXES: Final = (
    "CREATE INDEX episodes_namespace ON episodes (namespace)",
    "CREATE INDEX experiences_namespace ON experiences (namespace)",
)

_SCHEMA: tuple[str, ...] = (
    """CREATE TABLE episodes (
        episode_id   TEXT PRIMARY KEY NOT NULL,
        task_id      TEXT NOT NULL,
        steps        INTEGER NOT NULL,
        total_reward REAL NOT NULL,
        created_at   REAL NOT NULL,
        meta         TEXT NOT NULL DEFAULT '{}',
        namespace    TEXT NOT NULL DEFAULT 'default'
    )""",
    """CREATE TABLE experiences (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        episode_id TEXT NOT NULL REFERENCES episodes (episode_id),
        step       INTEGER NOT NULL,
        task_id    TEXT NOT NULL,
        state_text TEXT NOT NULL,
        state_key  TEXT,
        action     TEXT NOT NULL,
        reward     REAL NOT NULL,
        ret        REAL NOT NULL,
        created_at REAL NOT NULL,
        namespace  TEXT NOT NULL DEFAULT 'default'
    )""",
    "CREATE INDEX experiences_state_key ON experiences (state_key)",
    "CREATE INDEX experiences_episode_id ON experiences (episode_id)",
    *NAMESPACE_INDEXES,
)


def _add_namespaces(conn: sqlite3.Connection) -> None:
    """Version 1 → 2: every episode and record gets a namespace (``default`` for the old ones)."""
    for table in ("episodes", "experiences"):
        conn.execute(f"ALTER TABLE {table} ADD COLUMN namespace TEXT NOT NULL DEFAULT 'default'")
    for statement in NAMESPACE_INDEXES:
        conn.execute(statement)


#: Schema upgrades: ``_MIGRATIONS[v]`` turns a version-``v`` store into a version ``v + 1`` one.
_MIGRATIONS: Mapping[int, Callable[[sqlite3.Connection], None]] = {1: _add_namespaces}

_Plan = Literal["ok", "init", "migrate"]


@dataclass(frozen=True)
class _Probe:
    """What a SQLite file says about itself."""

    application_id: int
    user_version: int
    tables: frozenset[str]
    empty: bool


def _probe(conn: sqlite3.Connection) -> _Probe:
    """Read the identification of the database behind ``conn`` in one snapshot (no writes)."""
    own_transaction = not conn.in_transaction
    if own_transaction:
        conn.execute("BEGIN")
    try:
        (application_id,) = conn.execute("PRAGMA application_id").fetchone()
        (user_version,) = conn.execute("PRAGMA user_version").fetchone()
        objects = conn.execute("SELECT type, name FROM sqlite_master").fetchall()
    finally:
        if own_transaction:
            conn.execute("COMMIT")
    tables = frozenset(name for kind, name in objects if kind == "table")
    return _Probe(int(application_id), int(user_version), tables, not objects)


def _plan(path: Path, probe: _Probe) -> _Plan:
    """Decide what opening needs (nothing, create the schema, migrate) or refuse the file."""
    if probe.application_id == APPLICATION_ID:
        if probe.user_version > SCHEMA_VERSION:
            raise StoreError(
                f"{path} is a jitrl store with schema version {probe.user_version}, newer than "
                f"this jitrl supports ({SCHEMA_VERSION}); upgrade jitrl to open it"
            )
        if probe.user_version < SCHEMA_VERSION:
            return "migrate"
        missing = sorted(_REQUIRED_TABLES - probe.tables)
        if missing:
            raise StoreError(f"{path} is marked as a jitrl store but lacks tables {missing}")
        return "ok"
    if probe.application_id == 0 and probe.user_version == 0 and probe.empty:
        return "init"
    raise StoreError(
        f"{path} is a SQLite database but not a jitrl store (application_id="
        f"{probe.application_id:#x}, user_version={probe.user_version}, tables="
        f"{sorted(probe.tables)}); {_UNTOUCHED}"
    )


def _read_header(path: Path, create: bool) -> bytes | None:
    """Return the first bytes of the file at ``path``, or ``None`` when it does not exist."""
    if path.is_dir():
        raise StoreError(
            f"{path} is a directory; a jitrl store is a single file (give a file name in it)"
        )
    try:
        with path.open("rb") as handle:
            return handle.read(_HEADER_SIZE)
    except FileNotFoundError:
        if not create:
            raise StoreError(
                f"no store at {path}: the file does not exist (check the path)"
            ) from None
        return None
    except OSError as exc:
        raise StoreError(f"{path} cannot be read: {exc}") from exc


def _header_application_id(header: bytes) -> int:
    """``application_id`` as written in a SQLite header (may lag behind an unmerged WAL)."""
    return int(_INT32.unpack_from(header, _APPLICATION_ID_OFFSET)[0])


def sidecar(path: Path, suffix: str) -> Path:
    """A file SQLite keeps next to the database ``path``: ``-wal``, ``-shm`` or ``-journal``."""
    return path.with_name(f"{path.name}{suffix}")


def _inspection_uri(path: Path, header: bytes) -> str:
    """A ``mode=ro`` URI for ``path`` that creates no file next to it (see the module doc)."""
    uri = f"{path.resolve().as_uri()}?mode=ro"
    if header[_FILE_FORMAT_OFFSET] == _WAL_FORMAT and not sidecar(path, "-wal").exists():
        # A WAL database without a -wal file has no open connection and all its content in the
        # main file: read it as immutable so that no -wal/-shm files are created next to it.
        uri += "&immutable=1"
    return uri


def _inspect_existing(path: Path, header: bytes, timeout: float) -> None:
    """Refuse a non-empty file that is not a jitrl store, opening it read-only at most."""
    if len(header) < _HEADER_SIZE or not header.startswith(_SQLITE_MAGIC):
        raise StoreError(f"{path} is not a SQLite database (no SQLite header); {_UNTOUCHED}")
    application_id = _header_application_id(header)
    if application_id not in (0, APPLICATION_ID):
        raise StoreError(
            f"{path} is a SQLite database of another application (application_id="
            f"{application_id:#x}, jitrl uses {APPLICATION_ID:#x}); {_UNTOUCHED}"
        )
    uri = _inspection_uri(path, header)
    try:
        with closing(sqlite3.connect(uri, uri=True, timeout=timeout, isolation_level=None)) as ro:
            probe = _probe(ro)
    except sqlite3.Error as exc:
        if application_id != APPLICATION_ID:
            raise StoreError(
                f"{path} starts like a SQLite database but cannot be read ({exc}); it may be "
                "corrupt, or need recovery by the program that wrote it; refusing to use or "
                "modify it"
            ) from exc
        # Our own store that needs recovery (e.g. a hot rollback journal): read-write will do it.
        logger.info("%s: read-only inspection failed (%s); recovering read-write", path, exc)
        return
    _plan(path, probe)


def migrate_schema(conn: sqlite3.Connection, from_version: int) -> None:
    """Upgrade a store from schema ``from_version`` to :data:`SCHEMA_VERSION`.

    Runs inside the caller's write transaction (so an upgrade is all-or-nothing) and applies
    ``_MIGRATIONS[v]`` for every ``v`` from ``from_version`` up, then sets ``user_version``.
    Version 2 added namespaces (version-1 records land in ``default``).

    Raises:
        StoreError: ``from_version`` is newer than this code or has no upgrade path.
    """
    apply_migrations(conn, from_version, SCHEMA_VERSION, _MIGRATIONS)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION:d}")


def rollback(conn: sqlite3.Connection) -> None:
    """Roll back the open transaction, if any (best effort: the original error matters more)."""
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            logger.exception("rollback failed")


def prepare_schema(conn: sqlite3.Connection, path: Path, create: bool) -> None:
    """Create (new/empty file) or migrate (older schema) the store behind ``conn`` if needed.

    The decision is re-checked under ``BEGIN IMMEDIATE``, so processes opening the same new file
    at once create the schema exactly once.

    Raises:
        StoreError: the database is not a jitrl store, is newer than this code, cannot be
            migrated, or is empty while ``create`` is false.
    """
    plan = _plan(path, _probe(conn))
    if plan == "ok":
        return
    if plan == "init" and not create:
        raise StoreError(f"{path} is an empty SQLite file, not a jitrl store (create=False)")
    conn.execute("BEGIN IMMEDIATE")
    try:
        probe = _probe(conn)
        plan = _plan(path, probe)
        if plan == "init":
            for statement in _SCHEMA:
                conn.execute(statement)
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID:d}")
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION:d}")
            logger.info("created jitrl store %s (schema version %d)", path, SCHEMA_VERSION)
        elif plan == "migrate":
            try:
                migrate_schema(conn, probe.user_version)
            except StoreError as exc:
                raise StoreError(f"{path}: {exc}") from exc
        conn.execute("COMMIT")
    except BaseException:
        rollback(conn)
        raise


def check_file(path: Path, create: bool, timeout: float) -> bool:
    """Refuse a path that is not (and cannot become) a jitrl store, without writing to it.

    Args:
        path: the store file.
        create: whether a missing file may be created.
        timeout: seconds to wait for locks while inspecting an existing database read-only.

    Returns:
        Whether the file exists already (``False``: the caller will create it).

    Raises:
        StoreError: a directory, an unreadable file, not a SQLite database, another
            application's database, a newer jitrl schema, or a missing file with ``create=False``.
    """
    header = _read_header(path, create)
    if header:
        _inspect_existing(path, header, timeout)
    return header is not None
