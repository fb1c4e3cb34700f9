"""Crash-safe job state: frontier, seen set, leases, partial items, exports.

One SQLite database in WAL mode inside the job directory. Every change is a
committed transaction, so a process killed with SIGKILL at any instant leaves
a state that the next run reopens as it was; a write that fails (a full disk)
stops the crawl with that same state. Nothing is pickled: requests are stored
as JSON that names no code (plt.requestcodec).

Lease lifecycle of a request row: QUEUED -> LEASED (taken by the scheduler)
-> SETTLED (its outcome is durable), or GIVEN_UP (it cannot be decoded).
Leases still open when a run starts were in flight when the previous run
died; they go back to QUEUED.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar
from weakref import WeakKeyDictionary

import ujson

from plt import itemsfile
from plt.job.frontier import FrontierRecord
from plt.job.sqlrecord import LEDGER_SCHEMA, LedgerRecord
from plt.jobdir import (
    JobStateError,
    check_jobdir,
    check_meta,
    check_schema,
    database_error,
    enable_wal,
    guarded_write,
    lock_jobdir,
    way_out,
    write_failed,
)
from plt.jobitems import FAILED, GIVEN_UP, LEASED, QUEUED, ItemsRecord

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
STATE_FILE = "plt-state.sqlite"
LOCK_FILE = "plt.lock"
ITEMS_FILE = "items.jsonl"
# Files a run writes to; each must be writable when it exists.
JOB_FILES = (LOCK_FILE, ITEMS_FILE, STATE_FILE, STATE_FILE + "-wal", STATE_FILE + "-shm")
# Meta values a resumed job relies on, and the type each must have.
_META_TYPES: dict[str, tuple[type, ...]] = {
    "items_offset": (int,),
    "requeued_total": (int,),
    "finished": (bool,),
    "started_at": (str,),
}

_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS requests (
    id INTEGER PRIMARY KEY,
    fp TEXT UNIQUE,
    state INTEGER NOT NULL,
    priority INTEGER NOT NULL,
    product_id INTEGER,
    data TEXT
);
CREATE INDEX IF NOT EXISTS requests_next ON requests (state, priority DESC, id);
CREATE INDEX IF NOT EXISTS requests_product ON requests (product_id);
CREATE TABLE IF NOT EXISTS pending (product_id INTEGER PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS exported (product_id INTEGER PRIMARY KEY);
"""
    + LEDGER_SCHEMA
)


def item_id_field(settings: Any) -> str:
    """The item field that identifies an item for the job layer."""
    return settings.get("PLT_JOB_ITEM_ID_FIELD") or itemsfile.DEFAULT_ITEM_ID_FIELD


