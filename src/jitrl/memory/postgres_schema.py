"""Identification, creation and migration of jitrl's tables in a PostgreSQL database.

A jitrl store is three tables in one PostgreSQL schema (the first existing schema of the
connection's ``search_path``, ``public`` by default): ``episodes``, ``experiences`` and
``jitrl_schema_version``, a one-row table that marks the store as jitrl's and holds its schema
version (:data:`SCHEMA_VERSION`). :func:`prepare_schema` refuses a database whose tables of these
names are not a jitrl store, or whose version is newer than this code or unknown, *before*
writing anything; it creates the tables in a database that has none of them, and runs
:func:`migrate_schema` on an older store. Creation and migration hold a transaction-level
advisory lock, so processes that open a new database at once create the tables exactly once.

Text: PostgreSQL ``text`` cannot hold the NUL character. :func:`encode_text` stores a string that
contains NUL (or starts with U+FFFF, the escape mark) as U+FFFF followed by the string with
``\\`` doubled and NUL written as ``\\0``; every other string is stored verbatim, so SQL sees
ordinary text. :func:`decode_text` reverses it; the mapping is injective, so equality, ``UNIQUE``
and ``count(DISTINCT ...)`` keep their meaning.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final, Literal
from urllib.parse import urlsplit, urlunsplit

from jitrl.memory.base import StoreError, apply_migrations

if TYPE_CHECKING:
    from psycopg import Connection

logger = logging.getLogger(__name__)

INSTALL_HINT: Final = "PostgreSQL stores need psycopg 3: pip install 'jitrl[postgres]'"
#: Schema version written by this code; stores with another version are migrated or refused.
SCHEMA_VERSION: Final = 2
#: Value of ``jitrl_schema_version.application`` in every jitrl store.
APPLICATION: Final = "jitrl"
VERSION_TABLE: Final = "jitrl_schema_version"
DATA_TABLES: Final = ("episodes", "experiences")
#: ``pg_advisory_xact_lock`` key held while creating or migrating (ASCII "JITR").
LOCK_KEY: Final = 0x4A49_5452


def import_psycopg() -> ModuleType:
    """The psycopg module, imported on first use (``StoreError`` with an install hint)."""
    try:
        import psycopg
    except ImportError as exc:
        raise StoreError(INSTALL_HINT) from exc
    return psycopg


_NAMESPACE_INDEXES: Final = (
    "CREATE INDEX episodes_namespace ON episodes (namespace)",
    "CREATE INDEX experiences_namespace ON experiences (namespace)",
)

_SCHEMA: tuple[str, ...] = (
    f"""CREATE TABLE {VERSION_TABLE} (
        singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
        application text NOT NULL,
        version     integer NOT NULL
    )""",
    f"COMMENT ON TABLE {VERSION_TABLE} IS 'jitrl experience store: schema version'",
    """CREATE TABLE episodes (
        seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        episode_id   text NOT NULL UNIQUE,
        task_id      text NOT NULL,
        steps        integer NOT NULL,
        total_reward double precision NOT NULL,
        created_at   double precision NOT NULL,
        meta         json NOT NULL DEFAULT '{}',
        namespace    text NOT NULL DEFAULT 'default'
    )""",
    """CREATE TABLE experiences (
        episode_seq bigint NOT NULL REFERENCES episodes (seq),
        position    integer NOT NULL,
        episode_id  text NOT NULL,
        step        bigint NOT NULL,
        task_id     text NOT NULL,
        state_text  text NOT NULL,
        state_key   text,
        action      text NOT NULL,
        reward      double precision NOT NULL,
        ret         double precision NOT NULL,
        created_at  double precision NOT NULL,
        namespace   text NOT NULL DEFAULT 'default',
        PRIMARY KEY (episode_seq, position)
    )""",
    "CREATE INDEX experiences_state_key ON experiences (state_key)",
    "CREATE INDEX experiences_episode_id ON experiences (episode_id)",
    *_NAMESPACE_INDEXES,
)


def _add_namespaces(conn: Connection[Any]) -> None:
    """Version 1 → 2: every episode and record gets a namespace (``default`` for the old ones)."""
    for table in ("episodes", "experiences"):
        conn.execute(f"ALTER TABLE {table} ADD COLUMN namespace text NOT NULL DEFAULT 'default'")
    for statement in _NAMESPACE_INDEXES:
        conn.execute(statement)


#: Schema upgrades: ``_MIGRATIONS[v]`` turns a version-``v`` store into a version ``v + 1`` one.
_MIGRATIONS: Mapping[int, Callable[[Connection[Any]], None]] = {1: _add_namespaces}

_PROBE = """
    SELECT current_schema(), name, n.nspname
    FROM unnest(%s::text[]) WITH ORDINALITY AS wanted (name, i)
    LEFT JOIN pg_class c ON c.oid = to_regclass(quote_ident(name))
    LEFT JOIN pg_namespace n ON n.oid = c.relnamespace
    ORDER BY i
