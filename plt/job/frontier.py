"""The frontier of a job's SQLite state (part of SQLiteJobStore): requests queued,
leased, settled or given up, one committed transaction each.

Lease lifecycle of a request row: QUEUED -> LEASED (taken by the scheduler)
-> SETTLED (its outcome is durable), FAILED (given up by the ledger) or
GIVEN_UP (it cannot be decoded). A retry or a redirect takes over its
original's row: the same logical request, with its attempts.
"""

from __future__ import annotations

import sqlite3

from plt.job import crash
from plt.job.itemsrecord import GIVEN_UP, LEASED, QUEUED, SETTLED
from plt.job.jobdir import guarded_write
from plt.job.sqlrecord import GIVEN_UP_ITEM


class FrontierRecord:
    db: sqlite3.Connection | None
    queued: int
    leased: int
    given_up: int

    @guarded_write(False)
    def add_request(
        self,
        fp: str | None,
        priority: int,
        data: str,
        item_id: int | None,
        replaces: int | None = None,
        seed: bool = False,
    ) -> bool:
        """Queue a request unless its fingerprint was seen; True when queued.

        ``replaces`` is the lease of the request this one continues (a retry, a
        redirect): the same logical request, so it takes over the row, its
        attempts and its place in the job, whatever its fingerprint. ``seed``
        (a request of spider.start()) makes no difference here.
        """
        assert self.db is not None
        if replaces is not None:
            cur = self.db.execute(
                "UPDATE requests SET state=?, priority=?, data=?, item_id=? WHERE id=? AND state=?",
                (QUEUED, priority, data, item_id, replaces, LEASED),
            )
            if cur.rowcount:
                self.leased -= 1
                self.queued += 1
                crash.point("after_store")
                return True
        cur = self.db.execute(
            "INSERT OR IGNORE INTO requests (fp, state, priority, item_id, data) "
            "VALUES (?, ?, ?, ?, ?)",
            (fp, QUEUED, priority, item_id, data),
        )
        added = cur.rowcount > 0
        if added:
            self.queued += 1
            crash.point("after_store")
        return added

    @guarded_write(False)
    def add_seen(self, fp: str) -> bool:
        """Record a fingerprint without queueing anything; True when it is new."""
        assert self.db is not None
        cur = self.db.execute(
            "INSERT OR IGNORE INTO requests (fp, state, priority) VALUES (?, ?, 0)",
            (fp, SETTLED),
        )
        return cur.rowcount > 0

    @guarded_write(None)
    def lease_next(self) -> tuple[int, str] | None:
        assert self.db is not None
        row = self.db.execute(
            "SELECT id, data FROM requests WHERE state=? ORDER BY priority DESC, id LIMIT 1",
            (QUEUED,),
        ).fetchone()
        if row is None:
            return None
        self.db.execute("UPDATE requests SET state=? WHERE id=?", (LEASED, row[0]))
        self.queued -= 1
        self.leased += 1
        crash.point("after_lease")
        return row

    @guarded_write(None)
    def settle(self, lease_id: int) -> None:
        """The request's outcome is durable: it is never fetched again in this job."""
        assert self.db is not None
        self._settle(lease_id)

    @guarded_write(None)
    def give_up(self, lease_id: int) -> None:
        """The leased request cannot be decoded: kept, never fetched, never finished."""
        assert self.db is not None
        cur = self.db.execute(
            "UPDATE requests SET state=? WHERE id=? AND state=?", (GIVEN_UP, lease_id, LEASED)
        )
        # Its item, if the row names one, is given up with it.
        self.db.execute(
            "UPDATE shown SET fate=? WHERE item_id=(SELECT item_id FROM requests WHERE id=?)",
            (GIVEN_UP_ITEM, lease_id),
        )
        self.leased -= cur.rowcount
        self.given_up += cur.rowcount

    def _settle(self, lease_id: int) -> None:
        assert self.db is not None
        cur = self.db.execute(
            "UPDATE requests SET state=?, data=NULL WHERE id=? AND state=?",
            (SETTLED, lease_id, LEASED),
        )
        self.leased -= cur.rowcount

    @guarded_write(None)
    def replace_data(self, lease_id: int, data: str) -> None:
        """A leased request kept for the next run is stored as ``data`` instead."""
        assert self.db is not None
        self.db.execute(
            "UPDATE requests SET data=? WHERE id=? AND state=?", (data, lease_id, LEASED)
        )
