"""Item pipelines."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from scrapy.exceptions import DropItem

from plt.jobstate import JobState

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)


class ExactlyOncePipeline:
    """Drop a product the job has already exported: a last guard for exactly-once."""

    def __init__(self, crawler: Crawler) -> None:
        self.state = JobState.for_crawler(crawler)
        self.stats = crawler.stats

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ExactlyOncePipeline:
        return cls(crawler)

    def process_item(self, item: dict[str, Any]) -> dict[str, Any]:
        if self.state.db is not None and self.state.is_exported(item["product_id"]):
            self.stats.inc_value("plt/items/duplicate_dropped")
            raise DropItem(f"product {item['product_id']} is already exported in this job")
        return item