"""

_Plan = Literal["ok", "init", "migrate"]


@dataclass(frozen=True)
class _Probe:
    """What a database says about the tables jitrl would use.

    Attributes:
        schema: the schema new tables go to (``None``: no schema of the search path exists).
        found: for each of jitrl's table names the search path resolves, its schema.
        marker: the rows of ``jitrl_schema_version`` as ``(application, version)`` pairs.
    """

    schema: str | None
    found: Mapping[str, str]
    marker: tuple[tuple[object, object], ...]


def _probe(conn: Connection[Any], where: str) -> _Probe:
    """Read which of jitrl's tables exist (where the search path finds them) and the marker."""
    rows = conn.execute(_PROBE, ([VERSION_TABLE, *DATA_TABLES],)).fetchall()
    schema = rows[0][0]
    found = {name: namespace for _, name, namespace in rows if namespace is not None}
    marker: tuple[tuple[object, object], ...] = ()
    if VERSION_TABLE in found:
        from psycopg import Error

        try:
            marker = tuple(
                (application, version)
                for application, version in conn.execute(
                    f"SELECT application, version FROM {VERSION_TABLE}"
                )
            )
        except Error as exc:
            raise StoreError(
                f"{where}: table {found[VERSION_TABLE]}.{VERSION_TABLE} is not jitrl's ({exc}); "
                "refusing to use or modify this database"
            ) from exc
    return _Probe(schema, found, marker)


def _plan(where: str, probe: _Probe) -> _Plan:
    """Decide what opening needs (nothing, create the tables, migrate) or refuse the database."""
    if VERSION_TABLE not in probe.found:
        if probe.found:
            raise StoreError(
                f"{where}: the database has tables {sorted(probe.found)} that are not part of a "
                f"jitrl store (no {VERSION_TABLE} table); refusing to use or modify them. Use "
                "another database, or another schema (e.g. ?options=-csearch_path%3Djitrl)"
            )
        if probe.schema is None:
            raise StoreError(f"{where}: no schema of the search_path exists to create tables in")
        return "init"
    if len(probe.marker) != 1 or probe.marker[0][0] != APPLICATION:
        raise StoreError(
            f"{where}: table {VERSION_TABLE} holds {list(probe.marker)!r}, not the marker of a "
            "jitrl store; refusing to use or modify this database"
        )
    version = probe.marker[0][1]
    if not isinstance(version, int) or version < 1:
        raise StoreError(f"{where}: unknown jitrl schema version {version!r}")
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{where}: jitrl store with schema version {version}, newer than this jitrl supports "
            f"({SCHEMA_VERSION}); upgrade jitrl to open it"
        )
    if version < SCHEMA_VERSION:
        return "migrate"
    home = probe.found[VERSION_TABLE]
    missing = sorted(name for name in DATA_TABLES if probe.found.get(name) != home)
    if missing:
        raise StoreError(f"{where}: the jitrl store in schema {home!r} lacks tables {missing}")
    return "ok"


