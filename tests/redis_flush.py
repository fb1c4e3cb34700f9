"""``python -m tests.redis_flush N scrapy-args...``: scrapy whose crawl vanishes from Redis.

Right after the worker records its Nth export, every key of its crawl is
deleted, as a Redis restarted without persistence, an eviction, a FLUSHALL or
another worker's reset would leave it: at a set point, not at a set time.
"""

from __future__ import annotations

import sys
from typing import Any

from scrapy.cmdline import execute

from plt.distributed.state import RedisJobState


def flush_after(exports: int) -> None:
    mark_exported = RedisJobState.mark_exported
    done = 0

    def flushing(
        self: RedisJobState, product_id: int, items_offset: int, line: bytes = b""
    ) -> None:
        nonlocal done
        mark_exported(self, product_id, items_offset, line)
        done += 1
        if done == exports:
            self.store.reset()

    RedisJobState.mark_exported = flushing  # type: ignore[method-assign]


def main(argv: list[str]) -> Any:
    flush_after(int(argv[1]))
    return execute(["scrapy", *argv[2:]])


if __name__ == "__main__":
    main(sys.argv)
