"""Real server processes for tests that need them: crash, concurrency, two replicas.

``Server`` runs ``stories serve`` (the production entry point: migrate, then uvicorn)
on a free loopback port against a given ``STORIES_DATABASE_URL``, waits until it
answers ``/readyz``, and stops it with SIGTERM or kills it with SIGKILL. Only
loopback addresses are ever bound or contacted, every wait is bounded, and only the
process this helper started is ever signalled (by its pid).
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import POSTGRES_URL, _admin

LOOPBACK = "127.0.0.1"
START_TIMEOUT = 60.0  # seconds for a cold start: imports, migration, cache rebuild
STOP_TIMEOUT = 20.0


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def serve_command(host: str, port: int) -> list[str]:
    """``stories serve`` from the running interpreter's environment."""
    script = Path(sys.executable).with_name("stories")
    if not script.exists():
        found = shutil.which("stories")
        if found is None:
            raise RuntimeError("the `stories` console script is not installed: run `pip install -e .`")
        script = Path(found)
    return [str(script), "serve", "--host", host, "--port", str(port)]


def server_environment(database_url: str, **settings: str) -> dict[str, str]:
    """The parent's environment without any ``STORIES_*`` variable, plus these settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STORIES_")}
    env["STORIES_DATABASE_URL"] = database_url
    env.setdefault("STORIES_LOG_LEVEL", "warning")
    env.update({f"STORIES_{k.upper()}": str(v) for k, v in settings.items()})
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Server:
    """One ``stories serve`` process on ``port``, reached at 127.0.0.1; restartable on the same port."""

    def __init__(
        self, database_url: str, log_path: Path, *, port: int | None = None, host: str = LOOPBACK, **settings: str
    ):
        self.database_url = database_url
        self.log_path = log_path
        self.host = host  # the bind address; requests always go to 127.0.0.1
        self.port = port or free_port()
        self.env = server_environment(database_url, **settings)
        self.process: subprocess.Popen | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self, timeout: float = START_TIMEOUT) -> Server:
        """Start the process and return once ``/readyz`` answers 200."""
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError(f"server on port {self.port} is already running (pid {self.process.pid})")
        with self.log_path.open("ab") as log:
            log.write(f"\n--- start {self.starts + 1} ---\n".encode())
            self.process = subprocess.Popen(
                serve_command(self.host, self.port),
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # a signal to the test runner's group never reaches it
            )
        self.starts += 1
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode} while starting:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"server not ready within {timeout}s:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown hook, no flush, no goodbye."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=STOP_TIMEOUT)

    def stop(self) -> None:
        """SIGTERM and wait for a graceful exit; SIGKILL if it does not come."""
        if self.process is None or self.process.poll() is not None:
            return
        os.kill(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *_exc) -> None:
        self.stop()


@contextmanager
def fresh_database(kind: str, directory: Path) -> Iterator[str]:
    """A URL to an empty database: a SQLite file in ``directory``, or a new PostgreSQL
    schema on the test server (dropped afterwards), as ``tests/conftest.py`` makes them."""
    if kind == "sqlite":
        yield f"sqlite:///{directory / 'stories.db'}"
        return
    if os.environ.get("STORIES_TEST_SKIP_POSTGRES") == "1":
        pytest.skip("STORIES_TEST_SKIP_POSTGRES=1: PostgreSQL tests skipped on purpose")
    schema = f"srv_{os.getpid()}_{next(_SCHEMAS)}"
    try:
        _admin(f"CREATE SCHEMA {schema}")
    except Exception as err:  # noqa: BLE001 - any failure to connect must be reported
        pytest.fail(f"PostgreSQL at {POSTGRES_URL} is unreachable ({type(err).__name__}: {err})", pytrace=False)
    separator = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    finally:
        _admin(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


_SCHEMAS = itertools.count()
