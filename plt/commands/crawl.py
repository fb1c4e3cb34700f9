"""``scrapy crawl`` with a daily job directory by default and honest exit codes.

Without ``-s JOBDIR=...`` a crawl runs as the day's job,
``jobs/<spider>-<UTC date>/`` beside scrapy.cfg, so re-running the same
command resumes it. A crawl that stops because its job directory cannot be
used (damaged, a file, read-only, a full disk) exits with status 2, with one
line that names the file and what to do; the directory is checked before the
crawler starts. One that ran out of work with requests that failed for now
(network or server errors, kept for the next run) exits with 3.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from scrapy.commands.crawl import Command as ScrapyCrawlCommand
from scrapy.utils.conf import closest_scrapy_cfg

from plt import compat
from plt.jobdir import JobStateError, check_jobdir
from plt.jobstate import JOB_FILES

if TYPE_CHECKING:
    import argparse

    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

USAGE_EXIT = 1
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
        if len(args) != 1:
            super().run(args, opts)  # Scrapy's usage errors
            return
        if not self.settings.get("JOBDIR"):
            self.settings.set("JOBDIR", str(default_jobdir(args[0])), priority="command")
        try:
            compat.check()
        except compat.ScrapyCompatError as exc:
            logger.error("%s", exc)
            self.exitcode = USAGE_EXIT
            return
        try:
            check_jobdir(Path(self.settings["JOBDIR"]), JOB_FILES)
        except JobStateError as exc:
            logger.error("%s", exc)
            self.exitcode = JOB_STATE_ERROR_EXIT
            return
        # Scrapy's own run(), through the public CrawlerProcess API, keeping the crawler.
        assert self.crawler_process
        crawler = self.crawler_process.create_crawler(args[0])
        self.crawler_process.crawl(crawler, **opts.spargs)
        self.crawler_process.start()
        if self.crawler_process.bootstrap_failed:
            self.exitcode = USAGE_EXIT
        self.exitcode = self.exitcode or job_exit_status(crawler)


def job_exit_status(crawler: Crawler) -> int:
    """2 when the job directory could not be used, 3 when requests failed for now."""
    try:
        reason = crawler.stats.get_value("finish_reason")
    except RuntimeError:  # the crawl never started
        return 0
    if reason == "job_state_error" or crawler.stats.get_value("plt/job/state_error"):
        return JOB_STATE_ERROR_EXIT
    if crawler.stats.get_value("plt/job/incomplete"):
        return JOB_INCOMPLETE_EXIT
    return 0
