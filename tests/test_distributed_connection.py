"""The worker's Redis connection rides out an outage, within its bound."""

from __future__ import annotations

import logging

import pytest
from redis.exceptions import ConnectionError, ResponseError

from plt.distributed import connection
from plt.distributed.connection import OutageRetry, redis_client

pytest_plugins = ("tests.redis_server",)


class Clock:
    """time.monotonic and time.sleep for the retry, without waiting."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = 1000.0
        monkeypatch.setattr(connection.time, "monotonic", lambda: self.now)
        monkeypatch.setattr(connection.time, "sleep", self.sleep)

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def failing(times: int):
    calls = {"n": 0}

    def do() -> str:
        calls["n"] += 1
        if calls["n"] <= times:
            raise ConnectionError("Connection refused")
        return "PONG"

    return do, calls


def test_an_outage_within_the_bound_is_waited_for_and_logged_twice(monkeypatch, caplog):
    clock = Clock(monkeypatch)
    retry = OutageRetry(60)
    do, calls = failing(20)
    with caplog.at_level(logging.WARNING, logger="plt.distributed.connection"):
        assert retry.call_with_retry(do, lambda error: None) == "PONG"
    assert calls["n"] == 21
    assert 5 < clock.now - 1000 < 60  # backoff grows to its 1 s cap
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert messages[0].startswith("Redis is unreachable (Connection refused)")
    assert messages[1].startswith("Redis is back after")


def test_past_the_bound_the_error_reaches_the_caller_and_later_calls_fail_at_once(monkeypatch):
    clock = Clock(monkeypatch)
    retry = OutageRetry(10)
    do, _ = failing(1000)
    with pytest.raises(ConnectionError):
        retry.call_with_retry(do, lambda error: None)
    assert 10 <= clock.now - 1000 < 12
    do, calls = failing(1000)
    with pytest.raises(ConnectionError):
        retry.call_with_retry(do, lambda error: None)
    assert calls["n"] == 1  # still down: no second wait


def test_other_errors_are_not_retried(monkeypatch):
    Clock(monkeypatch)

    def do() -> None:
        raise ResponseError("WRONGTYPE")

    with pytest.raises(ResponseError):
        OutageRetry(60).call_with_retry(do, lambda error: None)


def test_the_client_talks_to_redis(redis_server):
    client = redis_client(redis_server.url, 5)
    assert client.ping()
    assert isinstance(client.get_retry(), OutageRetry)
