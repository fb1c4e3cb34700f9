"""The last lines of a run: the job's state, its items, what to run next.

Scrapy dumps its stats when the spider closes (StatsCollector.close_spider,
after the spider_closed signal); ``engine_stopped`` comes after that, so a
summary logged there is the last thing a run prints, and what an 80x24
terminal shows. It counts the whole job, not only this run: the items are
the lines of the job's ``items.jsonl``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scrapy import signals
from scrapy.exceptions import NotConfigured
from scrapy.utils.asyncio import is_asyncio_available

from plt import memsamples
from plt.job.itemsfile import ITEMS_FILE
from plt.job.jobdir import FAILED_FILE

if TYPE_CHECKING:
    from collections.abc import Sequence

    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

MIB = 1024 * 1024
CHUNK = 1024 * 1024
CLOSE_WAIT_TICK, CLOSE_WAIT_TICKS = 0.05, 1200  # at most 60 s
# Stopped by the user or a limit, with the job state intact: the same command resumes.
RESUMABLE = frozenset({"shutdown", "memusage_exceeded", "cancelled"})


def count_lines(path: Path) -> int | None:
    """Lines in a file, read in bounded chunks; 0 if it does not exist, None if unreadable."""
    try:
        with path.open("rb") as f:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(CHUNK), b""))
    except FileNotFoundError:
        return 0
    except OSError:
        return None


def same_command(orig_argv: Sequence[str]) -> str | None:
    """This process's command line as a user would type it again, if it ran ``scrapy``.

    It is read from ``sys.orig_argv``: Scrapy removes the command name from
    ``sys.argv`` before a crawl starts.
    """
    args = list(orig_argv[1:])  # after the interpreter
    if args[:2] == ["-m", "scrapy"]:
        return shlex.join(["python", "-m", "scrapy", *args[2:]])
    if not args or Path(args[0]).name != "scrapy":
        return None  # embedded in another program: only it knows how it was started
    prog = args[0]
    # Found on PATH: as typed; otherwise the path that was run.
    if os.path.isabs(prog) and shutil.which("scrapy") == prog:
        prog = "scrapy"
    return shlex.join([prog, *args[1:]])


def short_path(path: Path) -> str:
    """Relative to the working directory when below it: shorter on a terminal."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)


def top_causes(stats: dict[str, Any], count: int = 2) -> str:
    """The most frequent retry reasons (or download errors) in the stats."""
    prefixes = ("plt/job/failed/", "retry/reason_count/", "downloader/exception_type_count/")
    for prefix in prefixes:
        found = [(v, k[len(prefix) :]) for k, v in stats.items() if k.startswith(prefix)]
        if found:
            found.sort(reverse=True)
            return ", ".join(f"{name.rsplit('.', 1)[-1]} x{n:,}" for n, name in found[:count])
    return ""


MISSING_CAUSES = {
    "failed_for_now": "failed for now",
    "not_fetched": "not fetched yet",
    "no_request": "no request left",
    "on_unread_pages": "on listing pages not read yet",
    "given_up": "given up",
}


def missing_causes(stats: dict[str, Any]) -> str:
    """Items missing, by cause (the ledger's plt/job/missing/... stats)."""
    found = [(stats.get(f"plt/job/missing/{k}") or 0, text) for k, text in MISSING_CAUSES.items()]
    return ", ".join(f"{n:,} {text}" for n, text in found if n)


