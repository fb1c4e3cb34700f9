"""Partial items and the export record of a job's SQLite state (part of SQLiteJobStore).

An item's fields gathered so far wait here for its last request (a partial
item); an item counts as exported once its line is flushed to the items file,
and the same transaction settles its leases and drops its partial item.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import ujson

from plt.job.jobdir import guarded_write

# The lease states of a request row (see plt.job.sqlite): GIVEN_UP cannot be
# decoded; FAILED was given up by the ledger (permanent, or too many attempts).
QUEUED, LEASED, SETTLED, GIVEN_UP, FAILED = 0, 1, 2, 3, 4


class ItemsRecord:
    db: sqlite3.Connection | None
    leased: int

    def _set_meta(self, key: str, value: Any) -> None:
        raise NotImplementedError

    @guarded_write(None)
    def put_pending(self, item_id: int, fields: dict[str, Any]) -> None:
        assert self.db is not None
        self.db.execute(
            "INSERT OR REPLACE INTO pending (item_id, data) VALUES (?, ?)",
            (item_id, ujson.dumps(fields)),
        )

    def get_pending(self, item_id: int) -> dict[str, Any] | None:
        assert self.db is not None
        row = self.db.execute("SELECT data FROM pending WHERE item_id=?", (item_id,)).fetchone()
        return ujson.loads(row[0]) if row else None

    def pending_count(self) -> int:
        assert self.db is not None
        return self.db.execute("SELECT COUNT(*) FROM pending").fetchone()[0]

    def is_exported(self, item_id: int) -> bool:
        assert self.db is not None
        row = self.db.execute("SELECT 1 FROM exported WHERE item_id=?", (item_id,)).fetchone()
        return row is not None

    def exported_count(self) -> int:
        assert self.db is not None
        return self.db.execute("SELECT COUNT(*) FROM exported").fetchone()[0]

    @guarded_write(None)
    def mark_exported(self, item_id: int, items_offset: int, line: bytes = b"") -> None:
        """Called once the item's line is flushed (and fsynced) to the items file,
        which holds the record's own copy of the line."""
        self._record_exports([item_id], items_offset)

    def _record_exports(self, item_ids: list[int], items_offset: int) -> None:
        assert self.db is not None
        rows = [(pid,) for pid in item_ids]
        with self.db:  # one transaction: export, pending and leases agree
            self.db.execute("BEGIN")
            self.db.executemany("INSERT OR IGNORE INTO exported (item_id) VALUES (?)", rows)
            self.db.executemany("DELETE FROM pending WHERE item_id=?", rows)
            cur = self.db.executemany(
                "UPDATE requests SET state=?, data=NULL WHERE item_id=? AND state=?",
                [(SETTLED, pid, LEASED) for pid in item_ids],
            )
            self.leased -= max(cur.rowcount, 0)
            self._set_meta("items_offset", items_offset)
