"""Tests of the PostgreSQL experience store against a real, throwaway server (tests/pg.py).

Every test that needs the server is skipped when the PostgreSQL binaries or psycopg are missing.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jitrl.memory import (
    DuplicateEpisodeError,
    ExperienceStore,
    PostgresConfig,
    PostgresStore,
    SQLiteConfig,
    SQLiteStore,
    StoreError,
    migrate,
    open_store,
)
from jitrl.memory.postgres_schema import SCHEMA_VERSION, decode_text, encode_text, redact_url
from jitrl.method.types import Experience, State
from tests import store_workers
from tests.pg import PostgresServer

WRITERS = 8
EPISODES_PER_WRITER = 200
READERS = 2


def episode(episode_id: str, steps: int = 3, task_id: str = "task") -> list[Experience]:
    """A simple valid episode of ``steps`` records."""
    return [
        Experience(
            state=State(text=f"room {step}", key=None if step % 2 else f"k{step}"),
            action=f"go {step}",
            ret=float(steps - step) / 3,
            episode_id=episode_id,
            step=step,
            task_id=task_id,
            reward=1.0,
            created_at=1_700_000_000.5,
        )
        for step in range(steps)
    ]


def raw(url: str):  # type: ignore[no-untyped-def]
    """A plain psycopg connection (autocommit) to the test schema."""
    import psycopg

    return psycopg.connect(url, autocommit=True)


@pytest.fixture
def store(pg_url: str) -> Iterator[PostgresStore]:
    with PostgresStore(pg_url) as opened:
        yield opened


# --- round trip, schema, stats ---------------------------------------------------------------


def test_round_trip_survives_reopen(pg_url: str) -> None:
    first, second = episode("e1", 4), episode("e2", 2, task_id="other")
    with PostgresStore(pg_url) as store:
        store.add_episode(first, meta={"seed": 3, "won": True})
        store.add_episode(second)
    with PostgresStore(pg_url, create=False) as store:
        assert list(store) == first + second
        assert list(store) == first + second  # stable
        assert len(store) == len(first) + len(second)
        assert store.episode_ids() == ["e1", "e2"]
        assert store.has_episode("e1") and not store.has_episode("e3")
        assert store.episode_meta("e1") == {"seed": 3, "won": True}
        assert store.episode_meta("e2") == {}
        assert store.episode_meta("e3") is None
        assert isinstance(store, ExperienceStore)


def test_tables_and_version_row(store: PostgresStore, pg_url: str) -> None:
    with raw(pg_url) as conn:
        assert conn.execute("SELECT application, version FROM jitrl_schema_version").fetchall() == [
            ("jitrl", SCHEMA_VERSION)
        ]
        identity = conn.execute(
            "SELECT attidentity FROM pg_attribute "
            "WHERE attrelid = 'episodes'::regclass AND attname = 'seq'"
        ).fetchone()
        assert identity == ("a",)  # GENERATED ALWAYS AS IDENTITY


def test_stats(store: PostgresStore) -> None:
    assert store.stats().experiences == 0 and store.stats().mean_return == 0.0
    store.add_episode(episode("e1", 3))
    store.add_episode(episode("e2", 2, task_id="t2"))
    stats = store.stats()
    assert (stats.experiences, stats.episodes, stats.tasks) == (5, 2, 2)
    assert (stats.states, stats.actions, stats.schema_version) == (3, 3, SCHEMA_VERSION)
    assert stats.mean_return == pytest.approx((3 + 2 + 1 + 2 + 1) / 3 / 5)


def test_iteration_is_batched_and_whole(pg_url: str) -> None:
    with PostgresStore(pg_url, PostgresConfig(iter_batch_size=2)) as store:
        store.add_episode(episode("e1", 3))
        store.add_episode(episode("e2", 3))
        iterator = iter(store)
        head = [next(iterator) for _ in range(3)]
        store.add_episode(episode("e3", 3))  # added mid-iteration: after the upper bound
        assert head + list(iterator) == episode("e1", 3) + episode("e2", 3)
        assert len(list(store)) == 9


def test_closed_store_raises(pg_url: str) -> None:
    store = PostgresStore(pg_url)
    store.close()
    store.close()  # idempotent
    with pytest.raises(StoreError, match="closed"):
        len(store)


def test_text_that_postgres_cannot_hold_round_trips(store: PostgresStore) -> None:
    odd = ["a\x00b", "\uffff", "\uffffx\\0", "\\0", "back\\slash\x00", "x\x00", ""]
    for value in odd:
        assert decode_text(encode_text(value)) == value
    assert encode_text("plain \\ text") == "plain \\ text"  # verbatim unless needed
    stored = odd[:-1]  # a store refuses blank state texts and actions
    records = [
        Experience(State(text, text or None), text, 0.5, "nul\x00id", step, text)
        for step, text in enumerate(stored)
    ]
    store.add_episode(records)
    assert list(store) == records
    assert store.episode_ids() == ["nul\x00id"] and store.has_episode("nul\x00id")
    assert not store.has_episode("nul")


def test_reconnects_after_the_connection_is_lost(store: PostgresStore, pg_url: str) -> None:
    store.add_episode(episode("e1"))
    with raw(pg_url) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (store._conn.info.backend_pid,))
    time.sleep(0.2)
    with pytest.raises(StoreError, match="failed"):
        len(store)
    assert len(store) == 3  # reconnected
    store.add_episode(episode("e2"))
    assert store.episode_ids() == ["e1", "e2"]


# --- atomicity, validation, duplicates ---------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("ret", math.nan, ValueError),
        ("reward", math.inf, ValueError),
        ("step", -1, ValueError),
        ("action", b"bytes", TypeError),
        ("action", "lone \ud800 surrogate", ValueError),
        ("episode_id", "other", ValueError),
    ],
)
def test_invalid_fifth_record_stores_nothing(
    store: PostgresStore, field: str, value: object, error: type[Exception]
) -> None:
    store.add_episode(episode("keep", 2))
    before = list(store)
    records = episode("bad", 6)
    object.__setattr__(records[4], field, value)
    with pytest.raises(error, match="#4"):
        store.add_episode(records)
    assert list(store) == before and store.episode_ids() == ["keep"]


def test_failure_inside_the_transaction_rolls_back(store: PostgresStore, pg_url: str) -> None:
    store.add_episode(episode("keep", 2))
    before = list(store)
    with raw(pg_url) as conn:  # the server refuses the 5th record, after 4 were inserted
        conn.execute(
            "CREATE FUNCTION fail_fifth() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF NEW.step = 4 THEN RAISE EXCEPTION 'boom'; END IF; RETURN NEW; END $$"
        )
        conn.execute(
            "CREATE TRIGGER fail_fifth BEFORE INSERT ON experiences "
            "FOR EACH ROW EXECUTE FUNCTION fail_fifth()"
        )
    with pytest.raises(StoreError, match="boom"):
        store.add_episode(episode("bad", 6))
    assert list(store) == before and store.episode_ids() == ["keep"]
    assert store.stats().episodes == 1
    store.add_episode(episode("after", 2))  # the connection is usable again
    assert store.episode_ids() == ["keep", "after"]


def test_duplicate_episode_is_refused(store: PostgresStore) -> None:
    store.add_episode(episode("e1", 3))
    before = list(store)
    with pytest.raises(DuplicateEpisodeError, match="'e1' is already stored") as info:
        store.add_episode(episode("e1", 5))
    assert isinstance(info.value, StoreError)
    assert list(store) == before and store.episode_ids() == ["e1"]


@pytest.mark.parametrize("other_commits", [True, False])
def test_racing_duplicate_waits_for_the_other_writer(
    store: PostgresStore, pg_url: str, other_commits: bool
) -> None:
    """A writer of the same id, mid-transaction, decides the race (the unique constraint)."""
    outcome: list[object] = []
    with raw(pg_url) as other:
        other.autocommit = False
        other.execute(
            "INSERT INTO episodes (episode_id, task_id, steps, total_reward, created_at) "
            "VALUES ('e1', 't', 0, 0, 0)"
        )

        def add() -> None:
            try:
                store.add_episode(episode("e1"))
                outcome.append("stored")
            except DuplicateEpisodeError as exc:
                outcome.append(exc)

        thread = threading.Thread(target=add)
        thread.start()
        time.sleep(0.5)
        assert thread.is_alive() and not outcome  # blocked on the other transaction
        other.commit() if other_commits else other.rollback()
        thread.join(timeout=30)
    if other_commits:
        assert isinstance(outcome[0], DuplicateEpisodeError) and len(store) == 0
    else:
        assert outcome == ["stored"] and list(store) == episode("e1")


def test_empty_episode_and_bad_meta(store: PostgresStore) -> None:
    with pytest.raises(ValueError, match="at least one"):
        store.add_episode([])
    with pytest.raises(ValueError, match="JSON"):
        store.add_episode(episode("e1"), meta={"when": object()})
    assert len(store) == 0 and store.episode_ids() == []


@pytest.mark.parametrize("kwargs", [{"connect_timeout_s": 0}, {"iter_batch_size": 0}])
def test_config_is_validated(kwargs: dict) -> None:
    with pytest.raises((TypeError, ValueError)):
        PostgresConfig(**kwargs)


# --- databases that are not (usable) jitrl stores -----------------------------------------------

BAD_DATABASES = {
    "newer": (f"UPDATE jitrl_schema_version SET version = {SCHEMA_VERSION + 1}", "newer than"),
    "unknown": ("UPDATE jitrl_schema_version SET version = 0", "unknown jitrl schema version 0"),
    "other_app": ("UPDATE jitrl_schema_version SET application = 'x'", "not the marker"),
    "no_row": ("DELETE FROM jitrl_schema_version", "not the marker"),
    "lacks": ("DROP TABLE experiences", r"lacks tables \['experiences'\]"),
}


@pytest.mark.parametrize("create", [True, False])
@pytest.mark.parametrize("kind", sorted(BAD_DATABASES))
def test_tampered_store_is_refused_untouched(pg_url: str, kind: str, create: bool) -> None:
    with PostgresStore(pg_url) as store:
        store.add_episode(episode("e1"))
    tamper, message = BAD_DATABASES[kind]
    with raw(pg_url) as conn:
        conn.execute(tamper)
        before = conn.execute("SELECT * FROM jitrl_schema_version").fetchall()
    with pytest.raises(StoreError, match=message):
        PostgresStore(pg_url, create=create)
    with raw(pg_url) as conn:
        assert conn.execute("SELECT * FROM jitrl_schema_version").fetchall() == before


@pytest.mark.parametrize("table", ["episodes", "experiences", "jitrl_schema_version"])
def test_foreign_tables_of_the_same_name_are_refused(pg_url: str, table: str) -> None:
    with raw(pg_url) as conn:
        conn.execute(f"CREATE TABLE {table} (name text)")
        conn.execute(f"INSERT INTO {table} VALUES ('ada')")
    with pytest.raises(StoreError, match=f"{table}.*(not part of a jitrl|not jitrl's)"):
        PostgresStore(pg_url)
    with raw(pg_url) as conn:
        assert conn.execute(f"SELECT * FROM {table}").fetchall() == [("ada",)]
        tables = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        ).fetchall()
        assert tables == [(table,)]


def test_no_store_without_create(pg_url: str) -> None:
    with pytest.raises(StoreError, match=r"no jitrl store.*create=False"):
        PostgresStore(pg_url, create=False)


def test_unreachable_server_names_the_url_without_password() -> None:
    pytest.importorskip("psycopg")
    url = "postgresql://ada:s3cret@127.0.0.1:1/memory"
    with pytest.raises(StoreError, match="cannot connect to PostgreSQL") as info:
        PostgresStore(url, PostgresConfig(connect_timeout_s=2))
    assert "postgresql://ada:***@127.0.0.1:1/memory" in str(info.value)
    assert "s3cret" not in str(info.value)


def test_missing_psycopg_gives_an_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(StoreError, match=r"pip install 'jitrl\[postgres\]'"):
        open_store("postgresql://localhost/db")


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        ("postgresql://u:pw@h:5/db", "postgresql://u:***@h:5/db"),
        ("postgresql://u@h/db?password=pw&sslmode=require",
         "postgresql://u@h/db?password=***&sslmode=require"),
        ("postgres://h1,h2:5433/db", "postgres://h1,h2:5433/db"),
        ("host=h password='p w' dbname=x", "host=h password=*** dbname=x"),
    ],
)  # fmt: skip
def test_redact_url(url: str, redacted: str) -> None:
    assert redact_url(url) == redacted


def test_open_store_selects_postgres_by_url(pg_url: str, tmp_path: Path) -> None:
    for url in (pg_url, pg_url.replace("postgresql://", "POSTGRES://")):
        with closing(open_store(url)) as opened:
            assert isinstance(opened, PostgresStore)
            opened.add_episode(episode(f"e-{len(opened)}"))
    with pytest.raises(TypeError, match="SQLiteConfig"):
        open_store(pg_url, SQLiteConfig())
    with pytest.raises(TypeError, match="PostgresConfig"):
        open_store(tmp_path / "m.sqlite", PostgresConfig())


# --- migrate between stores -------------------------------------------------------------------


def test_migrate_sqlite_postgres_sqlite(pg_url: str, tmp_path: Path) -> None:
    episodes = [episode("a", 3), episode("b", 1, task_id="t2"), episode("c\x00", 4)]
    flat = [record for records in episodes for record in records]
    with SQLiteStore(tmp_path / "src.sqlite") as src:
        for records in episodes:
            src.add_episode(records, meta={"name": records[0].episode_id})
        with PostgresStore(pg_url) as middle:
            middle.add_episode(episode("a", 3))  # already there: skipped
            result = migrate(src, middle)
            assert (result.episodes, result.experiences, result.skipped_episodes) == (2, 5, 1)
            assert migrate(src, middle).skipped_episodes == 3  # idempotent
            with SQLiteStore(tmp_path / "back.sqlite") as back:
                assert migrate(middle, back).episodes == 3
                assert list(back) == list(middle) == flat
                assert back.episode_ids() == src.episode_ids()
                assert back.episode_meta("b") == {"name": "b"} == middle.episode_meta("b")
                assert back.episode_meta("a") == {}  # stored in middle without meta


# --- property: arbitrary experiences survive exactly -----------------------------------------

finite = st.floats(allow_nan=False, allow_infinity=False)
non_blank = st.text(min_size=1).filter(lambda t: t.strip() != "")
record_parts = st.tuples(
    non_blank, st.none() | st.text(), non_blank, finite, finite, finite, st.text()
)
episodes_strategy = st.lists(
    st.tuples(non_blank, st.lists(record_parts, min_size=1, max_size=5)),
    min_size=1,
    max_size=4,
    unique_by=lambda item: item[0],
)


def build(episodes: list) -> list[list[Experience]]:
    """Experiences from the generated parts (steps numbered in order)."""
    return [
        [
            Experience(State(text, key), action, ret, episode_id, step, task, reward, created)
            for step, (text, key, action, ret, reward, created, task) in enumerate(parts)
        ]
        for episode_id, parts in episodes
    ]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(episodes=episodes_strategy)
def test_arbitrary_experiences_round_trip(postgres_server: PostgresServer, episodes: list) -> None:
    built = build(episodes)
    url = postgres_server.fresh_url()
    with PostgresStore(url, PostgresConfig(iter_batch_size=3)) as store:
        for records in built:
            store.add_episode(records)
    with PostgresStore(url, create=False) as store:
        assert list(store) == [record for records in built for record in records]
        assert store.episode_ids() == [records[0].episode_id for records in built]
        assert all(store.has_episode(records[0].episode_id) for records in built)


# --- many processes --------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(store_workers.PROCESS_TIMEOUT_S)
def test_many_writer_and_reader_processes(pg_url: str) -> None:
    """8 processes write 200 episodes each into a new store while 2 others keep reading."""
    report = store_workers.run(pg_url, WRITERS, EPISODES_PER_WRITER, READERS)
    print(report.summary(f"postgres {WRITERS}x{EPISODES_PER_WRITER}"))
    for reader in report.readers:
        assert reader.problems == ()
        assert reader.lengths[-1] == store_workers.total_records(WRITERS, EPISODES_PER_WRITER)
    store_workers.check_all_stored(pg_url, WRITERS, EPISODES_PER_WRITER)


def test_experiences_of_reads_episodes_in_the_order_asked(store: PostgresStore) -> None:
    for name in ("a", "b\x00nul", "c"):
        store.add_episode(episode(name, steps=2))
    got = [(r.episode_id, r.step) for r in store.experiences_of(["c", "missing", "b\x00nul"])]
    assert got == [("c", 0), ("c", 1), ("b\x00nul", 0), ("b\x00nul", 1)]
    assert store.experiences_of([]) == []


def test_a_schema_per_store_in_one_database(pg_url: str) -> None:
    with PostgresStore(pg_url, PostgresConfig(schema="jitrl_one")) as one:
        one.add_episode(episode("only-in-one"))
    with PostgresStore(pg_url, PostgresConfig(schema="jitrl_two")) as two:
        assert len(two) == 0
    with PostgresStore(pg_url, PostgresConfig(schema="jitrl_one"), create=False) as again:
        assert again.episode_ids() == ["only-in-one"]
    with pytest.raises(StoreError, match="no jitrl store"):
        PostgresStore(pg_url, PostgresConfig(schema="jitrl_absent"), create=False)
    for bad in ("Upper", "1digit", "semi;colon", "x" * 64):
        with pytest.raises(ValueError, match="schema"):
            PostgresConfig(schema=bad)