def migrate_schema(conn: Connection[Any], from_version: int) -> None:
    """Upgrade a store from schema ``from_version`` to :data:`SCHEMA_VERSION`.

    Runs inside the caller's transaction (an upgrade is all-or-nothing) and applies
    ``_MIGRATIONS[v]`` for every ``v`` from ``from_version`` up, then updates the version row.
    Version 2 added namespaces (version-1 records land in ``default``).

    Raises:
        StoreError: ``from_version`` is newer than this code or has no upgrade path.
    """
    apply_migrations(conn, from_version, SCHEMA_VERSION, _MIGRATIONS)
    conn.execute(f"UPDATE {VERSION_TABLE} SET version = %s", (SCHEMA_VERSION,))


def _create(conn: Connection[Any]) -> None:
    """Create jitrl's tables and the version row (inside the caller's transaction)."""
    for statement in _SCHEMA:
        conn.execute(statement)
    conn.execute(
        f"INSERT INTO {VERSION_TABLE} (application, version) VALUES (%s, %s)",
        (APPLICATION, SCHEMA_VERSION),
    )


def prepare_schema(conn: Connection[Any], where: str, create: bool) -> None:
    """Check the database behind ``conn`` (autocommit) and create or migrate jitrl's tables.

    Args:
        conn: an open connection in autocommit mode.
        where: the database named in error messages (a URL without password).
        create: create the tables when the database has none of them.

    Raises:
        StoreError: the tables are not a jitrl store, the version is newer or unknown, the store
            cannot be migrated, or there is none while ``create`` is false.
        psycopg.Error: the server refused a statement (e.g. no CREATE privilege).
    """
    plan = _plan(where, _probe(conn, where))
    if plan == "ok":
        return
    if plan == "init" and not create:
        raise StoreError(f"{where}: no jitrl store in this database (create=False)")
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        probe = _probe(conn, where)  # another process may have created or migrated meanwhile
        plan = _plan(where, probe)
        if plan == "init":
            _create(conn)
            logger.info("created jitrl store in %s (schema %s)", where, probe.schema)
        elif plan == "migrate":
            version = probe.marker[0][1]
            assert isinstance(version, int)
            try:
                migrate_schema(conn, version)
            except StoreError as exc:
                raise StoreError(f"{where}: {exc}") from exc


_ESCAPE_MARK = "\uffff"
_ESCAPED = re.compile(r"\\(.)", re.DOTALL)


def encode_text(value: str) -> str:
    """``value`` as stored in a ``text`` column (verbatim unless it holds NUL or starts with
    U+FFFF; see the module docstring)."""
    if "\x00" not in value and not value.startswith(_ESCAPE_MARK):
        return value
    return _ESCAPE_MARK + value.replace("\\", "\\\\").replace("\x00", "\\0")


def decode_text(stored: str) -> str:
    """The inverse of :func:`encode_text`."""
    if not stored.startswith(_ESCAPE_MARK):
        return stored
    return _ESCAPED.sub(lambda m: "\x00" if m.group(1) == "0" else m.group(1), stored[1:])


_KEYWORD_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)")
_QUERY_PASSWORD = re.compile(r"(^|&)(password=)[^&]*")


def redact_url(url: str) -> str:
    """``url`` (a URL or a ``key=value`` connection string) with any password replaced by ***."""
    if "://" not in url:
        return _KEYWORD_PASSWORD.sub(r"\1***", url)
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hosts = netloc.rpartition("@")
        user, colon, _ = userinfo.partition(":")
        netloc = f"{user}{':***' if colon else ''}@{hosts}"
    query = _QUERY_PASSWORD.sub(r"\1\2***", parts.query)
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def use_schema(conn: Connection[Any], where: str, schema: str, create: bool) -> None:
    """Point ``conn``'s ``search_path`` at ``schema`` (created first when missing and
    ``create``; an existing schema needs no CREATE privilege on the database)."""
    from psycopg import sql

    found = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()
    if found is None and not create:
        raise StoreError(f"{where}: no jitrl store in schema {schema!r} (it does not exist)")
    if found is None:
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
