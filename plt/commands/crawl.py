"""``scrapy crawl`` with a daily job directory by default and honest exit codes.

Without ``-s JOBDIR=...`` a crawl runs as the day's job,
``jobs/<spider>-<UTC date>/`` beside scrapy.cfg, so re-running the same
command resumes it. A setting the crawl cannot run with (plt.errors.ConfigError)
is reported on one line, ``error: <message>``, with exit status 1, before
anything is fetched. A crawl that stops because its job directory cannot be
used (damaged, a file, read-only, a full disk) exits with status 2, with one
line that names the file and what to do; the directory is checked before the
crawler starts. One that ran out of work with requests that failed for now
(network or server errors, kept for the next run) exits with 3; one whose
first listing page was no listing (a wrong SHOP_URL, an anti-bot page) exits
with 4; one that ended with requests given up (a permanent answer, or too many
runs failed) with 5.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scrapy.addons import AddonManager
from scrapy.commands.crawl import Command as ScrapyCrawlCommand
from scrapy.spiderloader import get_spider_loader
from scrapy.utils.conf import closest_scrapy_cfg
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from plt import compat
from plt.errors import ConfigError
from plt.job.jobdir import JobStateError, check_jobdir
from plt.job.sqlite import JOB_FILES
from plt.spiders.product import NOT_A_LISTING

if TYPE_CHECKING:
    import argparse

    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

CONFIG_ERROR_EXIT = 1
JOB_STATE_ERROR_EXIT = 2
JOB_INCOMPLETE_EXIT = 3
NOT_A_LISTING_EXIT = 4
JOB_GIVEN_UP_EXIT = 5


def default_jobdir(spider_name: str, now: float | None = None) -> Path:
    cfg = closest_scrapy_cfg()
    root = Path(cfg).parent if cfg else Path.cwd()
    day = time.strftime("%Y-%m-%d", time.gmtime(now))
    return root / "jobs" / f"{spider_name}-{day}"


def print_error(exc: Exception) -> None:
    print(f"error: {exc}", file=sys.stderr)


class ConfigCheck:
    """For a command that runs a spider named by its first argument: check the
    settings before the crawler process exists (it logs, and it runs the same
    add-on checks where an error could only be a traceback), so that a
    ConfigError is one line, ``error: <message>``, and exit status 1."""

    settings: Any

    def process_options(self, args: list[str], opts: argparse.Namespace) -> None:
        super().process_options(args, opts)  # type: ignore[misc]
        try:
            self.check_settings(args)
        except ConfigError as exc:
            print_error(exc)
            sys.exit(CONFIG_ERROR_EXIT)

    def check_settings(self, args: list[str]) -> None:
        """What creating the crawler would check: the spider's settings, then the
        add-ons' pre-crawler checks, on a copy of the settings."""
        assert self.settings is not None
        settings = self.settings.copy()
        if len(args) == 1:
            try:
                spidercls = get_spider_loader(settings).load(args[0])
            except KeyError:
                spidercls = None  # Scrapy reports it once the crawl starts
            if spidercls is not None:
                spidercls.update_settings(settings)
        AddonManager.load_pre_crawler_settings(settings)


class Command(ConfigCheck, ScrapyCrawlCommand):
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
            self.exitcode = CONFIG_ERROR_EXIT
            return
        if why := _missing_addon(self.settings):
            logger.error("%s", why)
            self.exitcode = CONFIG_ERROR_EXIT
            return
        try:
            check_jobdir(Path(self.settings["JOBDIR"]), JOB_FILES)
        except JobStateError as exc:
            logger.error("%s", exc)
            self.exitcode = JOB_STATE_ERROR_EXIT
            return
        self._config_error: ConfigError | None = None
        # Scrapy's own run(), through the public CrawlerProcess API, keeping the crawler.
        assert self.crawler_process is not None
        crawler = self.crawler_process.create_crawler(args[0])
        self._watch(self.crawler_process.crawl(crawler, **opts.spargs))
        self.crawler_process.start()
        if self.crawler_process.bootstrap_failed:
            self.exitcode = CONFIG_ERROR_EXIT
        if self._config_error is not None:
            print_error(self._config_error)
            self.exitcode = CONFIG_ERROR_EXIT
            return
        self.exitcode = self.exitcode or job_exit_status(crawler)

    def _watch(self, crawl: Any) -> None:
        """Keep a ConfigError that fails the crawl (an add-on's, once spider
        custom_settings apply) for one line at the end, instead of a traceback."""
        if isinstance(crawl, Deferred):
            crawl.addErrback(self._crawl_failed)
        elif isinstance(crawl, asyncio.Future):
            crawl.add_done_callback(self._task_done)

    def _crawl_failed(self, failure: Failure) -> Failure | None:
        if failure.check(ConfigError):
            self._config_error = failure.value
            return None
        return failure

    def _task_done(self, task: asyncio.Future[Any]) -> None:
        if task.cancelled():
            return
        exc = task.exception()  # retrieved: asyncio would not report it again
        if isinstance(exc, ConfigError):
            self._config_error = exc
        elif exc is not None:
            # What asyncio does with an exception nobody retrieved.
            asyncio.get_running_loop().call_exception_handler(
                {"message": "Task exception was never retrieved", "exception": exc, "future": task}
            )


def job_exit_status(crawler: Crawler) -> int:
    """2: the job directory could not be used; 4: no listing; 3: something left to do;
    5: nothing left to do, but requests were given up."""
    try:
        reason = crawler.stats.get_value("finish_reason")
    except RuntimeError:  # the crawl never started
        return 0
    if reason == "job_state_error" or crawler.stats.get_value("plt/job/state_error"):
        return JOB_STATE_ERROR_EXIT
    if reason == NOT_A_LISTING:
        return NOT_A_LISTING_EXIT
    if crawler.stats.get_value("plt/job/incomplete"):
        return JOB_INCOMPLETE_EXIT
    if crawler.stats.get_value("plt/job/given_up_end"):
        return JOB_GIVEN_UP_EXIT
    return 0


DISTRIBUTED_ADDON = "plt.distributed.addon.DistributedAddon"


def _missing_addon(settings: Any) -> str | None:
    """PLT_DISTRIBUTED without its add-on would run a local job: refused."""
    if not settings.getbool("PLT_DISTRIBUTED"):
        return None
    addons = settings.getdict("ADDONS")
    names = {k if isinstance(k, str) else f"{k.__module__}.{k.__qualname__}" for k in addons}
    if DISTRIBUTED_ADDON in names:
        return None
    return (
        f"PLT_DISTRIBUTED needs the add-on {DISTRIBUTED_ADDON} in ADDONS "
        f"(it sets the Redis job store and the worker's feed)."
    )
