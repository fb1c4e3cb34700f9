"""Settle a request's lease once everything its callback produced is durable.

The scraper does not hand a callback's requests to the scheduler as they are
yielded: it buffers the output in a queue that its workers drain later, so
the output can be exhausted while some requests are still in memory only.
This middleware, the outermost, therefore hands each request to the engine
itself (what the scraper would do with it), which stores it in the job state
at once; when the output is exhausted, all of it is durable and the lease is
settled. Responses that yielded an item are settled by the export instead
(the item is durable only once its line is in the items file), through the
item id stored with the lease. A request with no item id of its own may yield
many items (a listing page that is itself the items): it is settled here once
its output is exhausted and each of its items is exported or dropped, which
Scrapy's item signals tell, after the feed exports (extensions connect before
the engine builds this middleware). Until then its lease stays open, so a run
that dies first fetches the page again, and the export record drops what was
already written.

A callback that raises is a failure of its request, like a failed download:
the ledger keeps it for the next run, counted as an attempt, and gives it up
after ``PLT_JOB_MAX_ATTEMPTS``. What it yielded before raising is stored.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from scrapy import Request, signals
from scrapy.exceptions import CloseSpider

from plt.job.ledger import Ledger
from plt.job.scheduler import KEEP_LEASE_KEY, LEASE_KEY

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler
    from scrapy.http import Response

logger = logging.getLogger(__name__)


@dataclass
class _OpenItems:
    """The items of a request without an item id, not all durable yet."""

    request: Request
    open: int = 0
    exhausted: bool = False
    durable: bool = True


class LeaseMiddleware:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.ledger = Ledger.for_crawler(crawler)
        self._open: dict[Any, _OpenItems] = {}  # by lease; bounded by responses in flight
        crawler.signals.connect(self.item_scraped, signal=signals.item_scraped)
        crawler.signals.connect(self.item_dropped, signal=signals.item_dropped)
        crawler.signals.connect(self.item_error, signal=signals.item_error)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> LeaseMiddleware:
        return cls(crawler)

    async def process_spider_output(
        self, response: Response, result: AsyncIterator[Any], spider: Spider | None = None
    ) -> AsyncIterator[Any]:
        produced_item = False
        items = self._items_of(response.request)
        try:
            async for obj in result:
                if isinstance(obj, Request):
                    self.crawler.engine.crawl(obj)
                    continue
                produced_item = True
                if items is not None:
                    items.open += 1
                yield obj
        except (CloseSpider, GeneratorExit):
            raise
        except Exception as exc:
            self._callback_failed(response, exc)
            self._exhausted(items, durable=False)
            return
        meta = response.request.meta if response.request else {}
        if items is not None:
            # Settled once its items are durable; with none, as any request below.
            self._exhausted(items, durable=produced_item and not meta.get(KEEP_LEASE_KEY))
        if produced_item or meta.get(KEEP_LEASE_KEY):
            return
        self.ledger.settle(response.request)

    # -- items of a request without an item id ---------------------------------

    def _items_of(self, request: Request | None) -> _OpenItems | None:
        """Tracked when the export cannot settle it: leased, and no item id of its own."""
        if request is None or LEASE_KEY not in request.meta:
            return None
        if self.ledger.item_id(request) is not None:
            return None
        return self._open.setdefault(request.meta[LEASE_KEY], _OpenItems(request))

    def item_scraped(self, item: Any, response: Any) -> None:
        item_id = self.ledger.item_id(item)
        state = self.ledger.state
        # Durable once its line is recorded; else the request waits for the next run.
        durable = item_id is not None and self.ledger.open and state.is_exported(item_id)
        self._resolved(response, durable)

    def item_dropped(self, item: Any, response: Any, exception: Exception) -> None:
        self._resolved(response, durable=True)  # a pipeline decided its fate

    def item_error(self, item: Any, response: Any, failure: Any) -> None:
        self._resolved(response, durable=False)  # the ledger keeps the request

    def _resolved(self, response: Any, durable: bool) -> None:
        request = getattr(response, "request", None)
        lease = request.meta.get(LEASE_KEY) if request is not None else None
        items = self._open.get(lease) if lease is not None else None
        if items is None:
            return
        items.open -= 1
        items.durable = items.durable and durable
        self._settle_if_done(items)

    def _exhausted(self, items: _OpenItems | None, durable: bool) -> None:
        if items is not None:
            items.exhausted = True
            items.durable = items.durable and durable
            self._settle_if_done(items)

    def _settle_if_done(self, items: _OpenItems) -> None:
        if not items.exhausted or items.open > 0:
            return
        del self._open[items.request.meta[LEASE_KEY]]
        if items.durable and not items.request.meta.get(KEEP_LEASE_KEY):
            self.ledger.settle(items.request)

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
