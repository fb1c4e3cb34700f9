"""The job's own feed: ``<JOBDIR>/items.jsonl``, always present, appended to.

It is the record of what the job exported, so it is added to FEEDS even when
``-o``/``-O`` name other outputs (those are written as well).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from plt.job.itemsfile import ITEMS_FILE

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.settings import Settings

logger = logging.getLogger(__name__)


class JobFeedAddon:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> JobFeedAddon:
        return cls(crawler)

    def update_settings(self, settings: Settings) -> None:
        jobdir = settings.get("JOBDIR")
        if not jobdir:
            return
        path = Path(jobdir).resolve() / ITEMS_FILE
        feeds = settings.getdict("FEEDS")
        uri = path.as_uri()
        for key in (uri, str(path)):
            if feeds.pop(key, None) is not None:
                logger.warning(
                    "%s is the job's own feed, always appended to; -o/-O for it ignored", path
                )
        job_feed = {
            "format": "jsonl",
            "overwrite": False,
            "encoding": "utf-8",
            "item_export_kwargs": {"plt_job_feed": True},
        }
        # First: an exporter that raises stops the feeds after it for that item.
        feeds = {uri: job_feed, **feeds}
        settings.set("FEEDS", feeds, priority=max(settings.getpriority("FEEDS") or 0, 20))
        logger.info("Items of this job go to %s", path)
