"""Honour ``Retry-After`` on 429 and 503 answers, without blocking.

Scrapy 2.19's RetryMiddleware retries a 429 or 503 at once and ignores
``Retry-After``. Seen here first (order 560, above RetryMiddleware's 550), an
answer with a delay of at most ``PLT_RETRY_AFTER_MAX`` seconds is handed on
only once the delay has passed, so its retry is sent no sooner than asked;
the wait is asynchronous, and other requests go on meanwhile. A longer delay
is not waited for in this run: the request is not retried now, and the ledger
keeps it for the next run.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from scrapy.exceptions import NotConfigured

from plt.job.policy import retry_after_seconds

if TYPE_CHECKING:
    from scrapy import Request, Spider
    from scrapy.crawler import Crawler
    from scrapy.http import Response

logger = logging.getLogger(__name__)

STATUSES = frozenset({429, 503})
DEFAULT_MAX = 60.0


class RetryAfterMiddleware:
    def __init__(self, crawler: Crawler) -> None:
        self.max_delay = crawler.settings.getfloat("PLT_RETRY_AFTER_MAX", DEFAULT_MAX)
        if self.max_delay <= 0 or not crawler.settings.getbool("RETRY_ENABLED"):
            raise NotConfigured
        self.crawler = crawler
        self.stats = crawler.stats

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RetryAfterMiddleware:
        return cls(crawler)

    async def process_response(
        self, request: Request, response: Response, spider: Spider | None = None
    ) -> Response:
        if response.status not in STATUSES or request.meta.get("dont_retry"):
            return response
        delay = retry_after_seconds(response.headers.get(b"Retry-After"))
        if delay is None:
            return response
        self.stats.inc_value("plt/retry_after/count")
        self.stats.max_value("plt/retry_after/max_seconds", delay)
        if delay > self.max_delay:
            self.stats.inc_value("plt/retry_after/too_long")
            logger.info(
                "%s: Retry-After %.0f s is more than PLT_RETRY_AFTER_MAX (%.0f s); "
                "not retried in this run",
                request.url,
                delay,
                self.max_delay,
            )
            request.meta["dont_retry"] = True
            return response
        await asyncio.sleep(delay)
        return response
