"""An :class:`~jitrl.memory.base.ExperienceStore` in a PostgreSQL database (psycopg 3).

Open one with ``open_store("postgresql://user:password@host:5432/dbname")`` (or
:class:`PostgresStore` directly); install the driver with ``pip install 'jitrl[postgres]'``.
Tables go to the first existing schema of the connection's ``search_path``; choose another with
``?options=-csearch_path%3Dmyschema`` in the URL. :mod:`jitrl.memory.postgres_schema` creates,
versions and checks them.

Layout: ``episodes`` (one row per episode; ``seq``, an identity column, numbers episodes in the
order they were written) and ``experiences`` (one row per decision, keyed by the episode's
``seq`` and its position in the episode). Iteration follows ``(seq, position)``: each episode's
records are contiguous and in their stored order, and the order never changes once written.

Concurrency: every episode is one transaction, so a crash never leaves half an episode; any
number of processes may write and read at once (PostgreSQL's MVCC: readers never block writers,
writers of different episodes never wait for each other). Duplicate episode ids are caught by
the ``UNIQUE`` constraint (``INSERT ... ON CONFLICT DO NOTHING``), so two writers racing with the
same id store it exactly once. A store object holds one connection; it may be shared between
threads (calls are serialised by a lock) but not across ``fork``: open one store per process.
After a lost connection the failing call raises :class:`StoreError` and the next call reconnects.

Text containing NUL, which PostgreSQL's ``text`` cannot hold, is stored escaped (see
:func:`~jitrl.memory.postgres_schema.encode_text`); every value round-trips exactly.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jitrl.memory.base import (
    DuplicateEpisodeError,
    ExperienceStore,
    StoreError,
    StoreStats,
    closed_on_failure,
    order_by_episode,
)
from jitrl.memory.postgres_schema import (
    decode_text,
    encode_text,
    import_psycopg,
    prepare_schema,
    redact_url,
    use_schema,
)
from jitrl.memory.validation import meta_to_json, validate_episode
from jitrl.method.types import Experience, State

if TYPE_CHECKING:
    from psycopg import Connection

logger = logging.getLogger(__name__)
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")

__all__ = ["PostgresConfig", "PostgresStore"]

_INSERT_EPISODE = (
    "INSERT INTO episodes (episode_id, task_id, steps, total_reward, created_at, meta, "
    "namespace) VALUES (%s, %s, %s, %s, %s, %s, %s) "
    "ON CONFLICT (episode_id) DO NOTHING RETURNING seq"
)
_INSERT_EXPERIENCE = (
    "INSERT INTO experiences (episode_seq, position, episode_id, step, task_id, state_text, "
    "state_key, action, reward, ret, created_at, namespace) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
_COLUMNS = (
    "episode_seq, position, episode_id, step, task_id, state_text, state_key, action, "
    "reward, ret, created_at, namespace"
)
_SELECT_BATCH = (
    f"SELECT {_COLUMNS} FROM experiences "
    "WHERE (episode_seq, position) > (%s, %s) AND episode_seq <= %s "
    "ORDER BY episode_seq, position LIMIT %s"
)
_SELECT_EPISODES = (
    f"SELECT {_COLUMNS} FROM experiences WHERE episode_id = ANY(%s) ORDER BY episode_seq, position"
)
_SELECT_EPISODE_IDS = (
    "SELECT episode_id FROM episodes WHERE %s::text[] IS NULL OR namespace = ANY(%s) ORDER BY seq"
)
_STATS = (
    "SELECT count(*), (SELECT count(*) FROM episodes), count(DISTINCT task_id), "
    "count(DISTINCT state_text), count(DISTINCT action), coalesce(avg(ret), 0.0), "
    "(SELECT version FROM jitrl_schema_version), count(DISTINCT namespace) FROM experiences"
)


@dataclass(frozen=True)
class PostgresConfig:
    """How a :class:`PostgresStore` connects. Every field is validated on construction.

    Parameters given in the URL (``connect_timeout``, ``application_name``) take precedence.
    """

    connect_timeout_s: float = 10.0
    """Seconds to wait for the server when connecting (rounded up to whole seconds)."""

    iter_batch_size: int = 512
    """Rows fetched per query while iterating; bounds the memory iteration holds."""

    application_name: str = "jitrl"
    """Shown in ``pg_stat_activity``."""

    schema: str | None = None
    """Schema that holds jitrl's tables, created when missing (``None``: the first existing
    schema of the connection's ``search_path``). One database can hold many stores this way,
    e.g. one per ``jitrl compare`` job."""

    def __post_init__(self) -> None:
        timeout = self.connect_timeout_s
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
            raise TypeError(f"connect_timeout_s must be a number, got {timeout!r}")
        if not math.isfinite(timeout) or timeout <= 0:
            raise ValueError(f"connect_timeout_s must be finite and > 0, got {timeout!r}")
        size = self.iter_batch_size
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"iter_batch_size must be a positive int, got {size!r}")
        if not isinstance(self.application_name, str):
            raise TypeError(f"application_name must be a str, got {self.application_name!r}")
        if self.schema is not None and not _SCHEMA_NAME.fullmatch(self.schema):
            raise ValueError(
                f"schema must be 1-63 lower-case letters, digits or _, not starting with a "
                f"digit; got {self.schema!r}"
            )


def _connect(url: str, where: str, config: PostgresConfig, create: bool) -> Connection[Any]:
    """Connect (autocommit), check the database and create or migrate jitrl's tables."""
    psycopg = import_psycopg()
    try:
        given = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.Error as exc:
        raise StoreError(f"{where}: invalid PostgreSQL URL: {exc}") from exc
    options = {
        "connect_timeout": str(max(1, math.ceil(config.connect_timeout_s))),
        "application_name": config.application_name,
    }
    extra = {key: value for key, value in options.items() if key not in given}
    try:
        conn: Connection[Any] = psycopg.connect(url, autocommit=True, **extra)
    except psycopg.Error as exc:
        raise StoreError(f"cannot connect to PostgreSQL at {where}: {exc}") from exc
    with closed_on_failure(conn, psycopg.Error, f"{where} cannot be opened as a jitrl store"):
        if config.schema is not None:
            use_schema(conn, where, config.schema, create)
        prepare_schema(conn, where, create)
    return conn


