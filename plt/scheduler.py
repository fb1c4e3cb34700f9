"""A scheduler whose frontier and seen set live in the crash-safe job state.

Scrapy's default scheduler keeps JOBDIR queues that survive only a clean stop
(after SIGKILL the disk queue's header and ``active.json`` are stale) and a
``requests.seen`` file that already holds the fingerprints of requests that
were in flight. Here a request is queued, leased and settled in SQLite, so a
resumed job re-fetches exactly the requests that were leased when it died.

Deduplication is part of the enqueue (one ``INSERT OR IGNORE`` on the
fingerprint), so DUPEFILTER_CLASS is not used by this scheduler.
"""

from __future__ import annotations

import heapq
import itertools
import logging
from typing import TYPE_CHECKING, Any

import ujson
from scrapy import signals
from scrapy.core.scheduler import BaseScheduler
from scrapy.exceptions import CloseSpider
from scrapy.utils.request import request_from_dict

from plt.jobstate import JobState, JobStateError

if TYPE_CHECKING:
    from scrapy import Request, Spider
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

LEASE_KEY = "plt_lease"
# Set by an errback on a request whose failure is worth another run.
KEEP_LEASE_KEY = "plt_keep_lease"
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


def request_to_json(request: Request, spider: Spider) -> str:
    """JSON, not pickle: bytes fields are carried as latin-1 text."""
    d = request.to_dict(spider=spider)
    d["body"] = d["body"].decode("latin-1")
    d["headers"] = {
        k.decode("latin-1"): [v.decode("latin-1") for v in vs] for k, vs in d["headers"].items()
    }
    d["meta"] = {k: v for k, v in d["meta"].items() if k not in (LEASE_KEY, KEEP_LEASE_KEY)}
    return ujson.dumps(d, reject_bytes=True)


def request_from_json(data: str, spider: Spider) -> Request:
    d: dict[str, Any] = ujson.loads(data)
    d["body"] = d["body"].encode("latin-1")
    d["headers"] = {k: [v.encode("latin-1") for v in vs] for k, vs in d["headers"].items()}
    return request_from_dict(d, spider=spider)


class JobStateSchedulerMixin:
    """What the SQLite and the Redis schedulers share: opening the job state
    with one clear error, closing at once when asked, and a memory fallback."""

    crawler: Crawler
    stats: Any
    state: JobState

    def _init_job_state(self, crawler: Crawler) -> None:
        # Requests that cannot be stored as JSON stay in memory, like Scrapy's
        # own fallback; scheduler/unserializable counts them.
        self._memory: list[tuple[int, int, Request]] = []
        self._order = itertools.count()
        self._close_reason: str | None = None
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
        return True

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
                "Job %s is finished: %d products in %s. Nothing to do "
                "(-s PLT_JOB_RESET=1 starts it over).",
                state.jobdir,
                state.exported_count(),
                state.items_path,
            )
            self._close_reason = "finished"
            return
        if state.resumed:
            logger.info(
                "Resuming job %s: %d products done, %d partial items, %d requests queued "
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
        state = self.state
        if state.db is None:
            return
        pending = state.pending_count()
        finished = (
            reason == "finished"
            and not self.has_pending_requests()
            and not state.leased
            and not pending
        )
        if finished:
            state.set_meta("finished", True)
        self.stats.set_value("plt/pending_items", pending)
        if state.jobdir is not None:
            logger.info(
                "Job %s %s: %d products in %s",
                state.jobdir,
                "finished" if finished else f"stopped ({reason})",
                state.exported_count(),
                state.items_path,
            )
            if reason == "finished" and (state.leased or pending):
                self.stats.set_value("plt/job/incomplete", state.leased or pending)
                logger.warning(
                    "%d requests failed for now (network or server errors); run the "
                    "same command again to retry them.",
                    state.leased,
                )
        state.close()

    def has_pending_requests(self) -> bool:
        return self.state.queued > 0 or bool(self._memory)

    def enqueue_request(self, request: Request) -> bool:
        fp = dedupe_key(request, self.fingerprinter)
        try:
            data = request_to_json(request, self.spider)
        except (ValueError, TypeError, OverflowError) as exc:
            return self._enqueue_memory(request, fp, exc)
        product_id = request.cb_kwargs.get("product_id")
        if not isinstance(product_id, int):
            product_id = None
        replaces = request.meta.get(LEASE_KEY)  # a retry or redirect of a leased request
        if not self.state.add_request(fp, request.priority, data, product_id, replaces):
            self._log_dupe(request)
            return False
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
        row = self.state.lease_next()
        if row is None:
            return None
        lease_id, data = row
        request = request_from_json(data, self.spider)
        request.meta[LEASE_KEY] = lease_id
        self.stats.inc_value("scheduler/dequeued/disk")
        self.stats.inc_value("scheduler/dequeued")
        return request

    def __len__(self) -> int:
        return self.state.queued + len(self._memory)

    def queue_sizes(self) -> dict[str, int]:
        return {"disk": self.state.queued, "memory": len(self._memory), "leased": self.state.leased}