class JobState(FrontierRecord, ItemsRecord, LedgerRecord):
    """The state of one job, shared by the scheduler, the spider and the exporter."""

    _by_crawler: ClassVar[WeakKeyDictionary[Any, JobState]] = WeakKeyDictionary()

    def __init__(
        self,
        jobdir: str | Path | None,
        *,
        reset: bool = False,
        item_field: str = itemsfile.DEFAULT_ITEM_ID_FIELD,
    ) -> None:
        self.jobdir = Path(jobdir) if jobdir else None
        self.reset = reset
        self.item_field = item_field  # the id of an items-file line (PLT_JOB_ITEM_ID_FIELD)
        self.db: sqlite3.Connection | None = None
        self._lock_fd: int | None = None
        self.queued = 0
        self.leased = 0
        self.given_up = 0
        self.failed = 0  # given up by the ledger
        self.requeued_on_open = 0
        # Set once the state is open: a failed write then stops the crawl
        # (through on_error) instead of raising at the writer.
        self.ready = False
        self.write_error: JobStateError | None = None
        self.on_error: Callable[[JobStateError], None] | None = None
        self.repaired_bytes = 0
        self.resumed = False

    @classmethod
    def for_crawler(cls, crawler: Any) -> JobState:
        """One JobState per crawler, created on first use from its settings.

        With PLT_DISTRIBUTED it is the Redis-backed state of plt.distributed.
        """
        state = cls._by_crawler.get(crawler)
        if state is None:
            settings = crawler.settings
            if settings.getbool("PLT_DISTRIBUTED"):
                # Imported here: redis is needed only in this mode.
                from plt.distributed.state import RedisJobState

                state = RedisJobState.from_crawler(crawler)
            else:
                state = cls(
                    settings.get("JOBDIR"),
                    reset=settings.getbool("PLT_JOB_RESET"),
                    item_field=item_id_field(settings),
                )
            cls._by_crawler[crawler] = state
        return state

    @property
    def items_path(self) -> Path | None:
        return self.jobdir / ITEMS_FILE if self.jobdir else None

    @property
    def state_path(self) -> Path:
        return self.jobdir / STATE_FILE if self.jobdir else Path(":memory:")

    @property
    def where(self) -> str:
        """Where the requests are stored, for messages."""
        return str(self.state_path)

    # -- opening and closing -------------------------------------------------

    def open(self) -> None:
        if self.db is not None:
            return
        if self.jobdir is None:
            self.db = sqlite3.connect(":memory:", isolation_level=None)
            self.db.executescript(_SCHEMA)
            self._init_meta()
            self.ready = True
            return
        path = self.state_path
        try:
            check_jobdir(self.jobdir, JOB_FILES)
            self._lock()
            self._open_db(path)
        except JobStateError:
            self.close()
            raise
        except sqlite3.DatabaseError as exc:
            self.close()
            raise database_error(path, exc) from None
        except OSError as exc:  # a race with check_jobdir, or a full disk
            self.close()
            raise write_failed(exc.filename or self.jobdir, exc) from None
        self.ready = True

    def _open_db(self, path: Path) -> None:
        assert self.jobdir is not None
        if self.reset:
            self._remove_state_files()
        self.resumed = path.exists()
        self.db = sqlite3.connect(path, isolation_level=None, timeout=1)
        enable_wal(self.db, path)
        # NORMAL is durable against process death; an OS crash can lose the
        # last commits, never order them before the items file's lines, which
        # are fsynced before their record (plt.exporters), so the record can
        # only fall behind the file, and reconciliation catches it up.
        self.db.execute("PRAGMA synchronous=NORMAL")
        if self.resumed:
            check_schema(self.db, path, SCHEMA_VERSION)
        self.db.executescript(_SCHEMA)
        self._init_meta()
        check_meta(self.db, path, _META_TYPES)
        items = self.jobdir / ITEMS_FILE
        try:
            self.repaired_bytes, new_ids = itemsfile.reconcile(
                items, self.get_meta("items_offset", 0), self.item_field
            )
        except itemsfile.ItemsFileError as exc:
            raise JobStateError(f"{exc} " + way_out(self.jobdir)) from None
        if new_ids:
            self._record_exports(new_ids, items.stat().st_size)
        elif self.repaired_bytes:
            self._set_meta("items_offset", items.stat().st_size)
        cur = self.db.execute("UPDATE requests SET state=? WHERE state=?", (QUEUED, LEASED))
        self.requeued_on_open = cur.rowcount
        if self.requeued_on_open:
            self._set_meta("requeued_total", self.get_meta("requeued_total", 0) + cur.rowcount)
        self._count()

    def _lock(self) -> None:
        assert self.jobdir is not None
        self._lock_fd = lock_jobdir(self.jobdir, self.jobdir / LOCK_FILE)

    def _remove_state_files(self) -> None:
        assert self.jobdir is not None
        for name in (STATE_FILE, STATE_FILE + "-wal", STATE_FILE + "-shm", ITEMS_FILE):
            (self.jobdir / name).unlink(missing_ok=True)
        logger.info("PLT_JOB_RESET: job state and items removed from %s", self.jobdir)

    def _init_meta(self) -> None:
        assert self.db is not None
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.db.executemany(
            "INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)",
            [("schema", str(SCHEMA_VERSION)), ("started_at", ujson.dumps(now))],
        )

    def _count(self) -> None:
        assert self.db is not None
        counts = dict(self.db.execute("SELECT state, COUNT(*) FROM requests GROUP BY state"))
        self.queued = counts.get(QUEUED, 0)
        self.leased = counts.get(LEASED, 0)
        self.given_up = counts.get(GIVEN_UP, 0)
        self.failed = counts.get(FAILED, 0)

    def fail(self, error: JobStateError) -> None:
        """A write failed: write nothing more, and let the crawl stop (on_error)."""
        if self.write_error is not None:
            return
        self.write_error = error
        if self.on_error is not None:
            self.on_error(error)

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None

    # -- meta ----------------------------------------------------------------

    def get_meta(self, key: str, default: Any = None) -> Any:
        assert self.db is not None
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return ujson.loads(row[0]) if row else default

    @guarded_write(None)
    def set_meta(self, key: str, value: Any) -> None:
        self._set_meta(key, value)

    def _set_meta(self, key: str, value: Any) -> None:
        assert self.db is not None
        self.db.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, ujson.dumps(value))
        )