class JobSummary:
    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        jobdir = settings.get("JOBDIR")
        if not jobdir or not settings.getbool("PLT_SUMMARY_ENABLED", True):
            raise NotConfigured
        self.crawler = crawler
        self.jobdir = Path(jobdir)
        self.settings = settings
        self.command = same_command(sys.orig_argv)
        self.started = time.time()
        self._logged = False
        crawler.signals.connect(self.engine_stopped, signal=signals.engine_stopped)
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> JobSummary:
        return cls(crawler)

    def spider_closed(self, spider: object, reason: str) -> None:
        """A spider closed before the engine ran (a finished job, a job-state error):
        Scrapy then sends no engine_stopped, so the summary comes as the reactor stops,
        after the stats dump."""
        if getattr(self.crawler.engine, "running", True):
            return  # engine_stopped follows
        from twisted.internet import reactor

        reactor.addSystemEventTrigger("before", "shutdown", self.log_summary)

    async def engine_stopped(self) -> None:
        await self._spider_closed()
        self.log_summary()

    def log_summary(self) -> None:
        stats = self.crawler.stats.get_stats()
        if stats.get("finish_reason") is None or self._logged:
            return  # the spider never opened (whatever stopped it said so), or said
        self._logged = True
        logger.info("Job summary:\n%s", "\n".join(self.lines(stats)))

    async def _spider_closed(self) -> None:
        """Wait for the spider's close to end (Scrapy's stats dump is part of it).

        Usually it has ended; but a stop asked for while the spider was closing
        (a limit reached during start-up) sends engine_stopped before the dump.
        """
        try:
            engine = self.crawler.engine
        except RuntimeError:  # the crawl never started
            return
        if not is_asyncio_available():
            return
        for _ in range(CLOSE_WAIT_TICKS):
            if getattr(engine, "spider", None) is None:
                return
            await asyncio.sleep(CLOSE_WAIT_TICK)

    def state(self, stats: dict[str, Any]) -> tuple[str, str | None]:
        """What became of the job, and what to run next (None: nothing)."""
        reason = stats["finish_reason"]
        again = f"resume with the same command: {self.command or 'run it again'}"
        if reason in ("finished", "given_up") and (given_up := stats.get("plt/job/given_up_end")):
            state = f"ended with {given_up:,} requests given up, listed in {FAILED_FILE}"
            return state, "try them again: add -s PLT_JOB_RETRY_FAILED=1 to the same command"
        if reason == "finished":
            failed = stats.get("plt/job/incomplete")
            if not failed:
                return "finished", None
            causes = top_causes(stats)
            plural = "s" if failed != 1 else ""
            state = f"incomplete: {failed:,} request{plural} failed for now"
            state += f" (retried for {causes})" if causes else " (network or server errors)"
            if missing := stats.get("plt/job/missing"):
                state += f"; {missing:,} items missing ({missing_causes(stats)})"
            if "DNSLookupError" in causes:
                return state, f"check the host in SHOP_URL, then {again}"
            return state, again.replace("resume", "retry them")
        if reason == "job_state_error":
            error = stats.get("plt/job/state_error") or "see the error above"
            return f"stopped: the job state cannot be used: {error}", None
        if reason == "shutdown":
            return "stopped: interrupted (Ctrl-C or SIGTERM)", again
        if reason == "memusage_exceeded":
            limit = self.settings.getint("MEMUSAGE_LIMIT_MB")
            peak = (stats.get("memusage/max") or 0) / MIB
            return (
                f"stopped: memory limit reached (MEMUSAGE_LIMIT_MB {limit:,} MiB, "
                f"peak {peak:,.0f} MiB)",
                again,
            )
        if reason.startswith("closespider_"):
            name = reason.upper()
            return f"stopped: {name} {self.settings.get(name)} reached", again
        if reason in RESUMABLE:
            return f"stopped ({reason})", again
        return f"stopped ({reason}): see the error above", None

    def lines(self, stats: dict[str, Any]) -> list[str]:
        state, next_step = self.state(stats)
        items = self.jobdir / ITEMS_FILE
        total = count_lines(items)
        new = stats.get("item_scraped_count") or 0
        in_job = ("?" if total is None else f"{total:,}") + " in the job"
        if listed := stats.get("plt/products/total"):
            # Withdrawn items are listed but never in the items file.
            in_job += f" ({listed:,} listed)"
        profile = self.settings.get("PROFILE") or "none"
        lines = [
            f"  job       {self.jobdir.name} (profile {profile})",
            f"  state     {state}",
            f"  exported  {in_job}, {new:,} of them new this run",
            f"  items     {short_path(items)}",
        ]
        chart = self.jobdir / memsamples.CHART_FILE
        try:
            if chart.stat().st_mtime >= self.started:
                lines.append(f"  memory    {short_path(chart)}")
        except OSError:
            pass  # not drawn in this run
        if next_step:
            lines.append(f"  next      {next_step}")
        return lines
