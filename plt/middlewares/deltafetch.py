"""scrapy-deltafetch on current Scrapy, keyed by exported items.

scrapy-deltafetch 2.1.0 has only a synchronous ``process_spider_output`` (which
Scrapy >= 2.16 refuses) and marks a key when the spider yields an item, before
the pipelines and the feed have written it. This subclass keeps its settings
(DELTAFETCH_ENABLED), its request keys (``meta["deltafetch_key"]``, here the
item id, in decimal) and its stats, streams the output asynchronously, and looks
keys up in the job state's export record, which is written only once an item's
line is flushed to the items file. The record belongs to the job directory:
a new day's job (a new JOBDIR) starts with none.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from scrapy import Request
from scrapy_deltafetch.middleware import DeltaFetch

from plt import compat
from plt.job.store import JobStore, job_store

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler
    from scrapy.http import Response

logger = logging.getLogger(__name__)


class _ExportedKeys:
    """The ``db`` DeltaFetch consults: item ids (as bytes) already exported."""

    def __init__(self, state: JobStore) -> None:
        self.state = state

    def __contains__(self, key: bytes) -> bool:
        return key.isdigit() and self.state.is_open and self.state.is_exported(int(key))


class ExportedDeltaFetch(DeltaFetch):
    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ExportedDeltaFetch:
        mw = super().from_crawler(crawler)
        mw.db = _ExportedKeys(job_store(crawler))
        return mw

    def spider_opened(self, spider: Spider) -> None:
        """The export record lives in the job state; there is no dbm file to open."""

    def spider_closed(self, spider: Spider) -> None:
        """Nothing to close: the job state is closed by the scheduler."""

    async def process_spider_output(
        self, response: Response, result: AsyncIterator[Any], spider: Spider | None = None
    ) -> AsyncIterator[Any]:
        async for obj in result:
            if (
                isinstance(obj, Request)
                and "deltafetch_key" in obj.meta
                and compat.deltafetch_enabled_for(self, obj)
                and compat.deltafetch_key(self, obj) in self.db
            ):
                logger.debug("Ignoring already exported: %s", obj)
                self.stats.inc_value("deltafetch/skipped")
                continue
            yield obj
