"""The ledger's record in a job's SQLite state (part of SQLiteJobStore).

Per request: how many runs it failed in, and its last error. Per item id the
listing showed: whether it is still to do, withdrawn or given up (exported
items are in the export record). Every change is one committed transaction.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

import ujson

from plt.job.itemsrecord import FAILED, LEASED, QUEUED, SETTLED
from plt.job.jobdir import guarded_write

LEDGER_SCHEMA = """
CREATE TABLE IF NOT EXISTS attempts (
    request INTEGER PRIMARY KEY, count INTEGER NOT NULL, last_error TEXT
);
CREATE TABLE IF NOT EXISTS shown (item_id INTEGER PRIMARY KEY, fate INTEGER NOT NULL);
"""
# The fate of an item the listing showed, besides exported.
TO_DO, WITHDRAWN, GIVEN_UP_ITEM = 0, 1, 2


@dataclass(frozen=True)
class Account:
    """Every item the listing showed, by fate; and the requests left."""

    shown: int
    exported: int
    withdrawn: int
    given_up: int
    failed_for_now: int  # to do, with a request kept for the next run
    not_fetched: int  # to do, with a request still queued
    no_request: int  # to do, with no request left (given up or replaced)
    requests_left: int  # queued or kept, of any kind (listing pages too)
    requests_given_up: int  # of any kind
    others_left: int  # requests left that carry no item id (listing pages)

    @property
    def missing(self) -> int:
        return self.failed_for_now + self.not_fetched + self.no_request


class LedgerRecord:
    db: sqlite3.Connection | None
    leased: int
    queued: int
    failed: int

    @guarded_write(0)
    def record_attempt(self, lease_id: int, error: str) -> int:
        """The leased request failed in this run: its attempts so far, this one included."""
        assert self.db is not None
        row = self.db.execute(
            "INSERT INTO attempts (request, count, last_error) VALUES (?, 1, ?) "
            "ON CONFLICT (request) DO UPDATE SET count=count+1, last_error=excluded.last_error "
            "RETURNING count",
            (lease_id, error),
        ).fetchone()
        return int(row[0])

    def attempts(self, lease_id: int) -> int:
        assert self.db is not None
        row = self.db.execute("SELECT count FROM attempts WHERE request=?", (lease_id,)).fetchone()
        return int(row[0]) if row else 0

    @guarded_write(None)
    def fail_request(self, lease_id: int, item_id: int | None) -> None:
        """Given up: never fetched again (unless asked), and its item with it."""
        assert self.db is not None
        with self.db:
            self.db.execute("BEGIN")
            cur = self.db.execute(
                "UPDATE requests SET state=? WHERE id=? AND state=?", (FAILED, lease_id, LEASED)
            )
            if item_id is not None:
                self._set_fate(item_id, GIVEN_UP_ITEM)
        self.leased -= cur.rowcount
        self.failed += cur.rowcount

    @guarded_write(None)
    def show_items(self, item_ids: list[int]) -> None:
        assert self.db is not None
        self.db.executemany(
            "INSERT OR IGNORE INTO shown (item_id, fate) VALUES (?, ?)",
            [(i, TO_DO) for i in item_ids],
        )

    def item_shown(self, item_id: int) -> bool:
        assert self.db is not None
        row = self.db.execute("SELECT 1 FROM shown WHERE item_id=?", (item_id,)).fetchone()
        return row is not None

    @guarded_write(None)
    def item_withdrawn(self, item_id: int) -> None:
        self._set_fate(item_id, WITHDRAWN)

    def _set_fate(self, item_id: int, fate: int) -> None:
        assert self.db is not None
        self.db.execute(
            "INSERT INTO shown (item_id, fate) VALUES (?, ?) "
            "ON CONFLICT (item_id) DO UPDATE SET fate=excluded.fate",
            (item_id, fate),
        )

    @guarded_write(None)
    def settle_item(self, item_id: int) -> None:
        """The item is in the items file already: its open leases are settled."""
        assert self.db is not None
        cur = self.db.execute(
            "UPDATE requests SET state=?, data=NULL WHERE item_id=? AND state=?",
            (SETTLED, item_id, LEASED),
        )
        self.leased -= cur.rowcount

    @guarded_write(0)
    def retry_failed(self) -> int:
        """Requests given up by the ledger are queued again, with their attempts reset."""
        assert self.db is not None
        with self.db:
            self.db.execute("BEGIN")
            self.db.execute(
                "DELETE FROM attempts WHERE request IN (SELECT id FROM requests WHERE state=?)",
                (FAILED,),
            )
            cur = self.db.execute("UPDATE requests SET state=? WHERE state=?", (QUEUED, FAILED))
            self.db.execute("UPDATE shown SET fate=? WHERE fate=?", (TO_DO, GIVEN_UP_ITEM))
        self.failed -= cur.rowcount
        self.queued += cur.rowcount
        return cur.rowcount

    def failed_requests(self, limit: int = 5) -> list[tuple[str, int, str]]:
        """(url, attempts, last error) of requests given up, for messages."""
        assert self.db is not None
        rows = self.db.execute(
            "SELECT r.data, COALESCE(a.count, 0), COALESCE(a.last_error, '') FROM requests r "
            "LEFT JOIN attempts a ON a.request = r.id WHERE r.state=? ORDER BY r.id LIMIT ?",
            (FAILED, limit),
        ).fetchall()
        return [(_url(data), count, error) for data, count, error in rows]

    def account(self) -> Account:
        assert self.db is not None
        q = self.db.execute
        shown = q("SELECT COUNT(*) FROM shown").fetchone()[0]
        exported = q(
            "SELECT COUNT(*) FROM shown s JOIN exported e ON e.item_id = s.item_id"
        ).fetchone()[0]
        fates = dict(
            q(
                "SELECT s.fate, COUNT(*) FROM shown s WHERE NOT EXISTS "
                "(SELECT 1 FROM exported e WHERE e.item_id = s.item_id) GROUP BY s.fate"
            ).fetchall()
        )
        # An item to do is failed for now when it has a kept request (or a
        # partial item waiting for one); not fetched when only queued ones.
        to_do = (
            "FROM shown s WHERE s.fate=0 AND NOT EXISTS "
            "(SELECT 1 FROM exported e WHERE e.item_id = s.item_id)"
        )
        kept = q(
            f"SELECT COUNT(*) {to_do} AND (EXISTS (SELECT 1 FROM requests r WHERE "
            f"r.item_id = s.item_id AND r.state={LEASED}) OR EXISTS (SELECT 1 FROM pending p "
            "WHERE p.item_id = s.item_id))"
        ).fetchone()[0]
        queued = q(
            f"SELECT COUNT(*) {to_do} AND EXISTS (SELECT 1 FROM requests r WHERE "
            f"r.item_id = s.item_id AND r.state={QUEUED}) AND NOT EXISTS (SELECT 1 FROM "
            f"requests r WHERE r.item_id = s.item_id AND r.state={LEASED})"
        ).fetchone()[0]
        counts = dict(q("SELECT state, COUNT(*) FROM requests GROUP BY state").fetchall())
        # A request given up whose item was exported all the same (one of
        # several requests an item needs, that it can go without) leaves
        # nothing missing.
        failed = q(
            "SELECT COUNT(*) FROM requests r WHERE r.state=? AND NOT EXISTS "
            "(SELECT 1 FROM exported e WHERE e.item_id = r.item_id)",
            (FAILED,),
        ).fetchone()[0]
        left = fates.get(TO_DO, 0)
        others = q(
            "SELECT COUNT(*) FROM requests WHERE item_id IS NULL AND state IN (?, ?)",
            (QUEUED, LEASED),
        ).fetchone()[0]
        return Account(
            shown=shown,
            exported=exported,
            withdrawn=fates.get(WITHDRAWN, 0),
            given_up=fates.get(GIVEN_UP_ITEM, 0),
            failed_for_now=kept,
            not_fetched=queued,
            no_request=left - kept - queued,
            requests_left=counts.get(QUEUED, 0) + counts.get(LEASED, 0),
            requests_given_up=failed,
            others_left=others,
        )


def _url(data: Any) -> str:
    try:
        return str(ujson.loads(data)["url"])
    except (ValueError, TypeError, KeyError):
        return "?"
