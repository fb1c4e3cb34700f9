"""The ledger's record in Redis (part of RedisJobState): attempts per request,
requests given up, and the items the listing showed, shared by every worker.

A retry or a redirect takes over its original's attempts (plt.distributed.lua
PUSH). A request given up is settled and counted: the crawl can still end,
with exit status 5.
"""

from __future__ import annotations

from typing import Any

from plt.job.sqlrecord import GIVEN_UP_ITEM, TO_DO, WITHDRAWN

FAILED_META = "failed_given_up"  # requests the ledger gave up


class RedisLedgerRecord:
    server: Any
    keys: Any
    held: dict[str, int | None]

    def settle(self, lease_id: Any) -> None:
        raise NotImplementedError

    def get_meta(self, key: str, default: Any = None) -> Any:
        raise NotImplementedError

    def record_attempt(self, lease_id: Any, error: str) -> int:
        """Runs this request failed in, this one included (carried over by retries)."""
        return int(self.server.hincrby(self.keys.attempts, lease_id, 1))

    def attempts(self, lease_id: Any) -> int:
        return int(self.server.hget(self.keys.attempts, lease_id) or 0)

    def fail_request(self, lease_id: Any, item_id: int | None) -> None:
        """Given up by the ledger: settled, counted, and its item with it."""
        self.settle(lease_id)
        self.server.hincrby(self.keys.meta, FAILED_META, 1)
        if item_id is not None:
            self.server.hset(self.keys.shown, item_id, GIVEN_UP_ITEM)

    def failed_total(self) -> int:
        value = self.get_meta(FAILED_META, 0)
        return value if isinstance(value, int) else 0

    def show_items(self, item_ids: list[int]) -> None:
        pipe = self.server.pipeline(transaction=False)
        for item_id in item_ids:
            pipe.hsetnx(self.keys.shown, item_id, TO_DO)
        pipe.execute()

    def item_shown(self, item_id: int) -> bool:
        return bool(self.server.hexists(self.keys.shown, item_id))

    def item_withdrawn(self, item_id: int) -> None:
        self.server.hset(self.keys.shown, item_id, WITHDRAWN)

    def settle_item(self, item_id: int) -> None:
        leases = [lease for lease, pid in self.held.items() if pid == item_id]
        for lease in leases:
            self.settle(lease)
