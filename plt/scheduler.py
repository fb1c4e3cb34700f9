"""A scheduler whose frontier and seen set live in the crash-safe job state.

Scrapy's default scheduler keeps JOBDIR queues that survive only a clean stop
(after SIGKILL the disk queue's header and ``active.json`` are stale) and a
``requests.seen`` file that already holds the fingerprints of requests that
were in flight. Here a request is queued, leased and settled in SQLite, so a
resumed job re-fetches exactly the requests that were leased when it died.

Deduplication is part of the enqueue (one ``INSERT OR IGNORE`` on the
fingerprint), so DUPEFILTER_CLASS is not used by this scheduler.

A stored request that cannot be decoded (garbage, or naming code that is not
Scrapy's or the spider's, see plt.requestcodec) is given up: one warning, the
``plt/job/undecodable`` stat and a line in ``<JOBDIR>/failed.jsonl``; the job
then cannot finish. A write that fails (a full disk) stops the crawl with one
error line; the job resumes exactly once the disk has room.
"""

from __future__ import annotations

import heapq
import itertools
import logging
from typing import TYPE_CHECKING, Any

from scrapy import signals
from scrapy.core.scheduler import BaseScheduler
from scrapy.exceptions import CloseSpider
from scrapy.utils.defer import deferred_from_coro

from plt import compat
from plt.job.account import close_account, retry_failed_on_open
from plt.job.ledger import Ledger
from plt.jobdir import FAILED_FILE
from plt.jobstate import JobState, JobStateError
from plt.requestcodec import KEEP_LEASE_KEY as KEEP_LEASE_KEY
from plt.requestcodec import (
    LEASE_KEY,
    UndecodableRequest,
    request_from_json,
    request_to_json,
    run_meta,
)

if TYPE_CHECKING:
    from scrapy import Request, Spider
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

# Requests that differ only by this value are not duplicates of each other.
DEDUPE_SCOPE_KEY = "plt_dedupe_scope"


def scoped_fingerprint(request: Request, fingerprinter: Any) -> str:
    """Scrapy's fingerprint, plus the request's dedupe scope if it has one."""
    fp = fingerprinter.fingerprint(request).hex()
    scope = request.meta.get(DEDUPE_SCOPE_KEY)
    return f"{fp}:{scope}" if scope else fp


def dedupe_key(request: Request, fingerprinter: Any) -> str | None:
    """The key the frontier deduplicates on; None for unfiltered requests."""
    return None if request.dont_filter else scoped_fingerprint(request, fingerprinter)


class JobStateSchedulerMixin:
    """What the SQLite and the Redis schedulers share: opening the job state
    with one clear error, closing at once when asked, and a memory fallback."""

    crawler: Crawler
    stats: Any
    state: JobState

    def _init_job_state(self, crawler: Crawler) -> None:
        compat.check()  # once per process: Scrapy's private names are all there
        # Requests that cannot be stored as JSON stay in memory, like Scrapy's
        # own fallback; scheduler/unserializable counts them.
        self._memory: list[tuple[int, int, Request]] = []
        self._order = itertools.count()
        self._close_reason: str | None = None
        self._closing = False
        self.ledger = Ledger.for_crawler(crawler)
        # Scrapy's retry and redirect counts of queued requests, by their
        # stored JSON: for this run only (plt.requestcodec.RUN_META).
        self._run_meta: dict[str, dict[str, Any]] = {}
        # CloseSpider raised from open() skips opening the scraper, and closing
        # then fails; raised from spider_opened it closes cleanly.
        crawler.signals.connect(self.spider_opened, signal=signals.spider_opened)

    def _open_job_state(self) -> bool:
        try:
            self.state.open()
        except JobStateError as exc:
            logger.error("%s", exc)
            self.stats.set_value("plt/job/state_error", str(exc))
            self._close_reason = "job_state_error"
            return False
        self.state.on_error = self._job_state_failed
        return True

    def _job_state_failed(self, error: JobStateError) -> None:
        """A write failed mid-crawl: one line, and the crawl stops."""
        logger.error("%s", error)
        self.stats.set_value("plt/job/state_error", str(error))
        if not self._closing:
            self._closing = True
            deferred_from_coro(self.crawler.engine.close_spider_async(reason="job_state_error"))

    def _stash(self, request: Request, data: str) -> None:
        if extra := run_meta(request):
            self._run_meta[data] = extra

    def _decode(self, lease: Any, data: Any) -> Request | None:
        """The stored request, or None when it is given up (never imports anything)."""
        try:
            request = request_from_json(data, self.spider)
        except UndecodableRequest as exc:
            self.ledger.undecodable(lease, data, exc)
            return None
        if isinstance(data, str) and (extra := self._run_meta.pop(data, None)):
            request.meta.update(extra)
        request.meta[LEASE_KEY] = lease
        return request

    def _given_up_error(self, count: int) -> None:
        """Requests given up in this job: it cannot finish, and says so (exit 2)."""
        jobdir = self.state.jobdir
        listed = f", listed in {jobdir / FAILED_FILE}" if jobdir else ""
        message = (
            f"Stored requests that cannot be decoded (not JSON, or naming code that is not "
            f"Scrapy's or the spider's) were given up: {count} in {self.state.where}{listed}. "
            f"The job cannot finish: start it over with -s PLT_JOB_RESET=1."
        )
        logger.error("%s", message)
        self.stats.set_value("plt/job/state_error", message)

    def spider_opened(self, spider: Spider) -> None:
        if self._close_reason:
            raise CloseSpider(self._close_reason)

    def _keep_in_memory(self, request: Request, where: str, exc: Exception) -> bool:
        logger.warning("Unable to store %s in %s (%s); kept in memory", request, where, exc)
        self.stats.inc_value("scheduler/unserializable")
        self.stats.inc_value("scheduler/enqueued/memory")
        self.stats.inc_value("scheduler/enqueued")
        heapq.heappush(self._memory, (-request.priority, next(self._order), request))
        return True

    def _next_from_memory(self) -> Request | None:
        if not self._memory:
            return None
        self.stats.inc_value("scheduler/dequeued/memory")
        self.stats.inc_value("scheduler/dequeued")
        return heapq.heappop(self._memory)[2]


