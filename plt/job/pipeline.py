"""Item pipelines."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from scrapy.exceptions import DropItem

from plt.job.ledger import Ledger
from plt.job.store import job_store

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)


class ExactlyOncePipeline:
    """Drop an item the job has already exported: a last guard for exactly-once.

    A dropped item's request is settled by the ledger (Scrapy's item_dropped)."""

    def __init__(self, crawler: Crawler) -> None:
        self.state = job_store(crawler)
        self.ledger = Ledger.for_crawler(crawler)
        self.stats = crawler.stats

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ExactlyOncePipeline:
        return cls(crawler)

    def process_item(self, item: dict[str, Any]) -> dict[str, Any]:
        item_id = self.ledger.item_id(item)
        if self.state.is_open and item_id is not None and self.state.is_exported(item_id):
            self.stats.inc_value("plt/items/duplicate_dropped")
            raise DropItem(f"item {item_id} is already exported in this job")
        return item
