"""A throwaway PostgreSQL server for the tests, and an empty schema per test.

``postgres_server`` (session-scoped) runs ``initdb`` in a temporary folder and starts the server
on loopback on a free port, with its socket in that folder; it stops the server and removes the
folder at the end. PostgreSQL refuses to run as root, so as root (CI, this machine) the folder
is given to the ``postgres`` user and the server runs as that user (``runuser``). The binaries
are looked up in ``$JITRL_PG_BIN``, ``/usr/lib/postgresql/*/bin`` and ``PATH``; without them (or
without psycopg) the tests that use the fixture are skipped, saying why.

``JITRL_TEST_POSTGRES_URL=postgresql://...`` uses that server instead (it must allow CREATE
SCHEMA); nothing is started then.

``pg_url`` gives each test its own empty schema (``?options=-csearch_path%3D...``), so tests do
not see each other's tables.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

START_TIMEOUT_S = 60
SERVER_SETTINGS = ("-c", "max_connections=60", "-c", "shared_buffers=32MB")


def _bin_dir() -> Path | None:
    """Folder holding ``initdb`` and ``pg_ctl``, or ``None``."""
    candidates = [os.environ.get("JITRL_PG_BIN", "")]
    candidates += sorted(map(str, Path("/usr/lib/postgresql").glob("*/bin")), reverse=True)
    found = shutil.which("pg_ctl")
    candidates.append(str(Path(found).parent) if found else "")
    for folder in filter(None, candidates):
        if (Path(folder) / "initdb").is_file() and (Path(folder) / "pg_ctl").is_file():
            return Path(folder)
    return None


def _free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _run(command: list[str], as_user: list[str]) -> None:
    """Run a server tool (as ``postgres`` when we are root); fail the test run on error."""
    done = subprocess.run([*as_user, *command], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.fail(f"{command[0]} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


@dataclass
class PostgresServer:
    """A running server: ``url`` connects as superuser to database ``postgres``."""

    url: str
    _counter: Iterator[int] = field(default_factory=itertools.count)

    def fresh_url(self) -> str:
        """The URL of a new, empty schema (tables created through it land there)."""
        import psycopg

        name = f"t{os.getpid()}_{next(self._counter)}"
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {name}")
        separator = "&" if "?" in self.url else "?"
        return f"{self.url}{separator}options=-csearch_path%3D{name}"


def _start(bin_dir: Path, folder: Path, as_user: list[str]) -> int:
    """initdb and start a server in ``folder``; return its port."""
    data = folder / "data"
    _run([str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
          "-E", "UTF8", "--no-locale"], as_user)  # fmt: skip
    for _ in range(3):  # another process may grab the free port before the server does
        port = _free_port()
        options = " ".join(
            ["-p", str(port), "-k", str(folder), "-c", "listen_addresses=127.0.0.1",
             *SERVER_SETTINGS]
        )  # fmt: skip
        command = [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(folder / "server.log"),
                   "-w", "-t", str(START_TIMEOUT_S), "-o", options, "start"]  # fmt: skip
        done = subprocess.run([*as_user, *command], capture_output=True, text=True, check=False)
        if done.returncode == 0:
            return port
    log = (folder / "server.log").read_text(errors="replace")[-4000:]
    pytest.fail(f"PostgreSQL did not start:\n{done.stdout}\n{done.stderr}\n{log}")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server on loopback for the whole test session (see the module docstring)."""
    pytest.importorskip(
        "psycopg", reason="psycopg 3 is not installed (pip install jitrl[postgres])"
    )
    external = os.environ.get("JITRL_TEST_POSTGRES_URL")
    if external:
        yield PostgresServer(external)
        return
    bin_dir = _bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found: install postgresql "
                    "or set JITRL_PG_BIN or JITRL_TEST_POSTGRES_URL")  # fmt: skip
    as_user: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="jitrl-pg-"))
    if os.geteuid() == 0:  # the server refuses to run as root
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(folder)
            pytest.skip("running as root and there is no 'postgres' user to run the server")
        os.chown(folder, owner.pw_uid, owner.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    try:
        port = _start(bin_dir, folder, as_user)
        try:
            yield PostgresServer(f"postgresql://postgres@127.0.0.1:{port}/postgres")
        finally:
            stop = [str(bin_dir / "pg_ctl"), "-D", str(folder / "data"), "-m", "immediate", "stop"]
            subprocess.run([*as_user, *stop], capture_output=True, check=False)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def pg_url(postgres_server: PostgresServer) -> str:
    """A URL whose search_path is a new, empty schema on the test server."""
    return postgres_server.fresh_url()
