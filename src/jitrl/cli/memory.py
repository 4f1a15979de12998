"""``jitrl memory stats|export|import|backup|migrate|forget|upgrade``.

Every command that works on one store names it with ``--memory STORE`` (a SQLite file or a
``postgresql://`` URL; default ``jitrl-memory.sqlite``, the store ``jitrl run`` uses), exactly
as ``jitrl run`` does. ``jitrl memory stats STORE`` (the store as an argument) still works.
Commands between two stores take them as arguments, source first: ``backup SRC DST``,
``migrate SRC DST``.

Reading commands (``stats``, ``export``, the source of ``backup`` and ``migrate``) open the
store read-only: they write nothing, leave no ``-wal``/``-shm`` file behind and work in a folder
the user may not write. ``import`` reads and validates the whole file before it opens (or
creates) the store, so a bad file leaves no store behind.
"""

from __future__ import annotations

from contextlib import closing
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from jitrl.cli.common import console, fail, memory_app
from jitrl.memory import backup_store, open_store
from jitrl.memory.base import DEFAULT_MEMORY, ExperienceStore
from jitrl.memory.jsonl import ImportResult, add_episodes, export_jsonl, read_episodes
from jitrl.memory.postgres_schema import redact_url

_SQLITE_PREFIX = "sqlite:///"

MemoryOption = Annotated[
    str,
    typer.Option(
        "--memory", help="the store: a SQLite file or a postgresql:// URL (as for jitrl run)"
    ),
]


def _sqlite_path(spec: str) -> Path | None:
    """The file of a SQLite store spec (a path or ``sqlite:///path``); ``None`` for a URL."""
    if spec.lower().startswith(_SQLITE_PREFIX) and len(spec) > len(_SQLITE_PREFIX):
        return Path(spec[len(_SQLITE_PREFIX) :]).expanduser()
    return None if "://" in spec else Path(spec).expanduser()


def _open_for_reading(
    spec: str, hint: str = "run jitrl run first, or give --memory PATH"
) -> ExperienceStore:
    """The existing store ``spec``, opened read-only; a clear error (with ``hint``) when there
    is none."""
    path = _sqlite_path(spec)
    if path is not None and not path.exists():
        raise fail(f"no store at {spec} ({hint})")
    return open_store(spec, read_only=True)


def _plural(count: int, word: str) -> str:
    """``count`` and ``word``, with an s unless ``count`` is 1."""
    return f"{count} {word}{'' if count == 1 else 's'}"


def import_sentence(result: ImportResult, store: str) -> str:
    """What an import did, as a sentence."""
    sentence = (
        f"imported {_plural(result.episodes, 'episode')} "
        f"({_plural(result.experiences, 'experience')}) into {redact_url(store)}"
    )
    if result.skipped_episodes:
        skipped = _plural(result.skipped_episodes, "episode")
        sentence += f"; skipped {skipped} the store already held"
    return sentence


@memory_app.command("stats")
def memory_stats(
    store: Annotated[
        str | None,
        typer.Argument(help="the store (older form of --memory)", show_default=False),
    ] = None,
    memory: Annotated[
        str | None,
        typer.Option(
            "--memory",
            help="the store: a SQLite file or a postgresql:// URL (as for jitrl run)",
            show_default=DEFAULT_MEMORY,
        ),
    ] = None,
) -> None:
    """Counts and means over a store (read-only)."""
    if store is not None and memory is not None and store != memory:
        raise fail(f"two stores given ({store} and --memory {memory}) (give only --memory)")
    spec = memory or store or DEFAULT_MEMORY
    with closing(_open_for_reading(spec)) as opened:
        stats = opened.stats()
    console.print(f"store {redact_url(spec)}", highlight=False, soft_wrap=True)  # never wrapped
    table = Table()
    table.add_column("field")
    table.add_column("value", justify="right")
    for name, value in vars(stats).items():
        table.add_row(name, f"{value:.3f}" if isinstance(value, float) else str(value))
    console.print(table)


NamespacesOption = Annotated[
    list[str] | None,
    typer.Option("--namespace", help="only this namespace (repeat for several)", min=1),
]


