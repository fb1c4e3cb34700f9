"""The scheduler: its frontier and seen set live in the crash-safe job store.

One scheduler over a store interface (plt.job.store), as Scrapy's own is one
scheduler over pluggable queues: SQLite in JOBDIR by default, Redis in
distributed mode.

Scrapy's default scheduler keeps JOBDIR queues that survive only a clean stop
(after SIGKILL the disk queue's header and ``active.json`` are stale) and a
``requests.seen`` file that already holds the fingerprints of requests that
were in flight. Here a request is queued, leased and settled in SQLite, so a
resumed job re-fetches exactly the requests that were leased when it died.

Deduplication is part of the enqueue (one ``INSERT OR IGNORE`` on the
fingerprint), so DUPEFILTER_CLASS is not used by this scheduler.

A stored request that cannot be decoded (garbage, or naming code that is not
Scrapy's or the spider's, see plt.job.requestcodec) is given up: one warning, the
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
from plt.job.jobdir import FAILED_FILE, JobStateError
from plt.job.ledger import Ledger
from plt.job.requestcodec import KEEP_LEASE_KEY as KEEP_LEASE_KEY
from plt.job.requestcodec import (
    LEASE_KEY,
    UndecodableRequest,
    request_from_json,
    request_to_json,
    run_meta,
)
from plt.job.store import JobStore, job_store

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


def is_seed(request: Request) -> bool:
    """A request of spider.start(), not a retry of one (which carries its lease)."""
    return bool(request.meta.get("is_start_request")) and LEASE_KEY not in request.meta


class JobScheduler(BaseScheduler):
    def __init__(self, crawler: Crawler) -> None:
        compat.check()  # once per process: Scrapy's private names are all there
        self.crawler = crawler
        self.stats = crawler.stats
        self.state: JobStore = job_store(crawler)
        self.ledger = Ledger.for_crawler(crawler)
        self.fingerprinter = crawler.request_fingerprinter
        self.debug_dupes = crawler.settings.getbool("DUPEFILTER_DEBUG")
        self._logged_dupe = False
        # Requests that cannot be stored as JSON stay in memory, like Scrapy's
        # own fallback; scheduler/unserializable counts them.
        self._memory: list[tuple[int, int, Request]] = []
        self._order = itertools.count()
        self._close_reason: str | None = None
        self._closing = False
        # Scrapy's retry and redirect counts of queued requests, by their
        # stored JSON: for this run only (plt.job.requestcodec.RUN_META).
        self._run_meta: dict[str, dict[str, Any]] = {}
        # CloseSpider raised from open() skips opening the scraper, and closing
        # then fails; raised from spider_opened it closes cleanly.
        crawler.signals.connect(self.spider_opened, signal=signals.spider_opened)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> JobScheduler:
        return cls(crawler)

    # -- opening and closing -------------------------------------------------

    def open(self, spider: Spider) -> None:
        self.spider = spider
        state = self.state
        try:
            state.open()
        except JobStateError as exc:
            logger.error("%s", exc)
            self.stats.set_value("plt/job/state_error", str(exc))
            self._close_reason = "job_state_error"
            return
        state.on_error = self._job_state_failed
        if state.jobdir is None and not state.shared:
            return  # a job in memory: nothing to resume, nothing to say
        self.stats.set_value("plt/job/requeued", state.requeued_on_open)
        if state.get_meta("finished", False):
            logger.info(
                "Job %s is finished: %d items exported. Nothing to do "
                "(-s PLT_JOB_RESET=1 starts it over).",
                state.name,
                state.exported_count(),
            )
            self._close_reason = "finished"
            return
        if why_not := retry_failed_on_open(state, self.crawler.settings, state.where):
            logger.error("%s", why_not)
            self.stats.set_value("plt/job/given_up_end", state.get_meta("ended_given_up"))
            self._close_reason = "given_up"
            return
        logger.info("%s", state.opened_line())

    def spider_opened(self, spider: Spider) -> None:
        if self._close_reason:
            raise CloseSpider(self._close_reason)

    def _job_state_failed(self, error: JobStateError) -> None:
        """A write failed mid-crawl: one line, and the crawl stops."""
        logger.error("%s", error)
        self.stats.set_value("plt/job/state_error", str(error))
        if not self._closing:
            self._closing = True
            deferred_from_coro(self.crawler.engine.close_spider_async(reason="job_state_error"))

    def close(self, reason: str) -> None:
        self._closing = True
        state = self.state
        if not state.is_open:
            return
        if released := state.release_held():
            self.stats.set_value("plt/job/released", released)
        pending = state.pending_count()
        self.stats.set_value("plt/pending_items", pending)
        if self._close_reason in ("given_up", "finished"):
            state.close()  # nothing was done in this run
            return
        # The job is over for this run when nothing is queued or in flight
        # anywhere (a failed request kept for the next run is not in flight).
        over = reason == "finished" and not self._memory and state.idle()
        done = close_account(state, self.stats, "finished" if over else reason)
        finished = over and done and not pending and state.mark_finished()
        if over:
            state.crawl_over(finished, self.crawler.settings)
        if state.jobdir is not None or state.shared:
            logger.info(
                "Job %s %s: %d items exported%s",
                state.name,
                "finished" if finished else f"stopped ({reason})",
                state.exported_count(),
                f" to {state.items_path}" if state.items_path and not state.shared else "",
            )
        if reason == "finished" and (given_up := state.given_up_count()):
            self._given_up_error(given_up)
        state.close()

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

    # -- enqueue and dequeue -------------------------------------------------

    def has_pending_requests(self) -> bool:
        return bool(self._memory) or (self.state.is_open and self.state.queued_count() > 0)

    def __len__(self) -> int:
        queued = self.state.queued_count() if self.state.is_open else 0
        return queued + len(self._memory)

    def queue_sizes(self) -> dict[str, int]:
        state = self.state
        return {
            state.queue_name: state.queued_count() if state.is_open else 0,
            "memory": len(self._memory),
            "leased": state.leased_count() if state.is_open else 0,
        }

    def enqueue_request(self, request: Request) -> bool:
        seed = is_seed(request)
        if seed and not self.state.takes_seeds:
            self.stats.inc_value("plt/job/start_skipped")
            return False
        fp = dedupe_key(request, self.fingerprinter)
        try:
            data = request_to_json(request, self.spider)
        except (ValueError, TypeError, OverflowError) as exc:
            return self._enqueue_memory(request, fp, exc)
        item_id = self.ledger.item_id(request)
        replaces = request.meta.get(LEASE_KEY)  # a retry or redirect of a leased request
        if not self.state.add_request(fp, request.priority, data, item_id, replaces, seed):
            self._log_dupe(request)
            return False
        if extra := run_meta(request):
            self._run_meta[data] = extra
        self.stats.inc_value(f"scheduler/enqueued/{self.state.queue_name}")
        self.stats.inc_value("scheduler/enqueued")
        return True

    def _enqueue_memory(self, request: Request, fp: str | None, exc: Exception) -> bool:
        # Still recorded as seen, so the request is not queued twice.
        if fp is not None and not self.state.add_seen(fp):
            self._log_dupe(request)
            return False
        logger.warning(
            "Unable to store %s in %s (%s); kept in memory", request, self.state.where, exc
        )
        self.stats.inc_value("scheduler/unserializable")
        self.stats.inc_value("scheduler/enqueued/memory")
        self.stats.inc_value("scheduler/enqueued")
        heapq.heappush(self._memory, (-request.priority, next(self._order), request))
        return True

    def _log_dupe(self, request: Request) -> None:
        self.stats.inc_value("dupefilter/filtered")
        if self.debug_dupes or not self._logged_dupe:
            self._logged_dupe = True
            logger.debug("Filtered duplicate request: %s", request)

    def next_request(self) -> Request | None:
        if self._memory:
            self.stats.inc_value("scheduler/dequeued/memory")
            self.stats.inc_value("scheduler/dequeued")
            return heapq.heappop(self._memory)[2]
        if not self.state.is_open:
            return None
        request = None
        while request is None:
            row = self.state.lease_next()
            if row is None:
                return None
            request = self._decode(*row)
        self.stats.inc_value(f"scheduler/dequeued/{self.state.queue_name}")
        self.stats.inc_value("scheduler/dequeued")
        return request

    def _decode(self, lease: Any, data: str) -> Request | None:
        """The stored request, or None when it is given up (never imports anything)."""
        try:
            request = request_from_json(data, self.spider)
        except UndecodableRequest as exc:
            self.ledger.undecodable(lease, data, exc)
            return None
        if extra := self._run_meta.pop(data, None):
            request.meta.update(extra)
        request.meta[LEASE_KEY] = lease
        self.state.hold(lease, self.ledger.item_id(request))
        return request
