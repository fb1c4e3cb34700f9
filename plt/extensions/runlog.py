"""One line per run of a job in ``<JOBDIR>/runs.jsonl``: why it stopped and its stats.

A job may take several runs (stopped by MemoryUsage, killed, resumed); this
file keeps each run's Scrapy stats, which a resumed job would otherwise lose.
A killed run writes no line: the next run's ``plt/job/requeued`` tells how
many requests it had in flight.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from scrapy import signals
from scrapy.exceptions import NotConfigured

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

RUNS_FILE = "runs.jsonl"


class RunLog:
    def __init__(self, crawler: Crawler) -> None:
        jobdir = crawler.settings.get("JOBDIR")
        if not jobdir:
            raise NotConfigured
        self.path = Path(jobdir) / RUNS_FILE
        self.crawler = crawler
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RunLog:
        return cls(crawler)

    def spider_closed(self, spider: Spider, reason: str) -> None:
        stats = dict(self.crawler.stats.get_stats())
        stats["finish_reason"] = reason
        line = json.dumps(stats, default=str, sort_keys=True) + "\n"
        try:
            with self.path.open("a", encoding="utf-8") as f:
                f.write(line)
        except OSError as exc:
            # A full or read-only disk has been reported already; the run's stats
            # are in the log above.
            self.crawler.stats.inc_value("plt/runlog/unwritten")
            logger.warning("Run not recorded in %s: %s", self.path, exc.strerror or exc)
