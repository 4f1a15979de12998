"""Tests of the SQLite experience store: round trip, atomicity, validation, bad files, URLs,
read-only opening (the property test of arbitrary records is in test_memory_jsonl)."""

from __future__ import annotations

import math
import random
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from jitrl.memory import (
    APPLICATION_ID,
    SCHEMA_VERSION,
    DuplicateEpisodeError,
    ExperienceStore,
    SQLiteConfig,
    SQLiteStore,
    StoreError,
    migrate_schema,
    open_store,
)
from jitrl.method.types import Experience, State

RANDOM_FILE_SIZE = 4096
FOREIGN_APPLICATION_ID = 0x1234_5678


def episode(episode_id: str, steps: int = 3, task_id: str = "task") -> list[Experience]:
    """A simple valid episode of ``steps`` records."""
    return [
        Experience(
            state=State(text=f"room {step}", key=None if step % 2 else f"k{step}"),
            action=f"go {step}",
            ret=float(steps - step),
            episode_id=episode_id,
            step=step,
            task_id=task_id,
            reward=1.0,
            created_at=1_700_000_000.5,
        )
        for step in range(steps)
    ]


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "memory.sqlite"


@pytest.fixture
def store(store_path: Path):
    with SQLiteStore(store_path) as opened:
        yield opened


def snapshot(path: Path) -> dict[str, bytes]:
    """Every file in the folder of ``path`` with its bytes (to prove nothing was touched)."""
    return {item.name: item.read_bytes() for item in path.parent.iterdir() if item.is_file()}


# --- round trip, schema, stats ---------------------------------------------------------------


def test_round_trip_survives_reopen(store_path: Path) -> None:
    first, second = episode("e1", 4), episode("e2", 2, task_id="other")
    with SQLiteStore(store_path) as store:
        store.add_episode(first, meta={"seed": 3, "won": True})
        store.add_episode(second)
    with SQLiteStore(store_path, create=False) as store:
        assert list(store) == first + second
        assert len(store) == len(first) + len(second)
        assert store.episode_ids() == ["e1", "e2"]
        assert store.has_episode("e1") and not store.has_episode("e3")
        assert store.episode_meta("e1") == {"seed": 3, "won": True}
        assert store.episode_meta("e2") == {}
        assert store.episode_meta("e3") is None
        assert isinstance(store, ExperienceStore)


def test_file_is_marked_and_versioned(store: SQLiteStore, store_path: Path) -> None:
    raw = sqlite3.connect(store_path)
    try:
        assert raw.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        indexes = {row[0] for row in raw.execute("SELECT name FROM sqlite_master")}
        assert {"experiences_state_key", "experiences_episode_id"} <= indexes
    finally:
        raw.close()


def test_rollback_journal_mode_when_wal_disabled(store_path: Path) -> None:
    with SQLiteStore(store_path, SQLiteConfig(wal=False)) as store:
        store.add_episode(episode("e1"))
    raw = sqlite3.connect(store_path)
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    raw.close()


def test_stats(store: SQLiteStore) -> None:
    assert store.stats().experiences == 0 and store.stats().mean_return == 0.0
    store.add_episode(episode("e1", 3))
    store.add_episode(episode("e2", 2, task_id="t2"))
    stats = store.stats()
    assert (stats.experiences, stats.episodes, stats.tasks) == (5, 2, 2)
    assert (stats.states, stats.actions, stats.schema_version) == (3, 3, SCHEMA_VERSION)
    assert stats.mean_return == pytest.approx((3 + 2 + 1 + 2 + 1) / 5)


def test_iteration_is_a_batched_snapshot(store_path: Path) -> None:
    with SQLiteStore(store_path, SQLiteConfig(iter_batch_size=2)) as store:
        store.add_episode(episode("e1", 3))
        store.add_episode(episode("e2", 3))
        iterator = iter(store)
        head = [next(iterator) for _ in range(3)]
        store.add_episode(episode("e3", 3))  # added mid-iteration: not part of this snapshot
        assert head + list(iterator) == episode("e1", 3) + episode("e2", 3)
        assert len(list(store)) == 9


def test_closed_store_raises(store_path: Path) -> None:
    store = SQLiteStore(store_path)
    store.close()
    store.close()  # idempotent
    with pytest.raises(StoreError, match="closed"):
        len(store)


# --- atomicity and validation ----------------------------------------------------------------