class JobScheduler(JobStateSchedulerMixin, BaseScheduler):
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.stats = crawler.stats
        self.state = JobState.for_crawler(crawler)
        self.fingerprinter = crawler.request_fingerprinter
        self.debug_dupes = crawler.settings.getbool("DUPEFILTER_DEBUG")
        self._logged_dupe = False
        self._init_job_state(crawler)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> JobScheduler:
        return cls(crawler)

    def open(self, spider: Spider) -> None:
        self.spider = spider
        if not self._open_job_state():
            return
        state = self.state
        if state.jobdir is None:
            return
        self.stats.set_value("plt/job/requeued", state.requeued_on_open)
        if state.get_meta("finished", False):
            logger.info(
                "Job %s is finished: %d items in %s. Nothing to do "
                "(-s PLT_JOB_RESET=1 starts it over).",
                state.jobdir,
                state.exported_count(),
                state.items_path,
            )
            self._close_reason = "finished"
            return
        if why_not := retry_failed_on_open(state, self.crawler.settings, state.jobdir):
            logger.error("%s", why_not)
            self.stats.set_value("plt/job/given_up_end", state.get_meta("ended_given_up"))
            self._close_reason = "given_up"
            return
        if state.resumed:
            logger.info(
                "Resuming job %s: %d items done, %d partial items, %d requests queued "
                "(%d of them in flight or failed when it stopped).",
                state.jobdir,
                state.exported_count(),
                state.pending_count(),
                state.queued,
                state.requeued_on_open,
            )
        else:
            logger.info("New job in %s", state.jobdir)

    def close(self, reason: str) -> None:
        self._closing = True
        state = self.state
        if state.db is None:
            return
        pending = state.pending_count()
        self.stats.set_value("plt/pending_items", pending)
        if self._close_reason == "given_up":
            state.close()
            return
        done = close_account(state, self.stats, reason)
        finished = done and not self.has_pending_requests() and not state.leased and not pending
        if finished:
            state.set_meta("finished", True)
        if state.jobdir is not None:
            logger.info(
                "Job %s %s: %d items in %s",
                state.jobdir,
                "finished" if finished else f"stopped ({reason})",
                state.exported_count(),
                state.items_path,
            )
            if reason == "finished" and state.given_up:
                self._given_up_error(state.given_up)
        state.close()

    def has_pending_requests(self) -> bool:
        return self.state.queued > 0 or bool(self._memory)

    def enqueue_request(self, request: Request) -> bool:
        fp = dedupe_key(request, self.fingerprinter)
        try:
            data = request_to_json(request, self.spider)
        except (ValueError, TypeError, OverflowError) as exc:
            return self._enqueue_memory(request, fp, exc)
        item_id = self.ledger.item_id(request)
        replaces = request.meta.get(LEASE_KEY)  # a retry or redirect of a leased request
        if not self.state.add_request(fp, request.priority, data, item_id, replaces):
            self._log_dupe(request)
            return False
        self._stash(request, data)
        self.stats.inc_value("scheduler/enqueued/disk")
        self.stats.inc_value("scheduler/enqueued")
        return True

    def _enqueue_memory(self, request: Request, fp: str | None, exc: Exception) -> bool:
        # Still recorded as seen, so the request is not queued twice.
        if fp is not None and not self.state.add_seen(fp):
            self._log_dupe(request)
            return False
        return self._keep_in_memory(request, "the job state", exc)

    def _log_dupe(self, request: Request) -> None:
        self.stats.inc_value("dupefilter/filtered")
        if self.debug_dupes or not self._logged_dupe:
            self._logged_dupe = True
            logger.debug("Filtered duplicate request: %s", request)

    def next_request(self) -> Request | None:
        if self._memory:
            return self._next_from_memory()
        request = None
        while request is None:
            row = self.state.lease_next()
            if row is None:
                return None
            request = self._decode(*row)
        self.stats.inc_value("scheduler/dequeued/disk")
        self.stats.inc_value("scheduler/dequeued")
        return request

    def __len__(self) -> int:
        return self.state.queued + len(self._memory)

    def queue_sizes(self) -> dict[str, int]:
        return {"disk": self.state.queued, "memory": len(self._memory), "leased": self.state.leased}
