"""The worker's Redis connection: an outage is ridden out, then the worker stops.

redis-py retries a command that meets a connection error (Redis restarting,
a network blip) with exponential backoff, here for up to
``PLT_REDIS_OUTAGE_SECONDS`` (60 by default): within that nothing fails and
one warning says Redis is unreachable, one line says it is back. Past it, the
error reaches the job store, which stops the worker cleanly (exit status 2):
its leases are left to expire, so another worker, or this one started again,
fetches them.

The retries sleep in the crawl's thread: while Redis is away, the worker
waits for it, as it would for any write of its job state.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from redis import Redis
from redis.backoff import ExponentialBackoff
from redis.exceptions import BusyLoadingError, ConnectionError, RedisError, TimeoutError
from redis.retry import Retry

from plt.distributed.batch import BatchingRedis
from plt.job.jobdir import JobStateError

logger = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_OUTAGE_SECONDS = 60.0
# A dead host must not hold a command for the kernel's TCP timeout.
CONNECT_TIMEOUT = 5.0
SOCKET_TIMEOUT = 30.0
_RETRYABLE = (ConnectionError, TimeoutError, BusyLoadingError, OSError)


class OutageRetry(Retry):
    """redis-py's Retry, bounded by time rather than by a count of attempts."""

    def __init__(self, outage_seconds: float) -> None:
        super().__init__(ExponentialBackoff(cap=1.0, base=0.05), -1, _RETRYABLE)
        self.outage_seconds = outage_seconds
        self.down_since: float | None = None

    def call_with_retry(
        self,
        do: Callable[[], T],
        fail: Callable[..., Any],
        is_retryable: Callable[[Exception], bool] | None = None,
        with_failure_count: bool = False,
    ) -> T:
        self._backoff.reset()
        failures = 0
        while True:
            try:
                result = do()
            except _RETRYABLE as error:
                if is_retryable and not is_retryable(error):
                    raise
                failures += 1
                fail(error, failures) if with_failure_count else fail(error)
                now = time.monotonic()
                if self.down_since is None:
                    self.down_since = now
                    logger.warning(
                        "Redis is unreachable (%s); waiting for it for up to %.0f s "
                        "(PLT_REDIS_OUTAGE_SECONDS)",
                        error,
                        self.outage_seconds,
                    )
                if now - self.down_since >= self.outage_seconds:
                    raise
                time.sleep(self._backoff.compute(failures))
            else:
                if self.down_since is not None:
                    logger.warning("Redis is back after %.1f s", time.monotonic() - self.down_since)
                    self.down_since = None
                return result


def redis_client(url: str, outage_seconds: float = DEFAULT_OUTAGE_SECONDS) -> BatchingRedis:
    """A client for REDIS_URL whose commands ride out an outage of ``outage_seconds``
    and carry the worker's waiting steps (plt.distributed.batch)."""
    return BatchingRedis.from_url(
        url,
        retry=OutageRetry(outage_seconds),
        socket_connect_timeout=CONNECT_TIMEOUT,
        socket_timeout=SOCKET_TIMEOUT,
    )


def reachable(url: str) -> str | None:
    """None when Redis answers at once, else why not (checked before a worker starts)."""
    client = Redis.from_url(url, socket_connect_timeout=CONNECT_TIMEOUT, socket_timeout=5.0)
    try:
        client.ping()
    except RedisError as exc:
        return str(exc)
    finally:
        client.close()
    return None


def outage_error(outage_seconds: float, error: Exception) -> JobStateError:
    """Redis stayed away past PLT_REDIS_OUTAGE_SECONDS: the worker stops (exit 2)."""
    return JobStateError(
        f"Redis at REDIS_URL failed for more than {outage_seconds:.0f} s "
        f"(PLT_REDIS_OUTAGE_SECONDS): {error}. The worker stops; its leases expire and "
        f"go back to the queue. Start it again once Redis is back."
    )


def outage_guard(default: Any) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """For a method of the Redis job store: once Redis has been away for longer
    than its bound (or the store failed for another reason), the store fails,
    the worker stops, and ``default`` is returned instead of a traceback."""

    def decorate(method: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(method)
        def guarded(self: Any, *args: Any, **kwargs: Any) -> T:
            if self.write_error is not None:
                return default  # stopping: Redis is not touched again
            try:
                return method(self, *args, **kwargs)
            except RedisError as exc:
                self.fail(outage_error(self.outage_seconds, exc))
                return default

        return guarded

    return decorate
