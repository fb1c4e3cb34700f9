"""Settle a request's lease once everything its callback produced is durable.

The scraper does not hand a callback's requests to the scheduler as they are
yielded: it buffers the output in a queue that its workers drain later, so
the output can be exhausted while some requests are still in memory only.
This middleware, the outermost, therefore hands each request to the engine
itself (what the scraper would do with it), which stores it in the job state
at once; when the output is exhausted, all of it is durable and the lease is
settled. Responses that yielded an item are settled by the export instead
(the item is durable only once its line is in the items file), through the
item id stored with the lease.

A callback that raises is a failure of its request, like a failed download:
the ledger keeps it for the next run, counted as an attempt, and gives it up
after ``PLT_JOB_MAX_ATTEMPTS``. What it yielded before raising is stored.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from scrapy import Request
from scrapy.exceptions import CloseSpider

from plt.job.ledger import Ledger
from plt.job.scheduler import KEEP_LEASE_KEY, LEASE_KEY

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler
    from scrapy.http import Response

logger = logging.getLogger(__name__)


class LeaseMiddleware:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.ledger = Ledger.for_crawler(crawler)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> LeaseMiddleware:
        return cls(crawler)

    async def process_spider_output(
        self, response: Response, result: AsyncIterator[Any], spider: Spider | None = None
    ) -> AsyncIterator[Any]:
        produced_item = False
        try:
            async for obj in result:
                if isinstance(obj, Request):
                    self.crawler.engine.crawl(obj)
                    continue
                produced_item = True
                yield obj
        except (CloseSpider, GeneratorExit):
            raise
        except Exception as exc:
            self._callback_failed(response, exc)
            return
        meta = response.request.meta if response.request else {}
        if produced_item or meta.get(KEEP_LEASE_KEY):
            return
        self.ledger.settle(response.request)

    def _callback_failed(self, response: Response, exc: Exception) -> None:
        request = response.request
        stats = self.crawler.stats
        stats.inc_value("spider_exceptions/count")
        stats.inc_value(f"spider_exceptions/{type(exc).__name__}")
        logger.debug("Callback failed on %s", response.url, exc_info=exc)
        if request is None or LEASE_KEY not in request.meta:
            logger.error("Callback failed on %s: %s: %s", response.url, type(exc).__name__, exc)
            return
        self.ledger.failed(request, exc)
