"""The Redis job store: the state of a distributed crawl, behind plt.job.store's
interface (PLT_JOB_STORE, set by plt.distributed.addon).

The scheduler, the ledger, the exporter and the spider call the same methods
as on the SQLite store; here the frontier, the partial items, the export record
and the crawl's meta live in Redis, shared by every worker of the crawl. The
only thing kept in the worker is the set of leases it holds, which is bounded
by its concurrency.

Each worker appends its items to ``<JOBDIR>/items-<worker>.jsonl`` and marks a
product exported in Redis right after its line is flushed.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections import deque
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ujson
from redis.exceptions import RedisError

from plt.distributed.batch import Recent
from plt.distributed.connection import (
    DEFAULT_OUTAGE_SECONDS,
    outage_error,
    outage_guard,
    reachable,
    redis_client,
)
from plt.distributed.frontier import RedisFrontier
from plt.distributed.identity import CrawlGuard, Retailer
from plt.distributed.ledger import RedisLedgerRecord
from plt.distributed.names import job_name, worker_items_file, worker_name
from plt.distributed.store import SCHEMA_VERSION, CrawlStatus, JobKeys, LeaseStore
from plt.job.itemsfile import DEFAULT_ID_FIELD, ITEMS_FILE
from plt.job.jobdir import JobStateError, lock_jobdir
from plt.job.store import JobStore

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

STORE_PATH = "plt.distributed.state.RedisJobState"
# Renewed every third of it, so only a stalled or dead worker lets a lease
# expire; a dead worker's requests are queued again within 30 to 40 s.
DEFAULT_LEASE_SECONDS = 30.0
DEFAULT_FINISHED_TTL = 7 * 24 * 3600  # PLT_REDIS_FINISHED_TTL
DEFAULT_LEASE_BATCH = 8  # PLT_REDIS_LEASE_BATCH: requests leased per call
# Bounds of what a worker remembers between calls (plt.distributed.batch.Recent).
PENDING_AHEAD_SIZE, PENDING_AHEAD_TTL = 1024, 600.0
EXPORTED_RECENT_SIZE = 50_000
_CONSTANT_META = frozenset({"started_at", "schema"})
# What the worker reads of a crawl it cannot reach: nothing is known to be done.
LOST_STATUS = CrawlStatus(0, 0, 0, 0, False, False, 0, lost=True)


class RedisJobState(RedisFrontier, RedisLedgerRecord, JobStore):
    queue_name = "redis"
    shared = True

    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        super().__init__(settings.get("JOBDIR"), reset=settings.getbool("PLT_JOB_RESET"))
        self.settings = settings
        self.id_field = settings.get("PLT_JOB_ITEM_ID_FIELD") or DEFAULT_ID_FIELD
        self.seeds = settings.getbool("PLT_REDIS_SEED", True)
        self.db: Any = None
        self.job = job_name(settings)
        self.worker = worker_name(settings)
        self.lease_seconds = settings.getfloat("PLT_LEASE_SECONDS", DEFAULT_LEASE_SECONDS)
        self.keys = JobKeys.for_job(self.job)
        self.redis_url = settings.get("REDIS_URL") or ""
        self.outage_seconds = settings.getfloat("PLT_REDIS_OUTAGE_SECONDS", DEFAULT_OUTAGE_SECONDS)
        self.server = redis_client(self.redis_url, self.outage_seconds)
        self.store = LeaseStore(self.server, self.keys)
        retailer = Retailer.from_settings(settings)
        self.guard = CrawlGuard(self.server, self.keys, self.job, retailer, self.jobdir)
        self.finished_ttl = settings.getint("PLT_REDIS_FINISHED_TTL", DEFAULT_FINISHED_TTL)
        self.lost: JobStateError | None = None
        # lease -> product id (None for listing pages): what this worker holds.
        self.held: dict[str, int | None] = {}
        self.lease_batch = max(1, settings.getint("PLT_REDIS_LEASE_BATCH", DEFAULT_LEASE_BATCH))
        self.ahead: deque[tuple[str, str]] = deque()
        self.leased_with: dict[str, tuple[bytes | None, bool | None]] = {}
        self.pending_ahead = Recent(PENDING_AHEAD_SIZE, PENDING_AHEAD_TTL, time.monotonic)
        self.exported_recent = Recent(EXPORTED_RECENT_SIZE, math.inf, time.monotonic)
        self._meta_cache: dict[str, Any] = {}
        self.retried_on_open = 0
        self.given_up = 0

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RedisJobState:
        return cls(crawler)

    @property
    def is_open(self) -> bool:
        return self.db is not None

    @property
    def takes_seeds(self) -> bool:
        return self.seeds

    @property
    def worker_items_path(self) -> Path | None:
        return self.jobdir / worker_items_file(self.worker) if self.jobdir else None

    # -- opening and closing -------------------------------------------------

    def open(self) -> None:
        if self.db is not None:
            return
        if (why := reachable(self.redis_url)) is not None:
            raise JobStateError(
                f"Redis at REDIS_URL is not reachable ({why}); start it or fix REDIS_URL."
            )
        if self.jobdir is not None:
            self.jobdir.mkdir(parents=True, exist_ok=True)
            self._lock()
        if self.reset:
            self._reset()
        self.db = self.server  # "open", as the SQLite state's db
        version = self.get_meta("schema", SCHEMA_VERSION)
        if version != SCHEMA_VERSION:
            self.close()
            raise JobStateError(
                f"The crawl {self.job} in Redis has schema version {version}; this PLT "
                f"reads version {SCHEMA_VERSION}. Use another PLT_REDIS_JOB or "
                f"-s PLT_JOB_RESET=1."
            )
        try:
            self.guard.join(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        except JobStateError:
            self.close()
            raise
        if self.guard.expired is not None:  # finished, and its keys expired since
            self._meta_cache["finished"] = True
            return
        self.resumed = not self.guard.created
        self.server.hsetnx(self.keys.meta, "schema", SCHEMA_VERSION)
        self.store.renew(self.worker, self.lease_seconds, [])  # registers the worker
        self._reconcile()
        if not self.get_meta("finished", False):
            self.retried_on_open = self.store.retry_failed()
            self.requeued_on_open = self.store.requeue_expired()

    def _lock(self) -> None:
        assert self.jobdir is not None
        path = self.jobdir / self._lock_name
        busy = (
            f"Worker {self.worker} is already running on {self.jobdir} "
            f"(lock {path}); give each worker its own PLT_WORKER_NAME."
        )
        self._lock_fd = lock_jobdir(self.jobdir, path, busy)

    def _reset(self) -> None:
        removed = self.store.reset()
        self.guard.record.remove()
        if self.jobdir is not None:
            for path in [self.jobdir / ITEMS_FILE, *self.jobdir.glob(worker_items_file("*"))]:
                path.unlink(missing_ok=True)
        logger.info(
            "PLT_JOB_RESET: %d Redis keys of crawl %s and the items in %s removed",
            removed,
            self.job,
            self.jobdir,
        )

    def _reconcile(self) -> None:
        """A worker that restarts under the same name trims its own items file to
        what Redis recorded: the record (and the item) is in Redis, the file is a
        copy, and lines written but not recorded are fetched again."""
        path = self.worker_items_path
        if path is None or not path.exists():
            return
        offset = int(self.server.hget(self.keys.offsets, self.worker) or 0)
        size = path.stat().st_size
        if size > offset:
            with path.open("r+b") as f:
                f.truncate(offset)
            self.repaired_bytes = size - offset
            logger.info(
                "%d bytes of %s not recorded in Redis cut off; those items are fetched again",
                self.repaired_bytes,
                path,
            )

    def close(self) -> None:
        if self.db is not None and self.write_error is None:
            try:
                self.release_held()  # and the steps that wait go with it
                self.store.flush()
            except RedisError as exc:
                logger.warning("Leases not given back (%s); they expire instead", exc)
        self.db = None
        if self._lock_fd is not None:
            assert self.jobdir is not None
            # Names are per process by default: do not leave one lock file per run.
            (self.jobdir / self._lock_name).unlink(missing_ok=True)
            os.close(self._lock_fd)
            self._lock_fd = None

    @property
    def _lock_name(self) -> str:
        return f".worker-{self.worker}.lock"

    # -- meta ----------------------------------------------------------------

    def get_meta(self, key: str, default: Any = None) -> Any:
        if key in self._meta_cache:
            return self._meta_cache[key]
        if self.write_error is not None:
            return default
        try:
            raw = self.server.hget(self.keys.meta, key)
        except RedisError as exc:
            self.fail(outage_error(self.outage_seconds, exc))
            return default
        value = ujson.loads(raw) if raw is not None else default
        if raw is not None and key in _CONSTANT_META:
            self._meta_cache[key] = value  # read once per item otherwise
        return value

    @outage_guard(None)
    def set_meta(self, key: str, value: Any) -> None:
        self.server.hset(self.keys.meta, key, ujson.dumps(value))

    @outage_guard(False)
    def mark_finished(self) -> bool:
        if self.store.finish():
            return True
        logger.warning(
            "Crawl %s is not finished after all: another worker queued or leased work meanwhile",
            self.job,
        )
        return False

    @outage_guard(False)
    def idle(self) -> bool:
        # A crawl that was never seeded has not started, whatever is queued;
        # one whose state was lost is not over, it is gone.
        status = self.status()
        return status.done and status.seeded and not status.lost

    @outage_guard(None)
    def crawl_over(self, finished: bool, settings: Any) -> None:
        from plt.distributed.merge import finish_job  # merge imports this module

        finish_job(self, self.status(), settings)

    def check_crawl(self) -> bool:
        """False once the crawl's state in Redis is lost: the crawl then stops (on_error)."""
        if self.lost is None and (lost := self.guard.check()) is not None:
            self.lost = lost
            self.fail(lost)
        return self.lost is None

    @property
    def where(self) -> str:
        return f"the Redis crawl {self.job}"

    @property
    def name(self) -> str:
        return f"crawl {self.job}"

    def opened_line(self) -> str:
        return (
            f"Worker {self.worker} joins crawl {self.job}: {self.exported_count()} items done, "
            f"{self.queued_count()} requests queued, {self.requeued_on_open} expired leases "
            f"and {self.retried_on_open} failed requests queued again; items go to "
            f"{self.worker_items_path}"
        )

    @outage_guard(LOST_STATUS)
    def status(self) -> CrawlStatus:
        if (expired := self.guard.expired) is not None:
            return CrawlStatus(0, 0, 0, 0, True, True, expired.finished_exported or 0)
        status = self.store.status()
        if not self.check_crawl():  # after reading it: a crawl lost before looks empty
            return replace(status, lost=True)
        if status.finished:
            self.store.expire(self.finished_ttl)
            self.guard.finished(status.exported)
        return status

    @outage_guard(0)
    def exported_count(self) -> int:
        if (expired := self.guard.expired) is not None:
            return expired.finished_exported or 0
        return super().exported_count()