def assert_unchanged(store: SQLiteStore, expected: list[Experience], ids: list[str]) -> None:
    assert list(store) == expected
    assert store.episode_ids() == ids
    assert store.stats().episodes == len(ids)


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("ret", math.nan, ValueError),
        ("reward", math.inf, ValueError),
        ("step", True, TypeError),
        ("step", -1, ValueError),
        ("action", b"bytes", TypeError),
        ("action", "lone \ud800 surrogate", ValueError),
        ("action", "", ValueError),
        ("action", " \t\n", ValueError),
        ("state", State(""), ValueError),
        ("state", State("  ", key="k"), ValueError),
        ("episode_id", "other", ValueError),
        ("episode_id", "   ", ValueError),
    ],
)
def test_invalid_fifth_record_stores_nothing(
    store: SQLiteStore, field: str, value: object, error: type[Exception]
) -> None:
    store.add_episode(episode("keep", 2))
    before = list(store)
    records = episode("bad", 6)
    object.__setattr__(records[4], field, value)
    with pytest.raises(error, match="#4"):
        store.add_episode(records)
    assert_unchanged(store, before, ["keep"])


@pytest.mark.parametrize("steps", [[0, 0, 7], [0, 2], [1, 2], [1, 0], [0, 1, 1]])
def test_steps_must_be_0_to_n_minus_1_in_order(store: SQLiteStore, steps: list[int]) -> None:
    store.add_episode(episode("keep", 2))
    before = list(store)
    records = [Experience(State(f"s{i}"), "a", 0.0, "bad", step) for i, step in enumerate(steps)]
    with pytest.raises(ValueError, match=r"'bad' has steps \[.*\]; .* must be 0 to"):
        store.add_episode(records)
    assert_unchanged(store, before, ["keep"])


def test_failure_inside_the_transaction_rolls_back(store: SQLiteStore) -> None:
    store.add_episode(episode("keep", 2))
    before = list(store)
    # Make the 5th INSERT fail inside SQLite, after the episode row and 4 records were written.
    store._conn.execute(  # type: ignore[union-attr]
        "CREATE TEMP TRIGGER fail_fifth BEFORE INSERT ON main.experiences "
        "WHEN NEW.episode_id = 'bad' AND NEW.step = 4 BEGIN SELECT RAISE(ABORT, 'boom'); END"
    )
    with pytest.raises(StoreError, match="boom"):
        store.add_episode(episode("bad", 6))
    assert_unchanged(store, before, ["keep"])
    store.add_episode(episode("after", 2))  # the connection is usable again
    assert store.episode_ids() == ["keep", "after"]


def test_duplicate_episode_is_refused(store: SQLiteStore) -> None:
    store.add_episode(episode("e1", 3))
    before = list(store)
    with pytest.raises(DuplicateEpisodeError, match="'e1' is already stored") as info:
        store.add_episode(episode("e1", 5))
    assert isinstance(info.value, StoreError)
    assert_unchanged(store, before, ["e1"])


def test_empty_episode_and_bad_meta(store: SQLiteStore) -> None:
    with pytest.raises(ValueError, match="at least one"):
        store.add_episode([])
    with pytest.raises(ValueError, match="JSON"):
        store.add_episode(episode("e1"), meta={"when": object()})
    with pytest.raises(TypeError):
        store.add_episode(["not an experience"])  # type: ignore[list-item]
    assert len(store) == 0 and store.episode_ids() == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {"busy_timeout_s": -1.0},
        {"busy_timeout_s": math.nan},
        {"synchronous": "sometimes"},
        {"iter_batch_size": 0},
        {"wal": "yes"},
    ],
)
def test_config_is_validated(kwargs: dict) -> None:
    with pytest.raises((TypeError, ValueError)):
        SQLiteConfig(**kwargs)


# --- files that are not jitrl stores ---------------------------------------------------------


def _foreign_database(path: Path, application_id: int = 0, user_version: int = 0) -> None:
    raw = sqlite3.connect(path)
    raw.execute("CREATE TABLE users (name TEXT)")
    raw.execute("INSERT INTO users VALUES ('ada')")
    raw.execute(f"PRAGMA application_id = {application_id}")
    raw.execute(f"PRAGMA user_version = {user_version}")
    raw.commit()
    raw.close()


def _foreign_wal_database(path: Path) -> None:
    _foreign_database(path)
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA journal_mode = WAL").fetchone()[0] == "wal"
    raw.close()


def _newer_store(path: Path) -> None:
    SQLiteStore(path).close()
    raw = sqlite3.connect(path)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.commit()
    raw.close()


def _marked_without_tables(path: Path) -> None:
    raw = sqlite3.connect(path)
    raw.execute("CREATE TABLE unrelated (x)")
    raw.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    raw.commit()
    raw.close()


