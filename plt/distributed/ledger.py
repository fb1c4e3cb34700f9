"""The ledger's record in Redis (part of RedisJobState): attempts per request,
requests given up, the items the listing showed, partial items and the export
record, shared by every worker.

A retry or a redirect takes over its original's attempts (the push step of
plt.distributed.batch). A request given up is kept aside with its item id, so
that PLT_JOB_RETRY_FAILED can queue it again.
"""

from __future__ import annotations

from typing import Any

import ujson

from plt.distributed.account import redis_account
from plt.distributed.batch import Recent, learn_exported
from plt.distributed.connection import outage_guard
from plt.job.sqlrecord import WITHDRAWN, Account

NO_ACCOUNT = Account(0, 0, 0, 0, 0, 0, 0, 0, 0, 0)  # Redis gone: nothing to account for


class RedisLedgerRecord:
    server: Any
    keys: Any
    store: Any
    worker: str
    id_field: str
    exported_recent: Recent
    pending_ahead: Recent
    held: dict[str, int | None]

    def settle(self, lease_id: Any) -> None:
        raise NotImplementedError

    def get_meta(self, key: str, default: Any = None) -> Any:
        raise NotImplementedError

    @outage_guard(0)
    def record_attempt(self, lease_id: Any, error: str) -> int:
        """Runs this request failed in, this one included (carried over by retries)."""
        return int(self.server.hincrby(self.keys.attempts, lease_id, 1))

    @outage_guard(None)
    def fail_request(self, lease_id: Any, item_id: int | None) -> None:
        """Given up by the ledger: kept aside (PLT_JOB_RETRY_FAILED), and its item with it."""
        self.held.pop(lease_id, None)
        self.store.give_up(lease_id, item_id)

    @outage_guard(None)
    def show_items(self, item_ids: list[int]) -> None:
        """Record them, and learn which are exported already (one call a page)."""
        for item_id, done in zip(item_ids, self.store.show(item_ids), strict=True):
            learn_exported(self.exported_recent, item_id, done)

    @outage_guard(False)
    def item_shown(self, item_id: int) -> bool:
        return bool(self.server.hexists(self.keys.shown, item_id))

    @outage_guard(None)
    def item_withdrawn(self, item_id: int) -> None:
        self.server.hset(self.keys.shown, item_id, WITHDRAWN)

    @outage_guard(None)
    def settle_item(self, item_id: int) -> None:
        leases = [lease for lease, pid in self.held.items() if pid == item_id]
        for lease in leases:
            self.settle(lease)

    @outage_guard(0)
    def retry_failed(self) -> int:
        """Requests given up by the ledger are queued again, attempts reset."""
        return self.store.retry_given_up()

    @outage_guard(None)
    def replace_data(self, lease_id: Any, data: str) -> None:
        self.store.replace_data(lease_id, data)

    @outage_guard(NO_ACCOUNT)
    def account(self) -> Account:
        return redis_account(self.server, self.keys, self.id_field)

    # -- partial items and exports -------------------------------------------

    @outage_guard(None)
    def put_pending(self, item_id: int, fields: dict[str, Any]) -> None:
        self.store.later("pending", item_id, ujson.dumps(fields))

    @outage_guard(None)
    def get_pending(self, item_id: int) -> dict[str, Any] | None:
        raw = self.pending_ahead.pop(item_id)  # came with its request's lease
        if raw is None:
            raw = self.server.hget(self.keys.pending, item_id)
        return ujson.loads(raw) if raw is not None else None

    @outage_guard(0)
    def pending_count(self) -> int:
        return int(self.server.hlen(self.keys.pending))

    @outage_guard(False)
    def is_exported(self, item_id: int) -> bool:
        # A recent answer will do: the export step itself records each item once,
        # whichever worker exports it (plt.distributed.batch).
        known = self.exported_recent.get(item_id)
        if known is None:
            known = bool(self.server.sismember(self.keys.exported, item_id))
            learn_exported(self.exported_recent, item_id, known)
        return known

    @outage_guard(0)
    def exported_count(self) -> int:
        return int(self.server.scard(self.keys.exported))

    @outage_guard(None)
    def mark_exported(self, item_id: int, items_offset: int, line: bytes = b"") -> None:
        """The item's line goes into the crawl's items stream with its record, in one
        step: this worker's own items file is a convenience, never the record."""
        leases = [lease for lease, pid in self.held.items() if pid == item_id]
        for lease in leases:
            del self.held[lease]
        self.store.later("export", item_id, self.worker, items_offset, line, *leases)
        self.exported_recent.put(item_id, True)
