"""A throwaway PostgreSQL server for tests, and a fresh database for each test.

`running_postgres()` initialises a cluster in a temporary directory and starts it on 127.0.0.1 at a free
port (its unix socket stays in that directory), tuned for tests (no fsync), and stops it with a fast
shutdown at the end. initdb refuses to run as root, so as root the server runs as the `postgres` system
user (or `nobody`). The programs come from scripts/postgres-for-tests.sh. A server that cannot start
raises `PostgresUnavailable` with the reason; the fixtures turn that into a failure, never a skip.

Register the fixtures with `pytest_plugins = ("tests.pg",)` (or import them in conftest).
"""

from __future__ import annotations

import itertools
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
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
    """The directory holding initdb and pg_ctl: the PATH's, else the newest of Debian's versioned ones."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).resolve().parent
    versions = sorted(
        Path("/").glob(DEBIAN_BINDIRS.lstrip("/")), key=lambda path: int(path.parent.name), reverse=True
    )
    for bindir in versions:
        if (bindir / "initdb").exists() and (bindir / "pg_ctl").exists():
            return bindir
    raise PostgresUnavailable(
        "PostgreSQL's initdb and pg_ctl are not installed: run scripts/postgres-for-tests.sh"
    )


def _server_user() -> pwd.struct_passwd | None:
    """Whom to run the server as: None for the current user; a system user when we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise PostgresUnavailable("running as root, and neither a postgres nor a nobody user exists")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _give(path: Path, user: pwd.struct_passwd | None) -> None:
    if user:
        os.chown(path, user.pw_uid, user.pw_gid)


def _run(command: list[str], user: pwd.struct_passwd | None, cwd: Path) -> None:
    prefix = ["runuser", "-u", user.pw_name, "--"] if user else []
    done = subprocess.run(prefix + command, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise PostgresUnavailable(
            f"{Path(command[0]).name} failed (exit {done.returncode}): {(done.stdout + done.stderr).strip()}"
        )


@contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """Start a throwaway server; stop it and delete its files on exit."""
    bindir = find_bindir()
    user = _server_user()
    root = Path(tempfile.mkdtemp(prefix="soracord-pg-"))
    try:
        _give(root, user)
        password = secrets.token_urlsafe(16)
        password_file = root / "password"
        password_file.write_text(password)
        _give(password_file, user)
        data = root / "data"
        _run(
            [
                str(bindir / "initdb"),
                f"--pgdata={data}",
                f"--username={SUPERUSER}",
                f"--pwfile={password_file}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            user,
            root,
        )
        password_file.unlink()
        port = _free_port()
        settings = SETTINGS | {"port": str(port), "unix_socket_directories": f"'{root}'"}
        with (data / "postgresql.conf").open("a") as conf:
            conf.writelines(f"{name} = {value}\n" for name, value in settings.items())
        log = root / "server.log"
        try:
            _run([str(bindir / "pg_ctl"), f"--pgdata={data}", f"--log={log}", "--wait", "start"], user, root)
        except PostgresUnavailable as exc:
            raise PostgresUnavailable(f"{exc}\nserver log:\n{_tail(log)}") from None
        try:
            yield PostgresServer("127.0.0.1", port, password, itertools.count(1))
        finally:
            _run([str(bindir / "pg_ctl"), f"--pgdata={data}", "--mode=fast", "--wait", "stop"], user, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _tail(log: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(no log: {exc})"


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