BAD_FILES = {
    "text": (lambda p: p.write_text("hello, I am notes\n"), "not a SQLite database"),
    "random": (
        lambda p: p.write_bytes(random.Random(0).randbytes(RANDOM_FILE_SIZE)),
        "not a SQLite database",
    ),
    "corrupt": (
        lambda p: p.write_bytes(b"SQLite format 3\x00" + b"\x00\x07" + bytes(RANDOM_FILE_SIZE)),
        "cannot be read",
    ),
    "foreign": (_foreign_database, "not a jitrl store.*users"),
    "foreign_wal": (_foreign_wal_database, "not a jitrl store.*users"),
    "foreign_app": (
        lambda p: _foreign_database(p, FOREIGN_APPLICATION_ID),
        "another application.*0x12345678",
    ),
    "newer": (_newer_store, f"schema version {SCHEMA_VERSION + 1}, newer"),
    "no_tables": (_marked_without_tables, "lacks tables"),
    "old_unmigratable": (
        lambda p: _foreign_database(p, APPLICATION_ID, 0),
        "no migration from schema version 0",
    ),
}


@pytest.mark.parametrize("create", [True, False])
@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_bad_files_are_refused_untouched(store_path: Path, kind: str, create: bool) -> None:
    make, message = BAD_FILES[kind]
    make(store_path)
    before = snapshot(store_path)
    with pytest.raises(StoreError, match=message) as info:
        SQLiteStore(store_path, create=create)
    assert str(store_path) in str(info.value)
    assert snapshot(store_path) == before


def test_missing_file_without_create(store_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        SQLiteStore(store_path, create=False)
    assert not store_path.exists()


def test_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="is a directory"):
        SQLiteStore(tmp_path)


def test_empty_file_becomes_a_store(store_path: Path) -> None:
    store_path.touch()
    with pytest.raises(StoreError, match="empty SQLite file"):
        SQLiteStore(store_path, create=False)
    with SQLiteStore(store_path) as store:
        store.add_episode(episode("e1"))
    with SQLiteStore(store_path, create=False) as store:
        assert len(store) == 3


def test_missing_parent_folders_are_created(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "a" / "b" / "m.sqlite") as store:
        assert len(store) == 0


def test_migrate_schema_refuses_unknown_versions() -> None:
    conn = sqlite3.connect(":memory:")
    migrate_schema(conn, SCHEMA_VERSION)  # nothing to do
    with pytest.raises(StoreError, match="cannot migrate down"):
        migrate_schema(conn, SCHEMA_VERSION + 1)
    conn.close()


# --- open_store --------------------------------------------------------------------------------


def test_open_store_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for spec in (tmp_path / "p.sqlite", str(tmp_path / "s.sqlite"), f"sqlite:///{tmp_path}/a.db"):
        opened = open_store(spec)
        assert isinstance(opened, SQLiteStore)
        opened.close()
    assert (tmp_path / "a.db").exists()  # sqlite:////abs/path: absolute
    monkeypatch.chdir(tmp_path)
    with closing(open_store("sqlite:///rel.db")) as opened:
        assert isinstance(opened, SQLiteStore) and opened.path == Path("rel.db")
    assert (tmp_path / "rel.db").exists()


@pytest.mark.parametrize(
    ("spec", "error", "message"),
    [
        ("mysql://host/db", ValueError, "unsupported"),
        ("sqlite://", ValueError, "expected sqlite:///path"),
        ("sqlite:///", ValueError, "expected sqlite:///path"),
    ],
)
def test_open_store_rejects(spec: str, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        open_store(spec)


# --- read-only opening ----------------------------------------------------------------------


def test_read_only_reads_everything_and_leaves_no_file(store_path: Path) -> None:
    with SQLiteStore(store_path) as store:
        store.add_episode(episode("e1", 3), meta={"seed": 1})
        store.add_episode(episode("e2", 2))
        expected = list(store)
    before = snapshot(store_path)
    assert sorted(before) == ["memory.sqlite"]
    with closing(open_store(store_path, read_only=True)) as reader:
        assert isinstance(reader, SQLiteStore) and reader.read_only
        assert list(reader) == expected and reader.stats().episodes == 2
        assert reader.episode_meta("e1") == {"seed": 1}
        with pytest.raises(StoreError, match="opened read-only"):
            reader.add_episode(episode("e3"))
        with pytest.raises(StoreError, match="opened read-only"):
            reader.delete_episode("e1")
    assert snapshot(store_path) == before  # no -wal/-shm left, not a byte changed


def test_read_only_refuses_what_is_not_a_store(store_path: Path) -> None:
    with pytest.raises(StoreError, match=r"no store at .*does not exist"):
        SQLiteStore(store_path, read_only=True)
    assert not store_path.exists()
    store_path.touch()
    with pytest.raises(StoreError, match="empty SQLite file"):
        SQLiteStore(store_path, read_only=True)
    assert store_path.read_bytes() == b""
