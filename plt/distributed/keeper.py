"""Keeps a distributed worker's leases alive and the worker open while the crawl runs.

* Every third of PLT_LEASE_SECONDS it checks that the crawl's state in Redis is
  still the one the worker joined (plt.distributed.identity; if not, the
  worker stops with exit status 2), renews the leases this worker holds and
  puts back in the queue the expired leases of workers that died.
* Every PLT_REDIS_POLL_INTERVAL seconds it wakes the engine up if the shared
  queue has requests: other workers' requests wake up nobody here, and an
  idle engine looks at its scheduler only every 5 seconds otherwise.
* When the worker is idle, whatever it still holds failed for now (a network
  error kept its lease, as in the SQLite job state): those requests go to the
  crawl's failed set, which the next worker to start retries.
* An idle worker stays open (DontCloseSpider) while any request of the crawl is
  queued or leased anywhere, since a leased request can still yield more work
  or come back when its worker dies; a worker not seeding the crawl also waits
  up to PLT_REDIS_SEED_WAIT seconds for a seed. Then it closes, and the crawl
  is marked finished in Redis once nothing is left, failed included.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError
from scrapy import signals
from scrapy.exceptions import CloseSpider, DontCloseSpider, NotConfigured
from scrapy.utils.asyncio import create_looping_call

from plt import compat
from plt.distributed.state import DEFAULT_LEASE_SECONDS, RedisJobState
from plt.job.store import job_store

if TYPE_CHECKING:
    from typing import Self

    from scrapy import Spider
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

WAIT_LOG_INTERVAL = 30.0


class LeaseKeeper:
    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        if not settings.getbool("PLT_DISTRIBUTED"):
            raise NotConfigured
        state = job_store(crawler)
        if not isinstance(state, RedisJobState):
            raise NotConfigured  # PLT_DISTRIBUTED without the add-on's store
        self.state = state
        self.stats = crawler.stats
        lease_seconds = settings.getfloat("PLT_LEASE_SECONDS", DEFAULT_LEASE_SECONDS)
        self.interval = lease_seconds / 3
        self.seed_wait = settings.getfloat("PLT_REDIS_SEED_WAIT", 300.0)
        self.poll_interval = settings.getfloat("PLT_REDIS_POLL_INTERVAL", 0.5)
        self.crawler = crawler
        self._loops: list[Any] = []
        self._opened_at = time.monotonic()
        self._last_wait_log = 0.0
        crawler.signals.connect(self.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(self.spider_idle, signal=signals.spider_idle)
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def spider_opened(self, spider: Spider) -> None:
        self._opened_at = time.monotonic()
        self.stats.set_value("plt/redis/worker", self.state.worker)
        # Created here, not in __init__: they need the running reactor or loop.
        for func, interval in ((self.tick, self.interval), (self.poll, self.poll_interval)):
            if interval > 0:
                loop = create_looping_call(func)
                loop.start(interval, now=False)
                self._loops.append(loop)

    def spider_closed(self, spider: Spider) -> None:
        for loop in self._loops:
            if loop.running:
                loop.stop()

    def poll(self) -> None:
        engine = self.crawler.engine
        if not compat.engine_can_wake(engine) or not self.state.is_open:
            return
        try:
            queued = self.state.store.queued()
        except RedisError as exc:
            logger.warning("Redis: %s", exc)
            return
        if queued:
            compat.wake_engine(engine)  # the engine's own "look at the scheduler now"

    def tick(self) -> None:
        if not self.state.is_open:
            return
        try:
            self._renew_and_requeue()
        except RedisError as exc:  # the loop must survive a Redis hiccup
            logger.warning("Leases not renewed (Redis: %s); retrying in %.1f s", exc, self.interval)

    def _renew_and_requeue(self) -> None:
        if not self.state.check_crawl():
            return  # its state in Redis was lost: the worker stops
        held = self.state.renew()
        self.stats.max_value("plt/redis/held_max", held)
        if requeued := self.state.store.requeue_expired():
            self.stats.inc_value("plt/redis/requeued", requeued)
            logger.info("%d expired leases of stopped workers queued again", requeued)

    def spider_idle(self, spider: Spider) -> None:
        state = self.state
        if not state.is_open:
            return
        if failed := state.fail_held():
            self.stats.inc_value("plt/redis/failed", failed)
            logger.warning("%d requests failed for now; kept for the next run", failed)
        if requeued := state.store.requeue_expired():
            self.stats.inc_value("plt/redis/requeued", requeued)
        status = state.status()
        if status.lost:  # its error is logged: never closed as "finished"
            raise CloseSpider(reason="job_state_error")
        waiting_for_seed = not status.seeded and time.monotonic() - self._opened_at < self.seed_wait
        if status.done and not waiting_for_seed:
            return  # the worker closes; the crawl is finished if nothing failed
        self.stats.inc_value("plt/redis/idle_waits")
        now = time.monotonic()
        if now - self._last_wait_log >= WAIT_LOG_INTERVAL:
            self._last_wait_log = now
            logger.info(
                "Worker %s idle, crawl %s goes on: %s",
                state.worker,
                state.job,
                "waiting for a seed"
                if waiting_for_seed
                else f"{status.queued} requests queued, {status.leased} leased",
            )
        raise DontCloseSpider
