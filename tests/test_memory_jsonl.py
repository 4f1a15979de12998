"""Tests of JSON Lines export/import between experience stores, and the property test that
arbitrary valid experiences survive a SQLite store and an export/import exactly."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jitrl.memory import ImportResult, SQLiteConfig, SQLiteStore, export_jsonl, import_jsonl
from jitrl.memory.jsonl import read_episodes
from jitrl.method.types import Experience, State


def episode(episode_id: str, steps: int = 3, task_id: str = "task") -> list[Experience]:
    """A simple valid episode of ``steps`` records."""
    return [
        Experience(
            state=State(text=f"room {step} — ü", key=None if step % 2 else f"k{step}"),
            action=f"go {step}",
            ret=0.1 * (steps - step),
            episode_id=episode_id,
            step=step,
            task_id=task_id,
            reward=1.0 / 3.0,
            created_at=1_700_000_000.25,
        )
        for step in range(steps)
    ]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    with SQLiteStore(tmp_path / "memory.sqlite") as opened:
        yield opened


@pytest.fixture
def other(tmp_path: Path) -> Iterator[SQLiteStore]:
    with SQLiteStore(tmp_path / "other.sqlite") as opened:
        yield opened


def line(**fields: object) -> str:
    """One valid JSON line, with ``fields`` overriding (``None`` values are removed)."""
    obj: dict[str, object] = {
        "episode_id": "e1",
        "step": 0,
        "task_id": "t",
        "state": {"text": "room", "key": None},
        "action": "look",
        "reward": 0.0,
        "ret": 1.0,
        "created_at": 2.0,
    }
    obj.update(fields)
    return json.dumps({key: value for key, value in obj.items() if value is not None})


def test_export_writes_every_field(store: SQLiteStore, tmp_path: Path) -> None:
    records = episode("e1", 2)
    store.add_episode(records)
    target = tmp_path / "out.jsonl"
    assert export_jsonl(store, target) == 2
    lines = target.read_text(encoding="utf-8").splitlines()
    assert [json.loads(text) for text in lines] == [
        {
            "episode_id": "e1",
            "step": record.step,
            "task_id": "task",
            "state": {"text": record.state.text, "key": record.state.key},
            "action": record.action,
            "reward": record.reward,
            "ret": record.ret,
            "created_at": record.created_at,
            "namespace": "default",
        }
        for record in records
    ]
    assert [item.name for item in tmp_path.iterdir() if item.name.endswith(".tmp")] == []


def test_failed_export_leaves_target_untouched(tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    target.write_text("previous export\n")

    def broken() -> Iterator[Experience]:
        yield from episode("e1", 2)
        raise RuntimeError("store went away")

    with pytest.raises(RuntimeError, match="went away"):
        export_jsonl(broken(), target)
    assert target.read_text() == "previous export\n"
    assert sorted(item.name for item in tmp_path.iterdir()) == ["out.jsonl"]


def test_round_trip_and_idempotent_import(
    store: SQLiteStore, other: SQLiteStore, tmp_path: Path
) -> None:
    for index in range(3):
        store.add_episode(episode(f"e{index}", index + 1))
    path = tmp_path / "out.jsonl"
    export_jsonl(store, path)
    assert import_jsonl(other, path) == ImportResult(episodes=3, experiences=6, skipped_episodes=0)
    assert list(other) == list(store)
    assert import_jsonl(other, path) == ImportResult(episodes=0, experiences=0, skipped_episodes=3)
    assert list(other) == list(store)


def test_import_skips_stored_episodes_and_groups_interleaved_lines(
    store: SQLiteStore, tmp_path: Path
) -> None:
    store.add_episode(episode("old", 1))
    path = tmp_path / "in.jsonl"
    lines = [
        line(episode_id="a", step=0),
        "",
        line(episode_id="b", step=0),
        line(episode_id="old", step=0),
        line(episode_id="a", step=1, task_id=None, reward=None, created_at=None),
    ]
    path.write_text("\n".join(lines) + "\n")
    assert import_jsonl(store, path) == ImportResult(episodes=2, experiences=3, skipped_episodes=1)
    assert store.episode_ids() == ["old", "a", "b"]
    a_records = [record for record in store if record.episode_id == "a"]
    assert [record.step for record in a_records] == [0, 1]
    assert (a_records[1].task_id, a_records[1].reward, a_records[1].created_at) == ("", 0.0, 0.0)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("{not json", "line 3: "),
        ("[1, 2]", "line 3: expected a JSON object"),
        (line(ret=None), r"line 3: missing keys \['ret'\]"),
        (line(colour="red"), r"line 3: .*unknown keys \['colour'\]"),
        (line(step="0"), "line 3: .*step must be an int"),
        (line(step=1.5), "line 3: .*step must be an int"),
        (line(step=-1), "line 3: .*step must be in"),
        (line(ret="high"), "line 3: .*ret must be a float"),
        (line(state="room"), "line 3: state must be an object"),
        (line(state={"key": "k"}), "line 3: state must be an object"),
        (line(episode_id=""), "line 3: .*episode_id must not be empty"),
        (line().replace("1.0", "NaN"), "line 3: non-finite number NaN"),
        (line().replace("1.0", "1e999"), "line 3: ret must be finite"),
        (line().replace('"look"', '"\\ud800"'), "line 3: action is not valid UTF-8"),
        (line(action=""), "line 3: action must not be empty or blank"),
        (line(action="  "), "line 3: action must not be empty or blank"),
        (line(state={"text": " \n"}), "line 3: state.text must not be empty or blank"),
        (line(step=7), r"in.jsonl: episode 'e1' has steps \[0, 1, 7\]; .* must be 0 to 2"),
        (line(step=1), r"in.jsonl: episode 'e1' has steps \[0, 1, 1\]"),
    ],
)
def test_malformed_line_imports_nothing(
    store: SQLiteStore, tmp_path: Path, bad: str, message: str
) -> None:
    path = tmp_path / "in.jsonl"
    # A complete valid episode precedes the bad line: it must not be imported either.
    path.write_text("\n".join([line(step=0), line(step=1), bad, line(episode_id="e2")]) + "\n")
    with pytest.raises(ValueError, match=message):
        import_jsonl(store, path)
    assert len(store) == 0 and store.episode_ids() == []


@pytest.mark.parametrize("steps", [[0, 0, 7], [1], [0, 2, 1]])
def test_episode_steps_are_checked_before_anything_is_stored(
    store: SQLiteStore, tmp_path: Path, steps: list[int]
) -> None:
    path = tmp_path / "in.jsonl"
    lines = [line(episode_id="good", step=0)] + [line(step=step) for step in steps]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"episode 'e1' has steps .* each once"):
        read_episodes(path)
    with pytest.raises(ValueError, match=r"in\.jsonl: episode 'e1'"):
        import_jsonl(store, path)
    assert len(store) == 0  # the valid episode before it was not imported either


def test_export_to_a_missing_folder_creates_nothing(store: SQLiteStore, tmp_path: Path) -> None:
    store.add_episode(episode("e1"))
    with pytest.raises(FileNotFoundError) as info:
        export_jsonl(store, tmp_path / "missing" / "out.jsonl")
    assert info.value.filename == str(tmp_path / "missing")
    assert not (tmp_path / "missing").exists()


def test_invalid_utf8_names_the_line(store: SQLiteStore, tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(line().encode() + b"\n" + b'{"episode_id": "\xff"}\n')
    with pytest.raises(ValueError, match=r"line 2: .*utf-8"):
        import_jsonl(store, path)
    assert len(store) == 0


# --- property: arbitrary experiences survive export -> import exactly ------------------------

finite = st.floats(allow_nan=False, allow_infinity=False)
non_blank = st.text(min_size=1).filter(lambda text: text.strip() != "")  # the stores' rule
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
@given(episodes_strategy)
def test_arbitrary_experiences_round_trip_in_sqlite(episodes: list) -> None:
    built = build(episodes)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "m.sqlite"
        with SQLiteStore(path, SQLiteConfig(iter_batch_size=3)) as store:
            for records in built:
                store.add_episode(records)
        with SQLiteStore(path, create=False) as store:
            assert list(store) == [record for records in built for record in records]
            assert store.episode_ids() == [records[0].episode_id for records in built]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(episodes_strategy)
def test_arbitrary_experiences_survive_export_import(episodes: list) -> None:
    built = build(episodes)
    with tempfile.TemporaryDirectory() as folder:
        source, copy = (
            SQLiteStore(Path(folder) / "a.sqlite"),
            SQLiteStore(Path(folder) / "b.sqlite"),
        )
        with source, copy:
            for records in built:
                source.add_episode(records)
            first, second = Path(folder) / "a.jsonl", Path(folder) / "b.jsonl"
            count = export_jsonl(source, first)
            assert count == sum(len(records) for records in built)
            result = import_jsonl(copy, first)
            assert (result.episodes, result.experiences) == (len(built), count)
            assert list(copy) == [record for records in built for record in records]
            assert import_jsonl(copy, first).episodes == 0  # idempotent
            assert len(copy) == count
            export_jsonl(copy, second)
            assert second.read_bytes() == first.read_bytes()
