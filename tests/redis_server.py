"""A real redis-server for the tests: one per session, loopback only, no persistence
(and one with persistence, for a test that restarts it).

Loaded as a plugin (``pytest_plugins = ("tests.redis_server",)``) so that the
session fixture is shared by every module that uses it. Without redis-server
the tests that need it are skipped, except in CI (CI=true), where they fail.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest
from redis import Redis

from benchmarks.redisproc import RedisProcess

REDIS_SERVER = "redis-server"


class RedisServer(RedisProcess):
    """The benchmarks' redis-server (loopback only), with a client for the tests."""

    def client(self) -> Redis:
        return Redis.from_url(self.url)


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
