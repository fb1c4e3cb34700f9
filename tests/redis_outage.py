"""``python -m tests.redis_outage N scrapy-args...``: scrapy whose Redis goes away.

Right after the worker records its Nth export, Redis is shut down (SHUTDOWN,
from a client of its own): at a set point of the crawl, not at a set time.
The test that runs it starts Redis again after a while.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any

from redis import Redis
from redis.exceptions import ConnectionError
from scrapy.cmdline import execute

from plt.distributed.state import RedisJobState


def shutdown_after(exports: int) -> None:
    mark_exported = RedisJobState.mark_exported
    done = 0

    def shutting_down(
        self: RedisJobState, item_id: int, items_offset: int, line: bytes = b""
    ) -> None:
        nonlocal done
        mark_exported(self, item_id, items_offset, line)
        done += 1
        if done == exports:
            # The server closes the connection as it goes.
            with contextlib.suppress(ConnectionError):
                Redis.from_url(self.redis_url).shutdown()

    RedisJobState.mark_exported = shutting_down  # type: ignore[method-assign]


def main(argv: list[str]) -> Any:
    shutdown_after(int(argv[1]))
    return execute(["scrapy", *argv[2:]])


if __name__ == "__main__":
    main(sys.argv)
