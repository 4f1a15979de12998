"""An :class:`~jitrl.memory.base.ExperienceStore` in one SQLite file.

Layout: an ``episodes`` table (one row per stored episode, with free-form JSON ``meta``) and an
``experiences`` table (one row per decision, in insertion order). The file is marked as a jitrl
store with ``PRAGMA application_id`` (:data:`APPLICATION_ID`) and versioned with
``PRAGMA user_version`` (:data:`SCHEMA_VERSION`); :func:`migrate_schema` upgrades older files.

Concurrency: every episode is one ``BEGIN IMMEDIATE`` transaction, so any number of processes
may append to the same file at once; writers queue for up to ``busy_timeout_s``. In WAL mode
(the default) readers never block writers. A store object may be shared between threads (calls
are serialised by a lock) but not across ``fork``: open one store per process. WAL needs a local
filesystem (not NFS).

Safety: a file is only ever written after it has been recognised as a jitrl store (or is new /
empty). Anything else — a text file, random bytes, another application's database, a store
written by a newer jitrl — is refused with a :class:`~jitrl.memory.base.StoreError` before it is
opened for writing, and so is a store this process may not write (checked when it is opened,
not at the first episode). ``read_only=True`` reads a store without writing anything, even in a
folder this process may not write (see :mod:`jitrl.memory.sqlite_schema`).

Copying a store safely: in WAL mode the newest episodes live in ``<store>-wal`` until SQLite
checkpoints them into the main file (when the last connection closes cleanly), so copying only
the main file of a store that is in use, or whose writer was killed, loses them. Copy with
``jitrl memory backup SRC DST`` (:func:`jitrl.memory.backup_store`: SQLite's online backup API,
a consistent snapshot, safe while other processes write) — or stop every process using the
store and copy the file together with its ``-wal`` and ``-shm`` files.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sqlite3
import threading
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jitrl.memory.base import (
    DuplicateEpisodeError,
    ExperienceStore,
    StoreError,
    StoreStats,
    order_by_episode,
)
from jitrl.memory.sqlite_connect import connect_read_only, connect_read_write
from jitrl.memory.sqlite_schema import APPLICATION_ID, SCHEMA_VERSION, migrate_schema, rollback
from jitrl.memory.validation import meta_to_json, validate_episode
from jitrl.method.types import Experience, State

logger = logging.getLogger(__name__)

__all__ = [
    "APPLICATION_ID",
    "SCHEMA_VERSION",
    "SQLiteConfig",
    "SQLiteStore",
    "migrate_schema",
]

_SYNCHRONOUS_MODES = frozenset({"OFF", "NORMAL", "FULL", "EXTRA"})

_INSERT_EPISODE = (
    "INSERT INTO episodes (episode_id, task_id, steps, total_reward, created_at, meta, "
    "namespace) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_EXPERIENCE = (
    "INSERT INTO experiences (episode_id, step, task_id, state_text, state_key, action, reward, "
    "ret, created_at, namespace) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_COLUMNS = (
    "id, episode_id, step, task_id, state_text, state_key, action, reward, ret, created_at, "
    "namespace"
)
_SELECT_BATCH = f"SELECT {_COLUMNS} FROM experiences WHERE id > ? AND id <= ? ORDER BY id LIMIT ?"
_SELECT_EPISODES = (
    f"SELECT {_COLUMNS} FROM experiences "
    "WHERE episode_id IN (SELECT value FROM json_each(?)) ORDER BY id"
)
_SELECT_EPISODE_IDS = (
    "SELECT episode_id FROM episodes WHERE ? IS NULL OR namespace IN "
    "(SELECT value FROM json_each(?)) ORDER BY rowid"
)
_STATS = (
    "SELECT count(*), count(DISTINCT task_id), count(DISTINCT state_text), "
    "count(DISTINCT action), coalesce(avg(ret), 0.0), count(DISTINCT namespace) FROM experiences"
)


@dataclass(frozen=True)
class SQLiteConfig:
    """How a :class:`SQLiteStore` uses its file. Every field is validated on construction."""

    busy_timeout_s: float = 30.0
    """Seconds a write waits for another connection's lock before failing with StoreError."""

    wal: bool = True
    """Switch the file to write-ahead logging (persistent), so readers never block writers.
    With ``False`` the file's journal mode is left as it is (SQLite's rollback journal for a
    new store)."""

    synchronous: str = "FULL"
    """``PRAGMA synchronous``: ``OFF``, ``NORMAL``, ``FULL`` or ``EXTRA``. ``FULL`` makes every
    stored episode survive a power cut; ``NORMAL`` (with WAL) survives process crashes only."""

    iter_batch_size: int = 512
    """Rows fetched per query while iterating; bounds the memory iteration holds."""

    def __post_init__(self) -> None:
        timeout = self.busy_timeout_s
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
            raise TypeError(f"busy_timeout_s must be a number, got {timeout!r}")
        if not math.isfinite(timeout) or timeout < 0:
            raise ValueError(f"busy_timeout_s must be finite and >= 0, got {timeout!r}")
        if not isinstance(self.wal, bool):
            raise TypeError(f"wal must be a bool, got {self.wal!r}")
        if self.synchronous not in _SYNCHRONOUS_MODES:
            raise ValueError(f"synchronous must be one of {sorted(_SYNCHRONOUS_MODES)}")
        size = self.iter_batch_size
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"iter_batch_size must be a positive int, got {size!r}")


