"""Settle a request's lease once everything its callback produced is durable.

The scraper does not hand a callback's requests to the scheduler as they are
yielded: it buffers the output in a queue that its workers drain later, so
the output can be exhausted while some requests are still in memory only.
This middleware, the outermost, therefore hands each request to the engine
itself (what the scraper would do with it), which stores it in the job state
at once; when the output is exhausted, all of it is durable and the lease is
settled. Responses that yielded an item are settled by the export instead
(the item is durable only once its line is in the items file), through the
product id stored with the lease.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from scrapy import Request

from plt.jobstate import JobState
from plt.scheduler import KEEP_LEASE_KEY, LEASE_KEY

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler
    from scrapy.http import Response


class LeaseMiddleware:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.state = JobState.for_crawler(crawler)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> LeaseMiddleware:
        return cls(crawler)

    async def process_spider_output(
        self, response: Response, result: AsyncIterator[Any], spider: Spider | None = None
    ) -> AsyncIterator[Any]:
        produced_item = False
        async for obj in result:
            if isinstance(obj, Request):
                self.crawler.engine.crawl(obj)
                continue
            produced_item = True
            yield obj
        meta = response.request.meta if response.request else {}
        lease_id = meta.get(LEASE_KEY)
        if lease_id is None or produced_item or meta.get(KEEP_LEASE_KEY):
            return
        if self.state.db is not None:
            self.state.settle(lease_id)
