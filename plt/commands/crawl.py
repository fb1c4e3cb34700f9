"""``scrapy crawl`` with a daily job directory by default and honest exit codes.

Without ``-s JOBDIR=...`` a crawl runs as the day's job,
``jobs/<spider>-<UTC date>/`` beside scrapy.cfg, so re-running the same
command resumes it. A crawl that stops because its job directory cannot be
used exits with status 2; one that ran out of work with requests that
failed for now (network or server errors, kept for the next run) exits with 3.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from scrapy.commands.crawl import Command as ScrapyCrawlCommand
from scrapy.utils.conf import closest_scrapy_cfg

if TYPE_CHECKING:
    import argparse

    from scrapy import Spider
    from scrapy.crawler import Crawler

JOB_STATE_ERROR_EXIT = 2
JOB_INCOMPLETE_EXIT = 3


def default_jobdir(spider_name: str, now: float | None = None) -> Path:
    cfg = closest_scrapy_cfg()
    root = Path(cfg).parent if cfg else Path.cwd()
    day = time.strftime("%Y-%m-%d", time.gmtime(now))
    return root / "jobs" / f"{spider_name}-{day}"


class Command(ScrapyCrawlCommand):
    def long_desc(self) -> str:
        return (
            "Run a spider of the current project. Without -s JOBDIR=..., the job "
            "directory is jobs/<spider>-<UTC date>/, and running the same command "
            "again resumes the job."
        )

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if len(args) == 1 and not self.settings.get("JOBDIR"):
            self.settings.set("JOBDIR", str(default_jobdir(args[0])), priority="command")
        self._crawlers: list[Crawler] = []
        super().run(args, opts)
        for crawler in self._crawlers:
            try:
                reason = crawler.stats.get_value("finish_reason")
            except RuntimeError:  # the crawl never started
                continue
            if reason == "job_state_error":
                self.exitcode = JOB_STATE_ERROR_EXIT
            elif crawler.stats.get_value("plt/job/incomplete"):
                self.exitcode = JOB_INCOMPLETE_EXIT

    def _create_crawler(self, spidercls: type[Spider] | str) -> Crawler:
        crawler = super()._create_crawler(spidercls)
        self._crawlers.append(crawler)
        return crawler
