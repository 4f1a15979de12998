"""Files written whole or not at all, and JSON Lines read with errors that name file and line.

Every file jitrl replaces (summaries, reports, plots, exports, settings) goes through
:func:`atomic_write`: the content is written to a temporary file in the same folder, flushed to
disk and renamed over the target, so a crash leaves the old file or the new one, never half of
one. Every JSON Lines file jitrl reads goes through :func:`read_jsonl`.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path
from typing import IO, Any

NEW_FILE_MODE = 0o644
"""Permissions of a file that did not exist before (an existing file keeps its own)."""


def _fsync_directory(folder: Path) -> None:
    """Make a rename in ``folder`` durable (no-op where directories cannot be opened)."""
    with suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _replace(path: str | os.PathLike[str], binary: bool, write: Callable[[Any], object]) -> None:
    """Write a temporary file beside ``path`` with ``write(handle)``, sync it, rename it over
    ``path``; the target keeps its permissions when it exists."""
    target = Path(path)
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        mode = NEW_FILE_MODE
    descriptor, temporary = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
    )
    try:
        opened = (
            os.fdopen(descriptor, "wb")
            if binary
            else os.fdopen(descriptor, "w", encoding="utf-8", newline="\n")
        )
        with opened as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    _fsync_directory(target.parent)


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[str]], object]) -> None:
    """Call ``write`` with a text file handle, then put the file at ``path`` in one rename.

    The target keeps its permissions when it exists. On any error the temporary file is removed
    and the target is left as it was.
    """
    _replace(path, False, write)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Replace ``path`` with ``text`` in one rename (see :func:`atomic_write`)."""
    _replace(path, False, lambda handle: handle.write(text))


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace ``path`` with ``data`` in one rename (a plot, an index file)."""
    _replace(path, True, lambda handle: handle.write(data))


def read_jsonl(
    path: str | os.PathLike[str], *, skipped: list[int] | None = None
) -> Iterator[tuple[int, Any]]:
    """``(line number, value)`` for each non-blank line of a JSON Lines file.

    Args:
        path: the file.
        skipped: where to note the numbers of malformed lines, which are then skipped (a cache
            whose last line a crash cut short); ``None`` raises ``ValueError`` naming file and
            line instead.
    """
    file = Path(path)
    with file.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield n, json.loads(line)
            except json.JSONDecodeError as err:
                if skipped is None:
                    raise ValueError(f"{file}:{n}: not a JSON line ({err.msg})") from err
                skipped.append(n)


def count_lines(path: str | os.PathLike[str]) -> int:
    """Non-blank lines of a text file (0 when it does not exist)."""
    file = Path(path)
    if not file.exists():
        return 0
    with file.open(encoding="utf-8") as fh:
        return sum(1 for line in fh if line.strip())
