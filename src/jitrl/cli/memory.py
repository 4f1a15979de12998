"""``jitrl memory stats|export|import``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from jitrl.cli.common import console, fail, memory_app
from jitrl.memory import open_store
from jitrl.memory.base import DEFAULT_MEMORY, ExperienceStore, StoreError
from jitrl.memory.jsonl import export_jsonl, import_jsonl


def _open_existing(path: str) -> ExperienceStore:
    try:
        return open_store(path, create=False)
    except StoreError as err:
        raise fail(str(err)) from err


@memory_app.command("stats")
def memory_stats(path: Annotated[str, typer.Argument(help="store")] = DEFAULT_MEMORY) -> None:
    """Counts and means over a store."""
    store = _open_existing(path)
    stats = store.stats()
    table = Table(title=f"Memory {path}")
    table.add_column("field")
    table.add_column("value", justify="right")
    for name, value in vars(stats).items():
        table.add_row(name, f"{value:.3f}" if isinstance(value, float) else str(value))
    console.print(table)
    store.close()


@memory_app.command("export")
def memory_export(
    dest: Annotated[Path, typer.Argument(help="JSONL file to write")],
    memory: Annotated[str, typer.Option(help="store to read")] = DEFAULT_MEMORY,
) -> None:
    """Write every experience of a store as one JSON line."""
    store = _open_existing(memory)
    count = export_jsonl(store, dest)
    store.close()
    console.print(f"exported {count} experiences to {dest}")


@memory_app.command("import")
def memory_import(
    src: Annotated[Path, typer.Argument(help="JSONL file to read")],
    memory: Annotated[
        str, typer.Option(help="store to write (created if missing)")
    ] = DEFAULT_MEMORY,
) -> None:
    """Add the episodes of a JSONL export to a store (episodes already there are skipped)."""
    if not src.is_file():
        raise fail(f"no such file: {src}")
    store = open_store(memory)
    try:
        result = import_jsonl(store, src)
    except ValueError as err:
        raise fail(str(err)) from err
    finally:
        store.close()
    console.print(f"imported: {result}")


@memory_app.command("migrate")
def memory_migrate(
    src: Annotated[str, typer.Argument(help="source store (SQLite file or postgresql:// URL)")],
    dst: Annotated[str, typer.Argument(help="store to copy into (created if missing)")],
) -> None:
    """Copy every episode between stores; episodes already in DST are skipped."""
    from jitrl.memory import migrate

    source = _open_existing(src)
    try:
        target = open_store(dst)
    except StoreError as err:
        source.close()
        raise fail(str(err)) from err
    try:
        result = migrate(source, target)
    finally:
        source.close()
        target.close()
    console.print(f"migrated: {result}")
