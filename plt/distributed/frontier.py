"""The frontier of the Redis job store (part of RedisJobState): requests
queued, leased by this worker, settled or given up, through the atomic steps
of plt.distributed.store. The worker's own view is ``held``: the leases it
holds (bounded by its concurrency) and the item id each works for.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from plt.distributed.batch import Recent, learn_exported
from plt.distributed.connection import outage_guard
from plt.job import crash
from plt.job.jobdir import JobStateError


class RedisFrontier:
    server: Any
    keys: Any
    store: Any
    worker: str
    lease_seconds: float
    lost: JobStateError | None
    given_up: int
    id_field: str
    lease_batch: int
    held: dict[str, int | None]
    # Leased in a batch, not handed to the engine yet: (lease, stored JSON).
    ahead: deque[tuple[str, str]]
    # What came with a request leased ahead, until the scheduler holds it:
    # lease -> (raw partial item, whether its item is exported).
    leased_with: dict[str, tuple[bytes | None, bool | None]]
    # Partial items that came with their requests, by item id, until read.
    pending_ahead: Recent
    exported_recent: Recent

    def check_crawl(self) -> bool:
        raise NotImplementedError

    def get_meta(self, key: str, default: Any = None) -> Any:
        raise NotImplementedError

    @outage_guard(False)
    def add_request(
        self,
        fp: str | None,
        priority: int,
        data: str,
        item_id: int | None,
        replaces: Any = None,
        seed: bool = False,
    ) -> bool:
        if replaces is not None:
            self.held.pop(replaces, None)
        added = self.store.push(fp, priority, data, replaces, seed)
        if added:
            crash.point("after_store")
        return added

    @outage_guard(False)
    def add_seen(self, fp: str) -> bool:
        return bool(self.server.sadd(self.keys.seen, fp))

    @outage_guard(None)
    def lease_next(self) -> tuple[str, str] | None:
        if self.lost is not None:
            return None
        if not self.ahead:
            self._lease_batch()
        if self.ahead:
            return self.ahead.popleft()
        self.check_crawl()  # an empty queue, or a vanished one?
        return None

    def _lease_batch(self) -> None:
        rows = self.store.pop_many(self.worker, self.lease_seconds, self.lease_batch, self.id_field)
        for row in rows:
            self.held[row.lease] = None
            crash.point("after_lease")
            if row.data is None:  # settled by another worker meanwhile
                self.settle(row.lease)
                continue
            if row.pending is not None or row.exported is not None:
                self.leased_with[row.lease] = (row.pending, row.exported)
            self.ahead.append((row.lease, row.data))

    def hold(self, lease: Any, item_id: int | None) -> None:
        self.held[lease] = item_id
        pending, exported = self.leased_with.pop(lease, (None, None))
        if item_id is None:
            return
        if pending is not None:
            self.pending_ahead.put(item_id, pending)
        if exported is not None:  # learnt with the lease: no round trip to ask
            learn_exported(self.exported_recent, item_id, exported)

    @outage_guard(0)
    def queued_count(self) -> int:
        return self.store.queued() + len(self.ahead)

    def leased_count(self) -> int:
        return len(self.held) - len(self.ahead)  # handed to the engine

    @outage_guard(None)
    def settle(self, lease_id: Any) -> None:
        self.held.pop(lease_id, None)
        self.store.later("settle", lease_id)

    @outage_guard(None)
    def give_up(self, lease_id: Any) -> None:
        """An undecodable request: settled, and counted so that no run finishes silently."""
        self.settle(lease_id)
        self.server.hincrby(self.keys.meta, "given_up", 1)  # its JSON is a plain int
        self.given_up += 1

    @outage_guard(0)
    def given_up_count(self) -> int:
        value = self.get_meta("given_up", 0)
        return value if isinstance(value, int) else 0

    @outage_guard(0)
    def renew(self) -> int:
        """Extend this worker's leases; forget those another worker took over."""
        lost = self.store.renew(self.worker, self.lease_seconds, list(self.held))
        for lease in lost:
            self.held.pop(lease, None)
        return len(self.held)

    @outage_guard(0)
    def fail_held(self) -> int:
        """Called when the worker is idle: what it still holds failed for now
        (what it leased ahead, untried, goes back to the queue)."""
        untried = [lease for lease, _ in self.ahead]
        self.ahead.clear()
        self.leased_with.clear()
        leases = [lease for lease in self.held if lease not in untried]
        self.held = {}
        self.store.give_back(self.worker, untried, failed=False)
        return self.store.give_back(self.worker, leases, failed=True)

    @outage_guard(0)
    def release_held(self) -> int:
        """The worker stops: what it holds (leased ahead too) goes back to the queue."""
        leases, self.held = list(self.held), {}
        self.ahead.clear()
        self.leased_with.clear()
        return self.store.give_back(self.worker, leases, failed=False)
