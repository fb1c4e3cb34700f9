"""scrapy-redis' scheduler, queue and dupe filter, with leases.

Plain scrapy-redis marks a request seen and pops it from the shared queue
before it is fetched, so a worker killed with requests in flight loses them.
Here the seen check and the enqueue are one atomic step, a pop moves the
request into the lease set (with an expiry that its worker keeps renewing),
and only a durable outcome settles it; see plt.distributed.lua.

Requests are stored as JSON (plt.requestcodec), never pickled, and a stored
request that names code other than Scrapy's or the spider's is given up.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from scrapy_redis.dupefilter import RFPDupeFilter
from scrapy_redis.queue import PriorityQueue
from scrapy_redis.scheduler import Scheduler

from plt.distributed.merge import finish_job
from plt.distributed.state import RedisJobState
from plt.job.ledger import Ledger
from plt.jobstate import JobState, JobStateError
from plt.requestcodec import LEASE_KEY, request_from_json, request_to_json, run_meta
from plt.scheduler import JobStateSchedulerMixin, scoped_fingerprint

if TYPE_CHECKING:
    from scrapy import Request, Spider
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)


def is_seed(request: Request) -> bool:
    """A request of spider.start(), not a retry of one (which carries its lease)."""
    return bool(request.meta.get("is_start_request")) and LEASE_KEY not in request.meta


class LeaseDupeFilter(RFPDupeFilter):
    """The seen set in Redis, keyed by Scrapy's own request fingerprints."""

    def __init__(self, crawler: Crawler, state: RedisJobState) -> None:
        super().__init__(
            state.server, state.keys.seen, crawler.settings.getbool("DUPEFILTER_DEBUG")
        )
        self.fingerprinter = crawler.request_fingerprinter

    def request_fingerprint(self, request: Request) -> str:
        return scoped_fingerprint(request, self.fingerprinter)

    def close(self, reason: str = "") -> None:
        """The seen set belongs to the crawl, not to this worker: kept."""


class LeaseQueue(PriorityQueue):
    """The shared frontier; popping a request leases it to this worker."""

    def __init__(self, server: Any, spider: Spider, key: str, serializer: Any = None) -> None:
        super().__init__(server, spider, key, serializer)
        state = JobState.for_crawler(spider.crawler)
        assert isinstance(state, RedisJobState)
        self.state = state
        self.ledger = Ledger.for_crawler(spider.crawler)

    def _encode_request(self, request: Request) -> str:
        return request_to_json(request, self.spider)

    def _decode_request(self, encoded_request: str) -> Request:
        return request_from_json(encoded_request, self.spider)

    def __len__(self) -> int:
        return self.state.store.queued()

    def push(self, request: Request) -> None:
        self.push_unique(request, None)

    def push_unique(self, request: Request, fp: str | None) -> bool:
        """Queue unless seen, settling the lease of the request this one continues."""
        replaces = request.meta.get(LEASE_KEY)  # a retry or redirect of a leased request
        seed = is_seed(request)
        data = self._encode_request(request)
        return self.state.push(fp, request.priority, data, replaces, seed)

    def pop(self, timeout: int = 0) -> Request | None:
        row = self.lease()
        if row is None:
            return None
        request = self._decode_request(row[1])
        self.hold(row[0], request)
        return request

    def lease(self) -> tuple[str, str] | None:
        """Lease the next stored request: (lease, data), not decoded yet."""
        row = self.state.lease_next()
        if row is None:
            return None
        lease, data = row
        if data is None:  # settled by another worker between the two steps
            self.state.settle(lease)
            return None
        return lease, data

    def hold(self, lease: str, request: Request) -> None:
        request.meta[LEASE_KEY] = lease
        self.state.held[lease] = self.ledger.item_id(request)

    def clear(self) -> None:
        self.state.store.reset()


