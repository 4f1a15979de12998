"""Connections to a jitrl SQLite store: read-write (checked writable first) or read-only.

:func:`check_writable` refuses a store this process could open but not write (a read-only file
or folder) before any work is done; :func:`connect_read_write` then validates, creates or
migrates the file (:mod:`jitrl.memory.sqlite_schema`) and configures the connection.

Reading without writing (:func:`read_only_uri`): a WAL database needs its ``-wal`` and ``-shm``
files even to be read, and a reader that creates them leaves them behind, owned by whoever ran
it. As SQLite documents (wal.html "Read-Only Databases", walformat.html), a reader that may write
the file and its folder opens it read-write with ``PRAGMA query_only`` (the last connection to
close folds the ``-wal`` into the main file, content unchanged, and removes both); any other
reader uses ``mode=ro``, which works when the ``-wal`` and ``-shm`` exist (a process has the
store open, or was killed: the newest episodes are in the ``-wal``), plus ``immutable=1`` when
there is no ``-wal`` (no process has the store open, all is in the main file), which creates
nothing but takes no locks: a writer that starts during such a read can make it fail (retry).
"""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path

from jitrl.memory.base import StoreError, closed_on_failure
from jitrl.memory.sqlite_schema import (
    _HEADER_SIZE,
    _OPEN,
    _READ_HINT,
    _inspection_uri,
    _plan,
    _probe,
    _read_header,
    check_file,
    prepare_schema,
)

logger = logging.getLogger(__name__)


def check_writable(path: Path) -> None:
    """Refuse to open ``path`` for writing when this process cannot write it.

    SQLite silently opens a file it may not write read-only, and only the first write fails;
    it also creates its ``-wal``/``-journal`` next to the store, so the folder must be writable.

    Raises:
        StoreError: the file (when it exists) or its folder is not writable (says how to fix).
    """
    copy_hint = f"or copy it with 'jitrl memory backup {path} COPY' and use the copy"
    if path.exists() and not os.access(path, os.W_OK):
        raise StoreError(
            f"{path} is read-only for this user, so no episode can be stored in it (make it "
            f"writable, e.g. chmod u+w, run as its owner, {copy_hint})"
        )
    folder = path.parent
    if not os.access(folder, os.W_OK | os.X_OK):
        raise StoreError(
            f"cannot write the store {path}: its folder {folder} is read-only and SQLite keeps "
            f"its journal next to the store (make the folder writable, {copy_hint})"
        )


DAMAGED_HINT = (
    "the file is damaged: restore a copy made with jitrl memory backup, or move it away to "
    "start a new store"
)


def damaged_hint(exc: BaseException) -> str:
    """How to fix a SQLite error that says the file itself is damaged ("" for other errors)."""
    text = str(exc)
    return DAMAGED_HINT if "malformed" in text or "not a database" in text else ""


def _read_hint(exc: BaseException) -> str:
    return damaged_hint(exc) or _READ_HINT


def read_only_uri(path: Path) -> tuple[str, bool]:
    """How to read the existing store ``path`` without writing or leaving anything there.

    Returns:
        The URI to connect to, and whether that connection could write (``mode=rw``): the
        caller must then set ``PRAGMA query_only``. See the module docstring for the choice.
    """
    if os.access(path, os.W_OK) and os.access(path.parent, os.W_OK | os.X_OK):
        return f"{path.resolve().as_uri()}?mode=rw", True
    header = _read_header(path, create=False) or b""
    if len(header) < _HEADER_SIZE:
        return f"{path.resolve().as_uri()}?mode=ro", False
    return _inspection_uri(path, header), False


def check_readable(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse a database that a read-only connection cannot use as it is.

    Raises:
        StoreError: not a jitrl store, newer than this code, empty, or of an older schema.
    """
    plan = _plan(path, _probe(conn))
    if plan == "init":
        raise StoreError(f"{path} is an empty SQLite file, not a jitrl store (check the path)")
    if plan == "migrate":
        raise StoreError(
            f"{path} is a jitrl store of an older schema (upgrade it first: jitrl memory "
            f"upgrade --memory {path})"
        )


def connect_read_write(
    path: Path, create: bool, timeout: float, synchronous: str, *, wal: bool
) -> sqlite3.Connection:
    """Validate the file at ``path`` and return a configured read-write connection to it.

    A missing file (and its folders) is created when ``create``; ``timeout`` is the lock wait
    in seconds, ``synchronous`` the ``PRAGMA synchronous`` and ``wal`` turns on WAL mode.

    Raises:
        StoreError: see :func:`check_file`, :func:`check_writable` and :func:`prepare_schema`.
    """
    if not check_file(path, create, timeout):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{path}: cannot create the parent folder: {exc}") from exc
    check_writable(path)
    try:
        conn = sqlite3.connect(path, timeout=timeout, **_OPEN)
    except sqlite3.Error as exc:
        raise StoreError(f"{path} cannot be opened: {exc}") from exc
    what = f"{path} cannot be opened as a jitrl store"
    with closed_on_failure(conn, sqlite3.Error, what, damaged_hint):
        prepare_schema(conn, path, create)
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute(f"PRAGMA synchronous = {synchronous}")
        if wal:
            (mode,) = conn.execute("PRAGMA journal_mode = WAL").fetchone()
            if str(mode).lower() != "wal":
                logger.warning("%s: could not enable WAL (journal_mode=%s)", path, mode)
    return conn


def connect_read_only(path: Path, timeout: float) -> sqlite3.Connection:
    """Validate the existing store at ``path`` and return a connection that cannot write it
    and leaves no file behind (see :func:`read_only_uri`).

    Raises:
        StoreError: see :func:`check_file` and :func:`check_readable`, or SQLite cannot read
            the file.
    """
    check_file(path, False, timeout)
    uri, could_write = read_only_uri(path)
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=timeout, **_OPEN)
    except sqlite3.Error as exc:
        raise StoreError(f"{path} cannot be opened for reading: {exc} ({_READ_HINT})") from exc
    with closed_on_failure(conn, sqlite3.Error, f"{path} cannot be read", _read_hint):
        if could_write:
            conn.execute("PRAGMA query_only = ON")
        check_readable(conn, path)
    return conn
