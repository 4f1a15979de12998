"""``jitrl memory`` through subprocess, as a user calls it: one store option everywhere, real
messages, read-only opening (also as another user, in folders that user may not write), safe
backups of stores whose newest episodes are still in the ``-wal`` file, import validation."""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from jitrl.memory import SQLiteStore
from jitrl.method.types import Experience, State

UNPRIVILEGED = ("--reuid=65534", "--regid=65534", "--clear-groups")  # nobody:nogroup
KILLED_EPISODES = 24
SECRET = "s3cr3t-pw"

WRITER = """
import os, sys
from jitrl.memory import SQLiteStore
from jitrl.method.types import Experience, State
store = SQLiteStore(sys.argv[1])
for index in range(int(sys.argv[2])):
    store.add_episode([Experience(State(f"room {s}"), f"go {s}", 1.0, f"e{index}", s, "t")
                       for s in range(3)])
os._exit(0)  # killed: no close, no checkpoint; the episodes stay in the -wal file
"""
OPEN_FOR_WRITING = """
import sys
from jitrl.memory import SQLiteStore, StoreError
try:
    SQLiteStore(sys.argv[1])
except StoreError as err:
    print(err)
    sys.exit(3)
"""


@functools.cache
def _setpriv() -> str | None:
    """``setpriv`` if it can run this Python as nobody (a root-only interpreter cannot)."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    probe = subprocess.run([setpriv, *UNPRIVILEGED, sys.executable, "-c", "import jitrl"],
                           capture_output=True, check=False, timeout=120)  # fmt: skip
    return setpriv if probe.returncode == 0 else None


def as_nobody() -> tuple[str, ...]:
    """The command prefix that runs a command as nobody (skips the test when there is none)."""
    setpriv = _setpriv()
    if setpriv is None:
        pytest.skip("running as root, and this Python cannot be run as another user")
    return (setpriv, *UNPRIVILEGED)


def run(
    *cmd: str, cwd: Path, unprivileged: bool = False, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` in ``cwd``; ``unprivileged``: as nobody when the tests run as root."""
    if unprivileged and os.geteuid() == 0:
        cmd = (*as_nobody(), *cmd)
    env = {**os.environ, "COLUMNS": "200", "HOME": str(cwd)}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def jitrl(*args: str, cwd: Path, **kwargs: bool) -> subprocess.CompletedProcess[str]:
    return run(sys.executable, "-m", "jitrl", *args, cwd=cwd, **kwargs)


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    """The single ``error: ...`` line of a failed command (exit code 2, no traceback)."""
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


def table_value(out: str, field: str) -> str:
    """The value of ``field`` in the table that ``jitrl memory stats`` prints."""
    for row in out.splitlines():
        cells = [cell.strip() for cell in row.split("│")]
        if len(cells) == 4 and cells[1] == field:
            return cells[2]
    raise AssertionError(f"no {field} in\n{out}")


def episode(episode_id: str, steps: int = 2) -> list[Experience]:
    return [
        Experience(State(f"room {step}"), f"go {step}", 1.0, episode_id, step, "t")
        for step in range(steps)
    ]


def make_store(path: Path, episodes: int = 2) -> None:
    with SQLiteStore(path) as store:
        for index in range(episodes):
            store.add_episode(episode(f"e{index}"))


def kill_writer(path: Path) -> None:
    """A store whose writer died: the newest episodes are only in ``<store>-wal``."""
    run(sys.executable, "-c", WRITER, str(path), str(KILLED_EPISODES), cwd=path.parent)
    assert Path(f"{path}-wal").stat().st_size > 0


def listing(folder: Path) -> list[str]:
    return sorted(item.name for item in folder.iterdir())