class RedisScheduler(JobStateSchedulerMixin, Scheduler):
    def __init__(self, crawler: Crawler) -> None:
        state = JobState.for_crawler(crawler)
        if not isinstance(state, RedisJobState):
            raise JobStateError("RedisScheduler needs PLT_DISTRIBUTED=True")
        super().__init__(
            server=state.server,
            persist=True,  # the crawl outlives any one worker
            queue_key=state.keys.queue,
            queue_cls=f"{LeaseQueue.__module__}.{LeaseQueue.__name__}",
            dupefilter=LeaseDupeFilter(crawler, state),
        )
        self.crawler = crawler
        self.stats = crawler.stats
        self.state = state
        self.seeds = crawler.settings.getbool("PLT_REDIS_SEED", True)
        self._init_job_state(crawler)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RedisScheduler:
        return cls(crawler)

    def open(self, spider: Spider) -> None:
        self.spider = spider
        if not self._open_job_state():
            return
        # Not Scheduler.open(): it logs through the deprecated Spider.log().
        self.queue = LeaseQueue(self.server, spider, self.queue_key)
        state = self.state
        self.stats.set_value("plt/job/requeued", state.requeued_on_open)
        self.stats.set_value("plt/redis/worker", state.worker)
        if state.get_meta("finished", False):
            logger.info(
                "Crawl %s is finished: %d products exported. Nothing to do "
                "(-s PLT_JOB_RESET=1 starts it over).",
                state.job,
                state.exported_count(),
            )
            self._close_reason = "finished"
            return
        logger.info(
            "Worker %s joins crawl %s: %d products done, %d requests queued, "
            "%d expired leases and %d failed requests queued again; items go to %s",
            state.worker,
            state.job,
            state.exported_count(),
            len(self.queue),
            state.requeued_on_open,
            state.retried_on_open,
            state.worker_items_path,
        )

    def close(self, reason: str) -> None:
        state = self.state
        if state.db is None:
            return
        self.stats.set_value("plt/redis/released", state.release_held())
        status = state.status()
        self.stats.set_value("plt/pending_items", status.pending)
        if reason == "finished" and status.failed:
            self.stats.set_value("plt/job/incomplete", status.failed)
        if reason == "finished" and (given_up := state.given_up_total()):
            self._given_up_error(given_up)
        elif reason == "finished" and status.done and not status.failed and state.failed_total():
            self.stats.set_value("plt/job/given_up_end", state.failed_total())
        if self._close_reason == "finished":
            pass  # finished before this worker started: nothing new to merge
        elif status.done:
            # Also when some requests failed for now: the items so far are merged.
            finish_job(state, status, self.crawler.settings)
        else:
            logger.info(
                "Worker %s stopped (%s); crawl %s: %d queued, %d leased, %d failed, "
                "%d products exported",
                state.worker,
                reason,
                state.job,
                status.queued,
                status.leased,
                status.failed,
                status.exported,
            )
        state.close()

    def _queued(self) -> int:
        # No queue when the job state could not be opened: the spider is closing.
        return len(self.queue) if self.state.db is not None else 0

    def has_pending_requests(self) -> bool:
        return bool(self._memory) or self._queued() > 0

    def __len__(self) -> int:
        return self._queued() + len(self._memory)

    def queue_sizes(self) -> dict[str, int]:
        return {
            "redis": self._queued(),
            "memory": len(self._memory),
            "leased": len(self.state.held),
        }

    def enqueue_request(self, request: Request) -> bool:
        if not self.seeds and is_seed(request):
            self.stats.inc_value("plt/redis/start_skipped")
            return False
        fp = None if request.dont_filter else self.df.request_fingerprint(request)
        try:
            added = self.queue.push_unique(request, fp)
        except (ValueError, TypeError, OverflowError) as exc:
            return self._enqueue_memory(request, fp, exc)
        if not added:
            self.df.log(request, self.spider)
            self.stats.inc_value("dupefilter/filtered")
            return False
        if run_meta(request):
            self._stash(request, request_to_json(request, self.spider))
        self.stats.inc_value("scheduler/enqueued/redis")
        self.stats.inc_value("scheduler/enqueued")
        return True

    def _enqueue_memory(self, request: Request, fp: str | None, exc: Exception) -> bool:
        # Other workers cannot fetch it: it stays here, marked seen.
        if fp is not None and not self.state.server.sadd(self.state.keys.seen, fp):
            return False
        return self._keep_in_memory(request, "Redis (other workers cannot fetch it)", exc)

    def next_request(self) -> Request | None:
        if self._memory:
            return self._next_from_memory()
        request = None
        while request is None:
            row = self.queue.lease() if self.state.db is not None else None
            if row is None:
                return None
            request = self._decode(*row)  # None: given up
        self.queue.hold(row[0], request)
        self.stats.inc_value("scheduler/dequeued/redis")
        self.stats.inc_value("scheduler/dequeued")
        return request
