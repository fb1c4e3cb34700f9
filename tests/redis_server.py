"""A real redis-server for the tests: one per session, loopback only, no persistence
(and one with persistence, for a test that restarts it).

Loaded as a plugin (``pytest_plugins = ("tests.redis_server",)``) so that the
session fixture is shared by every module that uses it. Without redis-server
the tests that need it are skipped, except in CI (CI=true), where they fail.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.helpers import terminate

REDIS_SERVER = "redis-server"
STARTUP_TIMEOUT = 10.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    def __init__(self, workdir: Path, *, persistent: bool = False) -> None:
        self.workdir = workdir
        self.persistent = persistent
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> Redis:
        return Redis.from_url(self.url)

    def start(self) -> RedisServer:
        for _ in range(3):  # another process may take the free port first
            self.port = free_port()
            if self._launch():
                return self
            self.stop()
        raise RuntimeError(f"redis-server did not start; see the logs in {self.workdir}")

    def restart(self) -> None:
        """Start it again on the same port, after it stopped (its data back from the AOF)."""
        if not self._launch():
            raise RuntimeError(f"redis-server did not restart; see the logs in {self.workdir}")

    def _launch(self) -> bool:
        log = (self.workdir / f"redis-{self.port}.log").open("ab")
        argv = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1"]
        argv += ["--save", "", "--dir", str(self.workdir)]
        if self.persistent:
            argv += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            argv += ["--appendonly", "no"]
        self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        return self._wait_ready()

    def _wait_ready(self) -> bool:
        assert self.proc is not None
        deadline = time.monotonic() + STARTUP_TIMEOUT
        client = self.client()
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                return bool(client.ping())
            except RedisConnectionError:
                time.sleep(0.05)
        return False

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        terminate(proc, timeout=10)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    if shutil.which(REDIS_SERVER) is None:
        reason = f"{REDIS_SERVER} is not installed (Debian: apt-get install -y redis-server)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}; CI must install it", pytrace=False)
        pytest.skip(reason)
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def persistent_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server of its own with an append-only file: it can be stopped and restarted."""
    if shutil.which(REDIS_SERVER) is None:
        pytest.skip(f"{REDIS_SERVER} is not installed")
    server = RedisServer(tmp_path_factory.mktemp("redis-aof"), persistent=True).start()
    try:
        yield server
    finally:
        server.stop()