@pytest.fixture
def shared() -> Iterator[Path]:
    """A folder that an unprivileged user can reach (``tmp_path`` is private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="jitrl-cli-memory-"))
    folder.chmod(0o755)
    yield folder
    for item in [folder, *folder.rglob("*")]:
        if item.is_dir() and not item.is_symlink():
            item.chmod(stat.S_IRWXU)
    shutil.rmtree(folder)


def read_only_folder(shared: Path, name: str = "ro") -> Path:
    """A new folder ``shared/name`` (made read-only for the test user with :func:`lock`)."""
    folder = shared / name
    folder.mkdir()
    return folder


def writable_folder(shared: Path, name: str = "out") -> Path:
    folder = shared / name
    folder.mkdir()
    folder.chmod(0o777)
    return folder


def lock(folder: Path) -> None:
    """Make the folder and its files read-only (for everyone but root)."""
    for item in folder.iterdir():
        item.chmod(0o444)
    folder.chmod(0o555)


# --- messages and options ----------------------------------------------------------------------


def test_stats_without_a_store_says_what_to_do(tmp_path: Path) -> None:
    line = one_line_error(jitrl("memory", "stats", cwd=tmp_path, check=False))
    assert line == (
        "error: no store at jitrl-memory.sqlite (run jitrl run first, or give --memory PATH)"
    )
    assert listing(tmp_path) == []


def test_every_store_command_takes_memory(tmp_path: Path) -> None:
    make_store(tmp_path / "m.sqlite", episodes=3)
    for form in (["--memory", "m.sqlite"], ["m.sqlite"], ["m.sqlite", "--memory", "m.sqlite"]):
        out = jitrl("memory", "stats", *form, cwd=tmp_path).stdout
        assert table_value(out, "episodes") == "3" and table_value(out, "experiences") == "6"
    jitrl("memory", "export", "dump.jsonl", "--memory", "m.sqlite", cwd=tmp_path)
    assert len((tmp_path / "dump.jsonl").read_text().splitlines()) == 6
    assert listing(tmp_path) == ["dump.jsonl", "m.sqlite"]  # reading left no -wal/-shm
    both = jitrl("memory", "stats", "a.sqlite", "--memory", "m.sqlite", cwd=tmp_path, check=False)
    assert "give only --memory" in one_line_error(both)


def test_stats_never_prints_the_password(tmp_path: Path) -> None:
    url = f"postgresql://jitrl:{SECRET}@127.0.0.1:1/db?connect_timeout=2"
    proc = jitrl("memory", "stats", "--memory", url, cwd=tmp_path, check=False)
    one_line_error(proc)
    assert SECRET not in proc.stdout + proc.stderr


def test_stats_of_a_postgres_store_hides_the_password(tmp_path: Path, pg_url: str) -> None:
    from jitrl.memory import PostgresStore

    if "://postgres@" not in pg_url:
        pytest.skip("an external server: its URL is not the test server's")
    with PostgresStore(pg_url) as store:
        store.add_episode(episode("e0"))
    url = pg_url.replace("://postgres@", f"://postgres:{SECRET}@", 1)  # trust: not checked
    proc = jitrl("memory", "stats", "--memory", url, cwd=tmp_path)
    assert table_value(proc.stdout, "episodes") == "1"
    assert "store postgresql://postgres:***@127.0.0.1:" in proc.stdout
    assert SECRET not in proc.stdout + proc.stderr


def test_export_to_a_missing_folder(tmp_path: Path) -> None:
    make_store(tmp_path / "m.sqlite")
    args = ("memory", "export", "no/such/dump.jsonl", "--memory", "m.sqlite")
    line = one_line_error(jitrl(*args, cwd=tmp_path, check=False))
    assert "no/such" in line and "does not exist" in line
    assert listing(tmp_path) == ["m.sqlite"]


def test_import_prints_a_sentence(tmp_path: Path) -> None:
    make_store(tmp_path / "a.sqlite", episodes=2)
    jitrl("memory", "export", "dump.jsonl", "--memory", "a.sqlite", cwd=tmp_path)
    args = ("memory", "import", "dump.jsonl", "--memory", "b.sqlite")
    first = jitrl(*args, cwd=tmp_path).stdout.strip()
    assert first == "imported 2 episodes (4 experiences) into b.sqlite"
    again = jitrl(*args, cwd=tmp_path).stdout.strip()
    assert again == (
        "imported 0 episodes (0 experiences) into b.sqlite; skipped 2 episodes the store "
        "already held"
    )


def jsonl_line(step: int, action: str = "look", text: str = "room") -> str:
    return json.dumps(
        {"episode_id": "e1", "step": step, "state": {"text": text}, "action": action, "ret": 1.0}
    )


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([jsonl_line(0), jsonl_line(0), jsonl_line(7)], r"steps \[0, 0, 7\]"),
        ([jsonl_line(0), jsonl_line(2)], r"steps \[0, 2\]"),
        ([jsonl_line(0, action="")], "action must not be empty"),
        ([jsonl_line(0, text="   ")], "state.text must not be empty"),
    ],
)
def test_bad_import_creates_no_store(tmp_path: Path, lines: list[str], message: str) -> None:
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n")
    args = ("memory", "import", "in.jsonl", "--memory", "sub/new.sqlite")
    line = one_line_error(jitrl(*args, cwd=tmp_path, check=False))
    assert "in.jsonl" in line
    assert re.search(message, line), line
    assert listing(tmp_path) == ["in.jsonl"]


@pytest.mark.parametrize(("store", "message"), [("notes.txt", "not a SQLite"), (".", "directory")])
def test_import_into_a_bad_store(tmp_path: Path, store: str, message: str) -> None:
    (tmp_path / "in.jsonl").write_text(jsonl_line(0) + "\n")
    (tmp_path / "notes.txt").write_text("my notes\n")
    args = ("memory", "import", "in.jsonl", "--memory", store)
    assert message in one_line_error(jitrl(*args, cwd=tmp_path, check=False))
    assert (tmp_path / "notes.txt").read_text() == "my notes\n"


def test_migrate_from_a_missing_store_creates_nothing(tmp_path: Path) -> None:
    args = ("memory", "migrate", "nowhere.sqlite", "b.sqlite")
    assert "no store at nowhere.sqlite" in one_line_error(jitrl(*args, cwd=tmp_path, check=False))
    assert listing(tmp_path) == []


# --- backup ------------------------------------------------------------------------------------


def test_backup_keeps_the_episodes_still_in_the_wal(tmp_path: Path) -> None:
    kill_writer(tmp_path / "m.sqlite")
    shutil.copyfile(tmp_path / "m.sqlite", tmp_path / "plain-copy.sqlite")
    with SQLiteStore(tmp_path / "plain-copy.sqlite", read_only=True) as plain:
        assert len(plain.episode_ids()) < KILLED_EPISODES  # what copying the file loses
    out = jitrl("memory", "backup", "m.sqlite", "copy.sqlite", cwd=tmp_path).stdout
    assert f"backed up {KILLED_EPISODES} episodes ({3 * KILLED_EPISODES} experiences)" in out
    assert not list(tmp_path.glob("copy.sqlite-*")) and not list(tmp_path.glob(".copy*"))
    with SQLiteStore(tmp_path / "copy.sqlite", read_only=True) as copy:
        assert copy.episode_ids() == [f"e{index}" for index in range(KILLED_EPISODES)]


def test_backup_overwrites_only_with_force(tmp_path: Path) -> None:
    make_store(tmp_path / "a.sqlite", episodes=1)
    jitrl("memory", "backup", "a.sqlite", "b.sqlite", cwd=tmp_path)
    make_store(tmp_path / "c.sqlite", episodes=3)
    refused = jitrl("memory", "backup", "c.sqlite", "b.sqlite", cwd=tmp_path, check=False)
    assert "b.sqlite already exists (give --force" in one_line_error(refused)
    assert "1 episode " in jitrl("memory", "backup", "b.sqlite", "d.sqlite", cwd=tmp_path).stdout
    forced = jitrl("memory", "backup", "c.sqlite", "b.sqlite", "--force", cwd=tmp_path).stdout
    assert "backed up 3 episodes (6 experiences)" in forced
    (tmp_path / "notes.txt").write_text("my notes\n")
    foreign = jitrl(
        "memory", "backup", "c.sqlite", "notes.txt", "--force", cwd=tmp_path, check=False
    )
    assert "not a SQLite database" in one_line_error(foreign)
    assert (tmp_path / "notes.txt").read_text() == "my notes\n"
    url = f"postgresql://u:{SECRET}@127.0.0.1:1/db"
    remote = jitrl("memory", "backup", url, "e.sqlite", cwd=tmp_path, check=False)
    assert "jitrl memory migrate" in one_line_error(remote) and SECRET not in remote.stderr


# --- stores this user may not write (as nobody when the tests run as root) ---------------------


def test_reading_commands_work_in_a_read_only_folder(shared: Path) -> None:
    folder, out = read_only_folder(shared), writable_folder(shared)
    make_store(folder / "m.sqlite", episodes=2)
    lock(folder)
    before = listing(folder)
    stats = jitrl("memory", "stats", "--memory", "ro/m.sqlite", cwd=shared, unprivileged=True)
    assert table_value(stats.stdout, "episodes") == "2"
    args = ("memory", "export", "out/dump.jsonl", "--memory", "ro/m.sqlite")
    jitrl(*args, cwd=shared, unprivileged=True)
    assert len((out / "dump.jsonl").read_text().splitlines()) == 4
    assert listing(folder) == before == ["m.sqlite"]


def test_a_killed_writers_store_is_read_whole_in_a_read_only_folder(shared: Path) -> None:
    folder, out = read_only_folder(shared), writable_folder(shared)
    kill_writer(folder / "m.sqlite")
    lock(folder)
    before = listing(folder)
    args = ("memory", "backup", "ro/m.sqlite", "out/copy.sqlite")
    assert f"{KILLED_EPISODES} episodes" in jitrl(*args, cwd=shared, unprivileged=True).stdout
    with SQLiteStore(out / "copy.sqlite", read_only=True) as copy:
        assert len(copy.episode_ids()) == KILLED_EPISODES
    assert listing(folder) == before


def test_reading_another_users_store_leaves_no_files(shared: Path) -> None:
    folder = writable_folder(shared, "common")  # anyone may write the folder, not the file
    make_store(folder / "m.sqlite")
    (folder / "m.sqlite").chmod(0o444)
    jitrl("memory", "stats", "--memory", "common/m.sqlite", cwd=shared, unprivileged=True)
    assert listing(folder) == ["m.sqlite"]


@pytest.mark.parametrize(
    ("file_mode", "folder_mode", "message"),
    [(0o666, 0o555, "its folder"), (0o444, 0o777, "is read-only for this user")],
)
def test_a_store_that_cannot_be_written_fails_when_opened(
    shared: Path, file_mode: int, folder_mode: int, message: str
) -> None:
    folder = read_only_folder(shared)
    make_store(folder / "m.sqlite")
    (folder / "m.sqlite").chmod(file_mode)
    folder.chmod(folder_mode)
    before = listing(folder)
    opened = run(sys.executable, "-c", OPEN_FOR_WRITING, "ro/m.sqlite", cwd=shared,
                 unprivileged=True, check=False)  # fmt: skip
    assert opened.returncode == 3, opened.stdout + opened.stderr  # refused at open, not later
    assert "ro/m.sqlite" in opened.stdout and message in opened.stdout
    (shared / "in.jsonl").write_text(jsonl_line(0) + "\n")
    args = ("memory", "import", "in.jsonl", "--memory", "ro/m.sqlite")
    line = one_line_error(jitrl(*args, cwd=shared, unprivileged=True, check=False))
    assert "ro/m.sqlite" in line and message in line and "jitrl memory backup" in line
    assert listing(folder) == before
