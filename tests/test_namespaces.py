"""Memory namespaces: every record carries one, retrieval stays inside the learner's namespaces,
a shared one can be opted into, and stores of schema version 1 are upgraded in place."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jitrl.memory import SQLiteStore, StoreError, open_store
from jitrl.memory.jsonl import experience_from_json, experience_to_json
from jitrl.memory.validation import validate_episode
from jitrl.method.config import JitRLConfig, ScopeConfig
from jitrl.method.learner import JitRL
from jitrl.method.types import DEFAULT_NAMESPACE, Experience, State
from jitrl.settings import SettingsError, resolve

CANDIDATES = ["open door", "eat key"]
LOGITS = [0.0, 0.0]


def scoped(namespace: str, *read: str) -> JitRLConfig:
    return JitRLConfig(scope=ScopeConfig(namespace=namespace, read_namespaces=read))


def play(jit: JitRL, episode_id: str, reward: float = 1.0) -> None:
    with jit.episode(task_id="t", episode_id=episode_id) as ep:
        ep.decide("kitchen with a locked door", CANDIDATES, logits=LOGITS)
        ep.reward(reward)
        ep.finish()


def record(episode_id: str, step: int, namespace: str = DEFAULT_NAMESPACE) -> Experience:
    return Experience(State(f"room {step}"), "go", 1.0, episode_id, step, namespace=namespace)


# --- retrieval stays inside the namespaces --------------------------------------------------


def test_a_learner_neither_sees_nor_writes_another_namespace(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite"
    alice = JitRL(path, scoped("alice"))
    play(alice, "a1")
    alice.close()

    bob = JitRL(path, scoped("bob"))
    decision = bob.episode("t").decide("kitchen with a locked door", CANDIDATES, logits=LOGITS)
    assert decision.neighbours == ()  # alice's episode is in the store, not in bob's memory
    play(bob, "b1", reward=-1.0)
    bob.close()

    with SQLiteStore(path) as store:
        assert {r.episode_id: r.namespace for r in store} == {"a1": "alice", "b1": "bob"}
        assert store.episode_ids(["alice"]) == ["a1"]
        assert store.episode_ids(["bob", "alice"]) == ["a1", "b1"]
        assert store.episode_ids() == ["a1", "b1"]
        assert store.stats().namespaces == 2


def test_a_shared_namespace_is_read_but_never_written(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite"
    team = JitRL(path, scoped("shared"))
    play(team, "s1")
    team.close()

    carol = JitRL(path, scoped("carol", "shared"))
    decision = carol.episode("t").decide("kitchen with a locked door", CANDIDATES, logits=LOGITS)
    assert [n.experience.episode_id for n in decision.neighbours] == ["s1"]
    play(carol, "c1")
    carol.close()
    with SQLiteStore(path) as store:
        assert store.episode_ids(["shared"]) == ["s1"]  # carol's episode went to carol
        assert store.episode_ids(["carol"]) == ["c1"]


def test_sync_only_adds_readable_episodes(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite"
    reader = JitRL(path, scoped("alice"))
    other = JitRL(path, scoped("bob"))
    play(other, "b1")
    same = JitRL(path, scoped("alice"))
    play(same, "a1")
    assert reader.sync() == 1
    assert reader.index.has_episode("a1") and not reader.index.has_episode("b1")
    assert reader.sync() == 0


def test_lsh_index_is_saved_per_set_of_namespaces(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite"
    config = scoped("alice")
    lsh = JitRLConfig(scope=config.scope, retrieval=JitRLConfig().retrieval.__class__(index="lsh"))
    jit = JitRL(path, lsh)
    play(jit, "a1")
    jit.close()
    folders = sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".lsh"))
    assert len(folders) == 1 and folders[0] != "m.sqlite.lsh"
    again = JitRL(path, lsh)
    assert again.index.has_episode("a1")
    again.close()


# --- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["", "  ", "a,b", "tab\there", "x" * 201])
def test_bad_namespaces_are_refused(name: str) -> None:
    with pytest.raises(ValueError):
        ScopeConfig(namespace=name)
    with pytest.raises(ValueError):
        ScopeConfig(read_namespaces=(name,))
    with pytest.raises(ValueError):
        validate_episode([record("e", 0, namespace=name)])


def test_an_episode_lives_in_one_namespace() -> None:
    with pytest.raises(ValueError, match="one namespace"):
        validate_episode([record("e", 0, "a"), record("e", 1, "b")])


def test_namespace_settings_from_flags_file_and_environment(tmp_path: Path) -> None:
    roots = [JitRLConfig]
    out = resolve(roots, flags={"namespace": "alice", "read_namespaces": "team, all"}, environ={})
    assert out[JitRLConfig].scope == ScopeConfig("alice", ("team", "all"))
    toml = tmp_path / "c.toml"
    toml.write_text('namespace = "bob"\nread_namespaces = ["shared"]\n')
    out = resolve(roots, config_file=toml, environ={"JITRL_NAMESPACE": "carol"})
    assert out[JitRLConfig].scope == ScopeConfig("carol", ("shared",))
    with pytest.raises(SettingsError, match="namespace"):
        resolve(roots, flags={"namespace": " "}, environ={})
    toml.write_text("read_namespaces = [1]\n")
    with pytest.raises(SettingsError, match="list of strings"):
        resolve(roots, config_file=toml, environ={})


# --- stores and files -----------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=8), st.data())
def test_episode_ids_of_namespaces_match_the_records(
    tmp_path_factory: pytest.TempPathFactory, spaces: list[str], data: st.DataObject
) -> None:
    path = tmp_path_factory.mktemp("ns") / "m.sqlite"
    with SQLiteStore(path) as store:
        for i, space in enumerate(spaces):
            store.add_episode([record(f"e{i}", 0, space), record(f"e{i}", 1, space)])
        wanted = data.draw(st.sets(st.sampled_from(["a", "b", "c", "d"])))
        expected = [f"e{i}" for i, space in enumerate(spaces) if space in wanted]
        assert store.episode_ids(wanted) == expected
        assert [r.episode_id for r in store.in_namespaces(wanted)][::2] == expected


def test_jsonl_keeps_the_namespace_and_old_lines_land_in_default() -> None:
    rec = record("e", 0, "alice")
    assert experience_from_json(experience_to_json(rec)) == rec
    old = experience_to_json(rec)
    del old["namespace"]
    assert experience_from_json(old).namespace == DEFAULT_NAMESPACE


V1_SCHEMA = (
    "CREATE TABLE episodes (episode_id TEXT PRIMARY KEY NOT NULL, task_id TEXT NOT NULL, "
    "steps INTEGER NOT NULL, total_reward REAL NOT NULL, created_at REAL NOT NULL, "
    "meta TEXT NOT NULL DEFAULT '{}')",
    "CREATE TABLE experiences (id INTEGER PRIMARY KEY AUTOINCREMENT, episode_id TEXT NOT NULL "
    "REFERENCES episodes (episode_id), step INTEGER NOT NULL, task_id TEXT NOT NULL, "
    "state_text TEXT NOT NULL, state_key TEXT, action TEXT NOT NULL, reward REAL NOT NULL, "
    "ret REAL NOT NULL, created_at REAL NOT NULL)",
    "INSERT INTO episodes VALUES ('old', 't', 1, 1.0, 5.0, '{}')",
    "INSERT INTO experiences (episode_id, step, task_id, state_text, state_key, action, reward, "
    "ret, created_at) VALUES ('old', 0, 't', 'hall', NULL, 'north', 1.0, 1.0, 5.0)",
    "PRAGMA application_id = 1246319698",
    "PRAGMA user_version = 1",
)


def version_1_store(path: Path) -> Path:
    with sqlite3.connect(path) as conn:
        for statement in V1_SCHEMA:
            conn.execute(statement)
    conn.close()
    return path


def test_a_version_1_sqlite_store_is_upgraded_in_place(tmp_path: Path) -> None:
    path = version_1_store(tmp_path / "old.sqlite")
    with pytest.raises(StoreError, match="jitrl memory upgrade"):
        open_store(path, read_only=True)
    with SQLiteStore(path) as store:
        assert store.stats().schema_version == 2
        assert [(r.episode_id, r.namespace) for r in store] == [("old", DEFAULT_NAMESPACE)]
        store.add_episode([record("new", 0, "alice")])
        assert store.episode_ids(["alice"]) == ["new"]
    with open_store(path, read_only=True) as store:
        assert len(store) == 2


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jitrl", *args], cwd=cwd, capture_output=True, text=True
    )


def test_memory_export_forget_and_upgrade_by_namespace(tmp_path: Path) -> None:
    path = version_1_store(tmp_path / "m.sqlite")
    done = run_cli("memory", "upgrade", "--memory", str(path), cwd=tmp_path)
    assert done.returncode == 0 and "schema version 2" in done.stdout
    with SQLiteStore(path) as store:
        store.add_episode([record("a1", 0, "alice")])
        store.add_episode([record("b1", 0, "bob")])
    out = tmp_path / "alice.jsonl"
    done = run_cli(
        "memory", "export", str(out), "--memory", str(path), "--namespace", "alice", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["episode_id"] for line in out.read_text().splitlines()] == ["a1"]
    done = run_cli("memory", "forget", "--namespace", "alice", "--memory", str(path), cwd=tmp_path)
    assert done.returncode == 0 and "deleted 1 episode" in done.stdout
    with SQLiteStore(path) as store:
        assert store.episode_ids() == ["old", "b1"]


@pytest.mark.usefixtures("postgres_server")
def test_postgres_store_keeps_namespaces_and_upgrades_version_1(pg_url: str) -> None:
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE jitrl_schema_version (singleton boolean PRIMARY KEY DEFAULT true "
            "CHECK (singleton), application text NOT NULL, version integer NOT NULL)"
        )
        conn.execute("INSERT INTO jitrl_schema_version (application, version) VALUES ('jitrl', 1)")
        conn.execute(
            "CREATE TABLE episodes (seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
            "episode_id text NOT NULL UNIQUE, task_id text NOT NULL, steps integer NOT NULL, "
            "total_reward double precision NOT NULL, created_at double precision NOT NULL, "
            "meta json NOT NULL DEFAULT '{}')"
        )
        conn.execute(
            "CREATE TABLE experiences (episode_seq bigint NOT NULL REFERENCES episodes (seq), "
            "position integer NOT NULL, episode_id text NOT NULL, step bigint NOT NULL, "
            "task_id text NOT NULL, state_text text NOT NULL, state_key text, action text NOT "
            "NULL, reward double precision NOT NULL, ret double precision NOT NULL, created_at "
            "double precision NOT NULL, PRIMARY KEY (episode_seq, position))"
        )
        conn.execute(
            "INSERT INTO episodes (episode_id, task_id, steps, total_reward, created_at)"
            " VALUES ('old', 't', 1, 1.0, 5.0)"
        )
        conn.execute(
            "INSERT INTO experiences VALUES (1, 0, 'old', 0, 't', 'hall', NULL, 'north', 1.0, "
            "1.0, 5.0)"
        )
    with open_store(pg_url) as store:
        assert store.stats().schema_version == 2
        store.add_episode([record("a1", 0, "alice"), record("a1", 1, "alice")])
        assert [(r.episode_id, r.namespace) for r in store] == [
            ("old", DEFAULT_NAMESPACE),
            ("a1", "alice"),
            ("a1", "alice"),
        ]
        assert store.episode_ids(["alice"]) == ["a1"]
        assert store.episode_ids([DEFAULT_NAMESPACE]) == ["old"]
        assert store.stats().namespaces == 2
    jit = JitRL(pg_url, scoped("alice"))
    assert jit.index.has_episode("a1") and not jit.index.has_episode("old")
    jit.close()