def _row_to_experience(row: tuple[Any, ...]) -> Experience:
    """Build an :class:`Experience` from a ``_SELECT_BATCH`` row."""
    _, episode_id, step, task_id, text, key, action, reward, ret, created_at, namespace = row
    return Experience(
        state=State(text=text, key=key),
        action=action,
        ret=float(ret),
        episode_id=episode_id,
        step=int(step),
        task_id=task_id,
        reward=float(reward),
        created_at=float(created_at),
        namespace=namespace,
    )


def _experience_row(record: Experience) -> tuple[object, ...]:
    """The ``_INSERT_EXPERIENCE`` parameters of one validated record."""
    return (
        record.episode_id,
        int(record.step),
        record.task_id,
        record.state.text,
        record.state.key,
        record.action,
        float(record.reward),
        float(record.ret),
        float(record.created_at),
        record.namespace,
    )


class SQLiteStore(ExperienceStore):
    """Experiences in one SQLite file; see the module docstring for layout and guarantees.

    Args:
        path: the store file (created, with missing parent folders, when absent).
        config: connection settings; defaults to :class:`SQLiteConfig()`.
        create: create a new store when ``path`` is missing or an empty file; with ``False``
            such a path raises :class:`StoreError`.
        read_only: open an existing store for reading only (``create`` is then ignored): no
            write, no schema upgrade, no ``-wal``/``-shm`` file left behind, and it works in a
            folder this process may not write. Writing methods raise :class:`StoreError`.

    Raises:
        StoreError: the path is a directory, not a SQLite database, another application's
            database, a jitrl store of a newer schema, missing with ``create=False`` or
            ``read_only``, or (unless ``read_only``) the file or its folder is not writable.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        config: SQLiteConfig | None = None,
        *,
        create: bool = True,
        read_only: bool = False,
    ) -> None:
        self._path = Path(path).expanduser()
        self._config = config if config is not None else SQLiteConfig()
        self._read_only = read_only
        self._lock = threading.RLock()
        cfg = self._config
        self._conn: sqlite3.Connection | None = (
            connect_read_only(self._path, cfg.busy_timeout_s)
            if read_only
            else connect_read_write(
                self._path, create, cfg.busy_timeout_s, cfg.synchronous, wal=cfg.wal
            )
        )

    @property
    def path(self) -> Path:
        """The store file."""
        return self._path

    @property
    def config(self) -> SQLiteConfig:
        """The settings this store was opened with."""
        return self._config

    @property
    def read_only(self) -> bool:
        """Whether the store was opened for reading only."""
        return self._read_only

    @property
    def location(self) -> str:
        """The store file's path."""
        return str(self._path)

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self._path)!r})"

    @contextmanager
    def _session(self, what: str, *, write: bool = False) -> Iterator[sqlite3.Connection]:
        """Hold the lock, yield the open connection and turn SQLite errors into StoreError
        (``write``: refuse at once when the store was opened read-only)."""
        if write and self._read_only:
            raise StoreError(
                f"{self._path}: {what} is not possible, the store was opened read-only (open "
                "it without read_only=True)"
            )
        with self._lock:
            if self._conn is None:
                raise StoreError(f"{self._path}: the store is closed")
            try:
                yield self._conn
            except sqlite3.Error as exc:
                raise StoreError(f"{self._path}: {what} failed: {exc}") from exc

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
            StoreError: the write failed (e.g. the lock wait timed out); nothing is written.
        """
        records = validate_episode(experiences)
        meta_json = meta_to_json(meta)
        episode_id = records[0].episode_id
        episode_row = (
            episode_id,
            records[0].task_id,
            len(records),
            sum(float(record.reward) for record in records),
            time.time(),
            meta_json,
            records[0].namespace,
        )
        with self._session(f"storing episode {episode_id!r}", write=True) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                if conn.execute(
                    "SELECT 1 FROM episodes WHERE episode_id = ?", (episode_id,)
                ).fetchone():
                    raise DuplicateEpisodeError(
                        f"{self._path}: episode {episode_id!r} is already stored; nothing written"
                    )
                conn.execute(_INSERT_EPISODE, episode_row)
                conn.executemany(_INSERT_EXPERIENCE, map(_experience_row, records))
                conn.execute("COMMIT")
            except BaseException:
                rollback(conn)
                raise
        logger.debug("%s: stored episode %r (%d records)", self._path, episode_id, len(records))

    def __iter__(self) -> Iterator[Experience]:
        """Yield the experiences stored when iteration starts, in insertion order.

        Rows are fetched ``iter_batch_size`` at a time with short, separate reads, so iteration
        holds little memory and no lock between batches; episodes added meanwhile are not seen.
        """
        with self._session("iterating") as conn:
            (upper,) = conn.execute("SELECT coalesce(max(id), 0) FROM experiences").fetchone()
        last = 0
        while True:
            with self._session("iterating") as conn:
                rows = conn.execute(
                    _SELECT_BATCH, (last, upper, self._config.iter_batch_size)
                ).fetchall()
            if not rows:
                return
            for row in rows:
                yield _row_to_experience(row)
            last = rows[-1][0]

    def __len__(self) -> int:
        """Number of stored experiences."""
        with self._session("counting") as conn:
            (count,) = conn.execute("SELECT count(*) FROM experiences").fetchone()
        return int(count)

    def has_episode(self, episode_id: str) -> bool:
        """Whether an episode with this id is stored."""
        with self._session("looking up an episode") as conn:
            row = conn.execute("SELECT 1 FROM episodes WHERE episode_id = ?", (episode_id,))
            return row.fetchone() is not None

    def episode_ids(self, namespaces: Collection[str] | None = None) -> list[str]:
        """Ids of the stored episodes, in the order they were stored (of these namespaces only,
        if given)."""
        wanted = None if namespaces is None else json.dumps(sorted(namespaces))
        with self._session("listing episodes") as conn:
            rows = conn.execute(_SELECT_EPISODE_IDS, (wanted, wanted)).fetchall()
        return [episode_id for (episode_id,) in rows]

    def experiences_of(self, episode_ids: Sequence[str]) -> list[Experience]:
        """The records of these episodes, episode by episode in the order given (unknown ids
        are skipped), each episode's records in step order."""
        if not episode_ids:
            return []
        with self._session("reading episodes") as conn:
            rows = conn.execute(_SELECT_EPISODES, (json.dumps(list(episode_ids)),)).fetchall()
        return order_by_episode((_row_to_experience(row) for row in rows), episode_ids)

    def delete_episode(self, episode_id: str) -> bool:
        """Remove a stored episode and its records in one transaction."""
        with self._session(f"deleting episode {episode_id!r}", write=True) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("DELETE FROM experiences WHERE episode_id = ?", (episode_id,))
                gone = conn.execute("DELETE FROM episodes WHERE episode_id = ?", (episode_id,))
                conn.execute("COMMIT")
            except BaseException:
                rollback(conn)
                raise
        return gone.rowcount > 0

    def episode_meta(self, episode_id: str) -> dict[str, Any] | None:
        """The ``meta`` stored with an episode (``{}`` if none), or ``None`` if not stored."""
        with self._session("reading episode metadata") as conn:
            row = conn.execute(
                "SELECT meta FROM episodes WHERE episode_id = ?", (episode_id,)
            ).fetchone()
        if row is None:
            return None
        meta: dict[str, Any] = json.loads(row[0])
        return meta

    def stats(self) -> StoreStats:
        """Counts and the mean return over the store, read in one consistent snapshot."""
        with self._session("computing statistics") as conn:
            conn.execute("BEGIN")
            try:
                experiences, tasks, states, actions, mean, spaces = conn.execute(_STATS).fetchone()
                (episodes,) = conn.execute("SELECT count(*) FROM episodes").fetchone()
                (version,) = conn.execute("PRAGMA user_version").fetchone()
            finally:
                rollback(conn)
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

    def backup_to(self, target: SQLiteStore | sqlite3.Connection) -> None:
        """Replace everything in ``target`` with a consistent snapshot of this store, using
        SQLite's online backup API (other processes may keep writing to this store)."""
        if isinstance(target, SQLiteStore):
            with target._session("receiving a backup", write=True) as conn:
                self.backup_to(conn)
            return
        with self._session("backing up") as conn:
            conn.backup(target)

    def close(self) -> None:
        """Close the connection (idempotent); later calls other than ``close`` raise."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
