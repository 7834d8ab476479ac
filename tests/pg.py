"""A throwaway PostgreSQL server for tests, and a fresh database for each test.

`running_postgres()` initialises a cluster in a temporary directory and starts it on 127.0.0.1 at a free
port (its unix socket stays in that directory), tuned for tests (no fsync), and stops it with a fast
shutdown at the end, or when the test process dies. initdb refuses to run as root, so as root the server
runs as the `postgres` system user (or `nobody`). The programs come from scripts/postgres-for-tests.sh.
A server that cannot start raises `PostgresUnavailable` with the reason; the fixtures turn that into a
failure, never a skip.

Register the fixtures with `pytest_plugins = ("tests.pg",)` (or import them in conftest).
"""

from __future__ import annotations

import itertools
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

SUPERUSER = "soracord"
DEBIAN_BINDIRS = "/usr/lib/postgresql/*/bin"
SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
}
STARTUP_SECONDS = 60


class PostgresUnavailable(RuntimeError):
    """The test server could not be found or started; the message says why."""


@dataclass(frozen=True)
class PostgresServer:
    """A running test server; `password` is the superuser's (for tests of wrong-password handling)."""

    host: str
    port: int
    password: str
    _databases: Iterator[int]

    def url(self, database: str = "postgres", *, password: str | None = None) -> str:
        secret = self.password if password is None else password
        return f"postgresql://{SUPERUSER}:{secret}@{self.host}:{self.port}/{database}"

    async def create_database(self) -> str:
        """A new empty database (from template0, so tests never share state); returns its URL."""
        name = f"test_{next(self._databases)}"
        admin = await asyncpg.connect(self.url())
        try:
            await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        finally:
            await admin.close()
        return self.url(name)

    async def drop_database(self, url: str) -> None:
        admin = await asyncpg.connect(self.url())
        try:
            await admin.execute(f'DROP DATABASE "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
        finally:
            await admin.close()


def find_bindir() -> Path:
    """The directory holding initdb and postgres: the PATH's, else the newest of Debian's versioned ones."""
    on_path = shutil.which("initdb")
    candidates = [Path(on_path).resolve().parent] if on_path else []
    candidates += sorted(Path("/").glob(DEBIAN_BINDIRS.lstrip("/")), key=_version, reverse=True)
    for bindir in candidates:
        if (bindir / "initdb").exists() and (bindir / "postgres").exists():
            return bindir
    raise PostgresUnavailable(
        "PostgreSQL's initdb and postgres are not installed: run scripts/postgres-for-tests.sh"
    )


def _version(bindir: Path) -> list[int]:
    return [int(part) for part in bindir.parent.name.split(".") if part.isdigit()]


def _server_user() -> pwd.struct_passwd | None:
    """Whom the server runs as: None for ourselves; as root (which initdb refuses) a system user."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise PostgresUnavailable("running as root, and neither a postgres nor a nobody user exists")


def _as(user: pwd.struct_passwd | None) -> list[str]:
    """The prefix that runs a program as `user` and ends it with SIGINT (for the server: a fast
    shutdown) if this process dies, so a killed test run leaves no server behind."""
    prefix = ["setpriv", "--pdeathsig=INT"]
    if user:
        prefix += [f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups"]
    return [*prefix, "--"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_ready(server: subprocess.Popen[bytes], data: Path, log: Path) -> None:
    """Until the server says it accepts connections (in postmaster.pid, as pg_ctl reads it)."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise PostgresUnavailable(f"postgres exited with {server.returncode}; its log:\n{_tail(log)}")
        try:
            status = (data / "postmaster.pid").read_text().splitlines()[7:8]
        except FileNotFoundError:
            status = []
        if status and status[0].strip() == "ready":
            return
        time.sleep(0.02)
    raise PostgresUnavailable(f"postgres did not start within {STARTUP_SECONDS} s; its log:\n{_tail(log)}")


def _tail(log: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(no log: {exc})"


@contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """Start a throwaway server; stop it (fast shutdown) and delete its files on exit."""
    bindir = find_bindir()
    user = _server_user()
    as_user = _as(user)
    root = Path(tempfile.mkdtemp(prefix="soracord-pg-"))
    try:
        password = secrets.token_urlsafe(16)
        password_file = root / "password"
        password_file.write_text(password)
        if user:
            for path in (root, password_file):
                os.chown(path, user.pw_uid, user.pw_gid)
        data = root / "data"
        initdb = subprocess.run(
            [
                *as_user,
                str(bindir / "initdb"),
                f"--pgdata={data}",
                f"--username={SUPERUSER}",
                f"--pwfile={password_file}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
        )
        password_file.unlink()
        if initdb.returncode != 0:
            raise PostgresUnavailable(f"initdb failed: {(initdb.stdout + initdb.stderr).strip()}")
        port = _free_port()
        settings = SETTINGS | {"port": str(port), "unix_socket_directories": f"'{root}'"}
        with (data / "postgresql.conf").open("a") as conf:
            conf.writelines(f"{name} = {value}\n" for name, value in settings.items())
        log = root / "server.log"
        with log.open("wb") as output:
            server = subprocess.Popen(
                [*as_user, str(bindir / "postgres"), "-D", str(data)], cwd=root, stdout=output, stderr=output
            )
        try:
            _wait_until_ready(server, data, log)
            yield PostgresServer("127.0.0.1", port, password, itertools.count(1))
        finally:
            server.send_signal(signal.SIGINT)  # fast shutdown: disconnect clients, no waiting
            server.wait()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One server for the whole test session."""
    try:
        with running_postgres() as server:
            yield server
    except PostgresUnavailable as exc:
        pytest.fail(f"PostgreSQL test server unavailable: {exc}", pytrace=False)


@pytest.fixture
async def postgres_url(postgres_server: PostgresServer) -> AsyncIterator[str]:
    """The URL of a fresh, empty database of its own for this test."""
    url = await postgres_server.create_database()
    yield url
    await postgres_server.drop_database(url)
