"""``-s PLT_DISTRIBUTED=True -s REDIS_URL=redis://...``: this crawl is one worker of many.

Every worker that names the same crawl (PLT_REDIS_JOB, by default the JOBDIR's
name) shares its frontier, seen set, leases, partial items and export record
in Redis. The add-on swaps the scheduler for plt.distributed's, adds the
RedisStartCheck and LeaseKeeper extensions and sends the worker's items to
``<JOBDIR>/items-<worker>.jsonl`` instead of the job's items.jsonl, which is
merged from the workers' files when the crawl finishes. Registered after
plt.job.feed.JobFeedAddon, whose feed it replaces.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from plt.distributed.checks import RedisStartCheck
from plt.distributed.keeper import LeaseKeeper
from plt.distributed.names import worker_items_file, worker_name
from plt.distributed.state import STORE_PATH
from plt.errors import ConfigError
from plt.job.itemsfile import ITEMS_FILE
from plt.job.store import STORE_SETTING

if TYPE_CHECKING:
    from typing import Self

    from scrapy.crawler import Crawler
    from scrapy.settings import BaseSettings

logger = logging.getLogger(__name__)

KEEPER_PRIORITY = 650
START_CHECK_PRIORITY = 0
PROJECT_PRIORITY = 20  # settings.py's SCHEDULER and FEEDS are set at this priority


def check_settings(settings: BaseSettings) -> None:
    if not settings.getbool("PLT_DISTRIBUTED"):
        return
    if not settings.get("REDIS_URL"):
        raise ConfigError("PLT_DISTRIBUTED needs REDIS_URL (redis://host:port/db)")
    if not settings.get("SHOP_URL"):
        raise ConfigError(
            "PLT_DISTRIBUTED needs SHOP_URL: every worker must crawl the same "
            "retailer (start the demo retailer once with `python -m plt.shop`)"
        )


class DistributedAddon:
    def __init__(self, crawler: Crawler | None = None) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    @classmethod
    def update_pre_crawler_settings(cls, settings: BaseSettings) -> None:
        check_settings(settings)

    def update_settings(self, settings: BaseSettings) -> None:
        if not settings.getbool("PLT_DISTRIBUTED"):
            return
        check_settings(settings)  # again: spider custom_settings may have changed them
        worker = worker_name(settings)
        # Fixed here so that the feed below and the job state agree on it.
        settings.set(
            "PLT_WORKER_NAME", worker, priority=settings.getpriority("PLT_WORKER_NAME") or 0
        )
        settings.set(STORE_SETTING, STORE_PATH, priority=PROJECT_PRIORITY)
        settings.set_in_component_priority_dict("EXTENSIONS", LeaseKeeper, KEEPER_PRIORITY)
        settings.set_in_component_priority_dict("EXTENSIONS", RedisStartCheck, START_CHECK_PRIORITY)
        jobdir = settings.get("JOBDIR")
        if not jobdir:
            logger.warning("Distributed worker %s has no JOBDIR: its items are not kept", worker)
            return
        root = Path(jobdir).resolve()
        feeds = settings.getdict("FEEDS")
        options = feeds.pop((root / ITEMS_FILE).as_uri(), None) or {
            "format": "jsonl",
            "overwrite": False,
            "encoding": "utf-8",
            "item_export_kwargs": {"plt_job_feed": True},
        }
        path = root / worker_items_file(worker)
        feeds[path.as_uri()] = options
        settings.set(
            "FEEDS", feeds, priority=max(settings.getpriority("FEEDS") or 0, PROJECT_PRIORITY)
        )
        logger.info(
            "Distributed worker %s: items go to %s; %s is merged when the crawl finishes",
            worker,
            path,
            root / ITEMS_FILE,
        )
