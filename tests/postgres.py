"""A private PostgreSQL server per test: initdb'd in a fresh directory, on a free loopback port,
stopped by itself. Needs only Debian's `postgresql` package (scripts/install.sh installs it); it
never uses the package's default cluster, which a container without systemd may not even have.
The `postgres` fixture reaches every test through conftest's pytest_plugins:

    def test_something(postgres):
        engine = sqlalchemy.create_engine(postgres.url)
        postgres.stop()   # "database unavailable"
        postgres.start()  # back, same port, same data
"""

import os
import shutil
import signal
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import psycopg2
import pytest

from voicebot.ports import free_port

START_TIMEOUT = 30.0


def server_binaries() -> Path:
    """The newest Debian PostgreSQL's bin directory."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                   key=lambda path: int(path.parts[-3]) if path.parts[-3].isdigit() else 0)
    if not found:
        raise RuntimeError("no /usr/lib/postgresql/*/bin/initdb: install the Debian package "
                           "'postgresql' (scripts/install.sh does)")
    return found[-1].parent


class PrivatePostgres:
    """One server: `.url` (SQLAlchemy URL of its `voicebot` database), `.port`, `.pid` (the
    postmaster's, while running), `.stop()` and `.start()` (same port and data)."""

    def __init__(self, tmp_path: Path):
        self.bin = server_binaries()
        self.log = tmp_path / "postgres.log"
        # initdb and postgres refuse to run as root (CI is root): run them as Debian's `postgres`
        # user, in a directory it can reach (pytest's tmp_path is inside a 0700 root directory).
        self.user = "postgres" if os.geteuid() == 0 else None
        if self.user:
            self.root = Path(tempfile.mkdtemp(prefix="voicebot-pg-"))
            shutil.chown(self.root, "postgres", "postgres")
        else:
            self.root = tmp_path / "postgres"
            self.root.mkdir()
        self.data = self.root / "data"
        self.port = free_port()
        self.url = f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/voicebot"
        self.process: Optional[subprocess.Popen] = None
        with open(self.log, "ab") as log:
            initdb = self._run([self.bin / "initdb", "-D", self.data, "-U", "postgres", "--auth=trust",
                                "--encoding=UTF8", "--locale=C", "--no-sync"], stdout=log, stderr=log)
        if initdb.wait() != 0:
            self.remove_own_directory()
            raise RuntimeError(f"initdb failed; its output in {self.log}:\n{self.log.read_text()}")

    def _run(self, command, **kwargs):
        # Popen(user=...) rather than `runuser`: no PAM and no process in between, so `.pid` is the
        # postmaster itself and we reap it (this container's PID 1 may not reap orphans).
        user = dict(user=self.user, group=self.user, extra_groups=[]) if self.user else {}
        return subprocess.Popen([str(part) for part in command], cwd=self.root, stdin=subprocess.DEVNULL,
                                **user, **kwargs)

    @property
    def pid(self) -> Optional[int]:
        return self.process.pid if self.process and self.process.poll() is None else None

    def start(self) -> None:
        assert self.pid is None, "already running"
        with open(self.log, "ab") as log:
            self.process = self._run(
                [self.bin / "postgres", "-D", self.data, "-p", self.port, "-k", self.root,
                 "-c", "listen_addresses=127.0.0.1",
                 # Throwaway data: no need to survive a machine crash, so skip the disk syncs.
                 "-c", "fsync=off", "-c", "full_page_writes=off", "-c", "synchronous_commit=off"],
                stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                if self._serves_our_data():
                    return
                problem = "another server has the port"  # ours will exit: cannot bind
            except psycopg2.OperationalError as error:
                problem = str(error).strip()
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"PostgreSQL did not start on port {self.port} ({problem}); "
                                   f"its log {self.log}:\n{self.log.read_text()}")
            time.sleep(0.05)

    def _serves_our_data(self) -> bool:
        # Whoever answers on the port may not be ours (a server that took the port first).
        connection = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres",
                                      dbname="postgres", connect_timeout=2)
        try:
            cursor = connection.cursor()
            cursor.execute("SHOW data_directory")
            return Path(cursor.fetchone()[0]) == self.data
        finally:
            connection.close()

    def stop(self) -> None:
        """Fast shutdown (SIGINT, what `pg_ctl stop -m fast` sends): clients are disconnected."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def remove_own_directory(self) -> None:
        if self.user:  # the directory outside tmp_path (pytest removes tmp_path itself)
            shutil.rmtree(self.root, ignore_errors=True)

    def create_database(self, name: str) -> None:
        connection = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres")
        connection.autocommit = True  # CREATE DATABASE cannot run in a transaction
        try:
            connection.cursor().execute(f'CREATE DATABASE "{name}"')
        finally:
            connection.close()


@contextmanager
def private_postgres(tmp_path: Path) -> Iterator[PrivatePostgres]:
    """A running PrivatePostgres with an empty `voicebot` database (its URL is `.url`); stopped
    on exit even if the test failed."""
    server = PrivatePostgres(tmp_path)
    try:
        server.start()
        server.create_database("voicebot")
        yield server
    finally:
        server.stop()
        server.remove_own_directory()


@pytest.fixture
def postgres(tmp_path) -> Iterator[PrivatePostgres]:
    with private_postgres(tmp_path) as server:
        yield server