def _row_to_experience(row: tuple[Any, ...]) -> Experience:
    """Build an :class:`Experience` from a ``_SELECT_BATCH`` row."""
    _, _, episode_id, step, task_id, text, key, action, reward, ret, created_at, space = row
    return Experience(
        state=State(text=decode_text(text), key=None if key is None else decode_text(key)),
        action=decode_text(action),
        ret=float(ret),
        episode_id=decode_text(episode_id),
        step=int(step),
        task_id=decode_text(task_id),
        reward=float(reward),
        created_at=float(created_at),
        namespace=decode_text(space),
    )


def _experience_row(seq: int, position: int, record: Experience) -> tuple[object, ...]:
    """The ``_INSERT_EXPERIENCE`` parameters of one validated record."""
    key = record.state.key
    return (
        seq,
        position,
        encode_text(record.episode_id),
        int(record.step),
        encode_text(record.task_id),
        encode_text(record.state.text),
        None if key is None else encode_text(key),
        encode_text(record.action),
        float(record.reward),
        float(record.ret),
        float(record.created_at),
        encode_text(record.namespace),
    )


class PostgresStore(ExperienceStore):
    """Experiences in a PostgreSQL database; see the module docstring for layout and guarantees.

    Args:
        url: ``postgresql://[user[:password]@][host][:port][/dbname][?param=value&...]``
            (libpq's URL form; ``postgres://`` works too).
        config: connection settings; defaults to :class:`PostgresConfig()`.
        create: create jitrl's tables when the database has none; with ``False`` such a
            database raises :class:`StoreError`.

    Raises:
        StoreError: psycopg is not installed, the server cannot be reached, the database holds
            tables of jitrl's names that are not a jitrl store, the store's schema version is
            newer or unknown, or there is no store and ``create`` is false. Messages name the
            URL without its password.
    """

    def __init__(
        self, url: str, config: PostgresConfig | None = None, *, create: bool = True
    ) -> None:
        self._url = url
        self._where = redact_url(url)
        self._config = config if config is not None else PostgresConfig()
        self._lock = threading.RLock()
        self._closed = False
        self._conn: Connection[Any] = _connect(url, self._where, self._config, create)

    @property
    def url(self) -> str:
        """The store's URL, password replaced by ``***``."""
        return self._where

    @property
    def config(self) -> PostgresConfig:
        """The settings this store was opened with."""
        return self._config

    @property
    def location(self) -> str:
        """The URL (no password) and schema."""
        return f"{self._where}#{self._config.schema or ''}"

    def __repr__(self) -> str:
        return f"PostgresStore({self._where!r})"

    @contextmanager
    def _session(self, what: str) -> Iterator[Connection[Any]]:
        """Hold the lock, yield a live connection and turn psycopg errors into StoreError."""
        psycopg = import_psycopg()
        with self._lock:
            if self._closed:
                raise StoreError(f"{self._where}: the store is closed")
            try:
                if self._conn.closed:  # lost (server restart, network): reconnect once
                    logger.warning("%s: connection lost; reconnecting", self._where)
                    self._conn = _connect(self._url, self._where, self._config, False)
                yield self._conn
            except psycopg.Error as exc:
                raise StoreError(f"{self._where}: {what} failed: {exc}") from exc

    def add_episode(
        self, experiences: Sequence[Experience], *, meta: Mapping[str, Any] | None = None
    ) -> None:
        """Store one finished episode in a single transaction (all records or none).

        Args:
            experiences: the episode's records; all must share one ``episode_id``. They are
                stored verbatim (``created_at`` included).
            meta: optional JSON-serialisable metadata kept on the episode row.

        Raises:
            ValueError / TypeError: empty episode, mixed episode ids or an invalid field.
            DuplicateEpisodeError: the episode id is already stored (nothing is written).
            StoreError: the write failed (e.g. the connection was lost); nothing is written.
        """
        records = validate_episode(experiences)
        episode_id = records[0].episode_id
        episode_row = (
            encode_text(episode_id),
            encode_text(records[0].task_id),
            len(records),
            sum(float(record.reward) for record in records),
            time.time(),
            meta_to_json(meta),
            encode_text(records[0].namespace),
        )
        with self._session(f"storing episode {episode_id!r}") as conn, conn.transaction():
            inserted = conn.execute(_INSERT_EPISODE, episode_row).fetchone()
            if inserted is None:
                raise DuplicateEpisodeError(
                    f"{self._where}: episode {episode_id!r} is already stored; nothing written"
                )
            seq = inserted[0]
            with conn.cursor() as cursor:
                cursor.executemany(
                    _INSERT_EXPERIENCE,
                    [_experience_row(seq, index, record) for index, record in enumerate(records)],
                )
        logger.debug("%s: stored episode %r (%d records)", self._where, episode_id, len(records))

    def __iter__(self) -> Iterator[Experience]:
        """Yield the stored experiences in storage order (episode ``seq``, then position).

        Rows are fetched ``iter_batch_size`` at a time with short, separate queries, so
        iteration holds little memory, no transaction and no lock between batches. Every
        episode committed before iteration starts is yielded, each one whole; an episode that
        another process commits meanwhile is either yielded whole or not at all.
        """
        with self._session("iterating") as conn:
            row = conn.execute("SELECT coalesce(max(seq), 0) FROM episodes").fetchone()
        upper = row[0] if row else 0
        last_seq, last_position = 0, -1
        while True:
            with self._session("iterating") as conn:
                params = (last_seq, last_position, upper, self._config.iter_batch_size)
                rows = conn.execute(_SELECT_BATCH, params).fetchall()
            if not rows:
                return
            for item in rows:
                yield _row_to_experience(item)
            last_seq, last_position = rows[-1][0], rows[-1][1]

    def __len__(self) -> int:
        """Number of stored experiences."""
        with self._session("counting") as conn:
            row = conn.execute("SELECT count(*) FROM experiences").fetchone()
        return int(row[0]) if row else 0

    def has_episode(self, episode_id: str) -> bool:
        """Whether an episode with this id is stored."""
        with self._session("looking up an episode") as conn:
            row = conn.execute(
                "SELECT 1 FROM episodes WHERE episode_id = %s", (encode_text(episode_id),)
            ).fetchone()
        return row is not None

    def episode_ids(self, namespaces: Collection[str] | None = None) -> list[str]:
        """Ids of the stored episodes, in storage order (of these namespaces only, if given)."""
        wanted = None if namespaces is None else [encode_text(n) for n in sorted(namespaces)]
        with self._session("listing episodes") as conn:
            rows = conn.execute(_SELECT_EPISODE_IDS, (wanted, wanted)).fetchall()
        return [decode_text(episode_id) for (episode_id,) in rows]

    def experiences_of(self, episode_ids: Sequence[str]) -> list[Experience]:
        """The records of these episodes, episode by episode in the order given (unknown ids
        are skipped), each episode's records in step order."""
        if not episode_ids:
            return []
        keys = [encode_text(e) for e in episode_ids]
        with self._session("reading episodes") as conn:
            rows = conn.execute(_SELECT_EPISODES, (keys,)).fetchall()
        return order_by_episode((_row_to_experience(row) for row in rows), episode_ids)

    def delete_episode(self, episode_id: str) -> bool:
        """Remove a stored episode and its records in one transaction."""
        key = (encode_text(episode_id),)
        with self._session(f"deleting episode {episode_id!r}") as conn, conn.transaction():
            conn.execute("DELETE FROM experiences WHERE episode_id = %s", key)
            gone = conn.execute("DELETE FROM episodes WHERE episode_id = %s", key)
        return gone.rowcount > 0

    def episode_meta(self, episode_id: str) -> dict[str, Any] | None:
        """The ``meta`` stored with an episode (``{}`` if none), or ``None`` if not stored."""
        with self._session("reading episode metadata") as conn:
            row = conn.execute(
                "SELECT meta::text FROM episodes WHERE episode_id = %s", (encode_text(episode_id),)
            ).fetchone()
        if row is None:
            return None
        meta: dict[str, Any] = json.loads(row[0])
        return meta

    def stats(self) -> StoreStats:
        """Counts and the mean return over the store, read in one statement (one snapshot)."""
        with self._session("computing statistics") as conn:
            row = conn.execute(_STATS).fetchone()
        assert row is not None
        experiences, episodes, tasks, states, actions, mean, version, spaces = row
        return StoreStats(
            experiences=int(experiences),
            episodes=int(episodes),
            tasks=int(tasks),
            states=int(states),
            actions=int(actions),
            mean_return=float(mean),
            schema_version=int(version),
            namespaces=int(spaces),
        )

    def close(self) -> None:
        """Close the connection (idempotent); later calls other than ``close`` raise."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()