@memory_app.command("export")
def memory_export(
    dest: Annotated[Path, typer.Argument(help="JSONL file to write", show_default=False)],
    memory: MemoryOption = DEFAULT_MEMORY,
    namespace: NamespacesOption = None,
) -> None:
    """Write every experience of a store (or of some namespaces) as one JSON line (the store is
    only read)."""
    if dest.is_dir():
        raise fail(f"{dest} is a folder (give a file path, e.g. {dest / 'memory.jsonl'})")
    if not dest.parent.is_dir():
        raise fail(
            f"cannot write {dest}: the folder {dest.parent} does not exist "
            "(create it first, or choose another path)"
        )
    with closing(_open_for_reading(memory)) as store:
        count = export_jsonl(store.in_namespaces(namespace), dest)
    console.print(
        f"exported {_plural(count, 'experience')} from {redact_url(memory)} to {dest}",
        highlight=False,
    )


@memory_app.command("import")
def memory_import(
    src: Annotated[Path, typer.Argument(help="JSONL file to read", show_default=False)],
    memory: MemoryOption = DEFAULT_MEMORY,
) -> None:
    """Add the episodes of a JSONL export to a store (created if missing; episodes already
    there are skipped). The whole file is checked before the store is opened."""
    if not src.is_file():
        raise fail(f"no such file: {src} (check the path)")
    episodes = read_episodes(src)  # a bad line or episode: one-line error, no store created
    with closing(open_store(memory)) as store:
        result = add_episodes(store, episodes)
    console.print(import_sentence(result, memory), highlight=False)


@memory_app.command("backup")
def memory_backup(
    src: Annotated[str, typer.Argument(help="SQLite store to copy", show_default=False)],
    dst: Annotated[str, typer.Argument(help="file to write", show_default=False)],
    force: Annotated[bool, typer.Option("--force", help="overwrite DST if it exists")] = False,
) -> None:
    """Copy a SQLite store safely, even while it is in use: SQLite's online backup takes a
    consistent snapshot that includes the newest episodes, which may still be in the store's
    -wal file (copying only the .db file loses them)."""
    source, target = _sqlite_path(src), _sqlite_path(dst)
    if source is None or target is None:
        raise fail(
            "backup copies SQLite files (for a PostgreSQL store use 'jitrl memory migrate SRC DST')"
        )
    if not source.exists():
        raise fail(f"no store at {src} (check the path)")
    stats = backup_store(source, target, force=force)
    console.print(
        f"backed up {_plural(stats.episodes, 'episode')} "
        f"({_plural(stats.experiences, 'experience')}) from {source} to {target}",
        highlight=False,
    )


@memory_app.command("migrate")
def memory_migrate(
    src: Annotated[str, typer.Argument(help="source store (SQLite file or postgresql:// URL)")],
    dst: Annotated[str, typer.Argument(help="store to copy into (created if missing)")],
) -> None:
    """Copy every episode between stores; episodes already in DST are skipped."""
    from jitrl.memory import migrate

    with (
        closing(_open_for_reading(src, "check the path")) as source,
        closing(open_store(dst)) as target,
    ):
        result = migrate(source, target)
    console.print(import_sentence(result, dst), highlight=False)


@memory_app.command("forget")
def memory_forget(
    namespace: Annotated[
        list[str], typer.Option("--namespace", help="the namespace to delete (repeatable)")
    ],
    memory: MemoryOption = DEFAULT_MEMORY,
) -> None:
    """Delete every episode of these namespaces (a user's, an agent's or a run's memory); each
    episode goes in one transaction, other namespaces are untouched."""
    with closing(_open_for_writing(memory)) as store:
        ids = store.episode_ids(namespace)
        for episode_id in ids:
            store.delete_episode(episode_id)
    console.print(
        f"deleted {_plural(len(ids), 'episode')} of {', '.join(namespace)} from "
        f"{redact_url(memory)}",
        highlight=False,
        soft_wrap=True,
    )


@memory_app.command("upgrade")
def memory_upgrade(memory: MemoryOption = DEFAULT_MEMORY) -> None:
    """Upgrade a store written by an older jitrl to this version's schema, in place (running
    jitrl on it does the same; reading commands refuse an old store instead of writing it)."""
    with closing(_open_for_writing(memory)) as store:
        version = store.stats().schema_version
    console.print(
        f"{redact_url(memory)}: schema version {version}", highlight=False, soft_wrap=True
    )


def _open_for_writing(spec: str) -> ExperienceStore:
    """The existing store ``spec``, opened for writing (never created)."""
    path = _sqlite_path(spec)
    if path is not None and not path.exists():
        raise fail(f"no store at {spec} (check the path, or give --memory PATH)")
    return open_store(spec)
