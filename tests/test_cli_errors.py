"""Every bad input of ``jitrl run`` gets one line, ``error: <what> (<how to fix>)``, exit 2, no
traceback, and leaves the files it names untouched (issue 13)."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from jitrl.memory import SQLiteStore

pytestmark = pytest.mark.slow

CASES = [
    ("--env jericho:/nonexistent/x.z5", "game file not found: /nonexistent/x.z5 (check the"),
    ("--env jericho:/etc/passwd", "is not a game Jericho supports"),
    ("--env jericho:/etc", "/etc is a folder, not a game file"),
    ("--env nonsense", "unknown environment spec 'nonsense'; valid forms"),
    ("--env textworld:abc", "seed must be an int >= 0"),
    ("--env textworld:-1", "seed must be an int >= 0"),
    ("--env twx:pong", "unknown TextWorldExpress game 'pong'"),
    ("--beta 0", "beta must be positive and finite (set by --beta)"),
    ("--beta -1", "beta must be positive and finite (set by --beta)"),
    ("--beta nan", "beta must be positive and finite (set by --beta)"),
    ("--beta inf", "beta must be positive and finite (set by --beta)"),
    ("--beta x", "--beta: expected a number, got 'x'"),
    ("--k 0", "k must be >= 1, got 0 (set by --k)"),
    ("--gamma 2", "gamma must be in [0, 1]"),
    ("--alpha nan", "alpha must be >= 0 (set by --alpha)"),
    ("--selection best", "Invalid value for '--selection'"),
    ("--model nope", "unknown model spec 'nope'; expected one of"),
    ("--model llamacpp:/nope.gguf", "/nope.gguf"),
    ("--memory random.bin", "random.bin is not a SQLite database"),
    ("--memory truncated.sqlite", "truncated.sqlite is not a SQLite database"),
    ("--memory other.sqlite", "other.sqlite is a SQLite database but not a jitrl store"),
    ("--memory damaged.sqlite", "malformed (the file is damaged: restore a copy made with"),
    ("--memory adir", "adir is a directory"),
    ("--memory sqlite://", "expected sqlite:///path"),
    ("--memory ftp://x/y", "unsupported store URL scheme 'ftp'"),
    ("--memory postgresql://u:secret@127.0.0.1:1/db", "cannot connect to PostgreSQL"),
    ("--out afile", "--out afile is a file, not a folder"),
    ("--log-level bogus", "--log-level 'bogus' is not a level"),
    ("--agent oracle", "unknown agent 'oracle'; choose from"),
    ("--episodes 0", "episodes must be >= 1"),
    ("--config missing.toml", "config file not found: missing.toml"),
]


def _digest(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir() if p.is_file()
    }


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("errors")
    (folder / "random.bin").write_bytes(os.urandom(3000))
    (folder / "truncated.sqlite").write_bytes(b"SQLite format 3\x00garbage")
    conn = sqlite3.connect(folder / "other.sqlite")
    conn.execute("CREATE TABLE users (id INTEGER)")
    conn.commit()
    conn.close()
    with SQLiteStore(folder / "whole.sqlite"):
        pass  # a real store, then only its first half: the file of a disk that filled up
    whole = (folder / "whole.sqlite").read_bytes()
    (folder / "damaged.sqlite").write_bytes(whole[: len(whole) // 2])
    (folder / "whole.sqlite").unlink()
    (folder / "adir").mkdir()
    (folder / "afile").write_text("notes")
    return folder


@pytest.mark.parametrize(("args", "message"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_gives_one_clear_line(workdir: Path, args: str, message: str) -> None:
    before = _digest(workdir)
    cmd = [sys.executable, "-m", "jitrl", "run", "--model", "scripted", "--episodes", "1"]
    cmd += ["--max-steps", "2", *args.split()]
    env = {**os.environ, "COLUMNS": "400"}
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=300, env=env)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert lines and lines[-1].startswith("error: "), proc.stderr
    assert message in " ".join(lines), proc.stderr
    assert " ".join(lines).count("(check the path") <= 1, proc.stderr  # one hint, not two
    assert "secret" not in proc.stderr + proc.stdout
    assert _digest(workdir) == before  # nothing created, nothing changed
    assert not (workdir / "runs").exists() and not (workdir / "jitrl-memory.sqlite").exists()


def test_debug_adds_the_traceback(workdir: Path) -> None:
    cmd = [sys.executable, "-m", "jitrl", "run", "--env", "jericho:/etc/passwd", "--debug"]
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: ")


def test_a_second_run_with_another_agent_is_refused(tmp_path: Path) -> None:
    base = [sys.executable, "-m", "jitrl", "run", "--model", "scripted", "--episodes", "1"]
    base += ["--max-steps", "2"]
    first = subprocess.run(base, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    other = subprocess.run(
        [*base, "--agent", "static"], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert other.returncode == 2 and "holds another run (agent" in other.stderr
    lines = (tmp_path / "runs" / "latest" / "episodes.jsonl").read_text().splitlines()
    assert len(lines) == 1  # the folder kept its one experiment


def test_a_run_continued_without_the_view_key_is_refused(tmp_path: Path) -> None:
    base = [sys.executable, "-m", "jitrl", "run", "--model", "scripted", "--episodes", "1"]
    base += ["--max-steps", "2", "--env", "textworld-simple:1"]
    first = subprocess.run(base, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr
    decisions = (tmp_path / "runs" / "latest" / "decisions.jsonl").read_text().splitlines()
    assert '"key": "view:' in decisions[0]  # states carry their view by default
    other = subprocess.run(
        [*base, "--episodes", "2", "--no-view-key"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert other.returncode == 2 and "holds another run (view_key" in other.stderr
