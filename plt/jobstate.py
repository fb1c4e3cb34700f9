"""Crash-safe job state: frontier, seen set, leases, partial items, exports.

One SQLite database in WAL mode inside the job directory. Every change is a
committed transaction, so a process killed with SIGKILL at any instant leaves
a state that the next run reopens as it was. Nothing is pickled: requests are
stored as JSON, so a job directory cannot smuggle code into the crawler.

Lease lifecycle of a request row: QUEUED -> LEASED (taken by the scheduler)
-> SETTLED (its outcome is durable). Leases still open when a run starts were
in flight when the previous run died; they go back to QUEUED.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import time
from pathlib import Path
from typing import Any, ClassVar
from weakref import WeakKeyDictionary

import ujson

from plt import itemsfile

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
STATE_FILE = "plt-state.sqlite"
LOCK_FILE = "plt.lock"
ITEMS_FILE = "items.jsonl"
QUEUED, LEASED, SETTLED = 0, 1, 2

_SCHEMA = """
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


class JobStateError(Exception):
    """The job directory cannot be used; the message says which file and what to do."""


def _way_out(jobdir: Path) -> str:
    return (
        f"Start the job over with -s PLT_JOB_RESET=1, or choose another "
        f"JOBDIR (the damaged one can be moved away: {jobdir})."
    )


class JobState:
    """The state of one job, shared by the scheduler, the spider and the exporter."""

    _by_crawler: ClassVar[WeakKeyDictionary[Any, JobState]] = WeakKeyDictionary()

    def __init__(self, jobdir: str | Path | None, *, reset: bool = False) -> None:
        self.jobdir = Path(jobdir) if jobdir else None
        self.reset = reset
        self.db: sqlite3.Connection | None = None
        self._lock_fd: int | None = None
        self.queued = 0
        self.leased = 0
        self.requeued_on_open = 0
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
                state = cls(settings.get("JOBDIR"), reset=settings.getbool("PLT_JOB_RESET"))
            cls._by_crawler[crawler] = state
        return state

    @property
    def items_path(self) -> Path | None:
        return self.jobdir / ITEMS_FILE if self.jobdir else None

    # -- opening and closing -------------------------------------------------

    def open(self) -> None:
        if self.db is not None:
            return
        if self.jobdir is None:
            self.db = sqlite3.connect(":memory:", isolation_level=None)
            self.db.executescript(_SCHEMA)
            self._init_meta()
            return
        self.jobdir.mkdir(parents=True, exist_ok=True)
        self._lock()
        if self.reset:
            self._remove_state_files()
        path = self.jobdir / STATE_FILE
        self.resumed = path.exists()
        try:
            self.db = sqlite3.connect(path, isolation_level=None, timeout=1)
            self.db.execute("PRAGMA journal_mode=WAL")
            # NORMAL is durable against process death; only an OS crash can lose
            # the last commits, which the items file reconciliation then repairs.
            self.db.execute("PRAGMA synchronous=NORMAL")
            if self.resumed:
                self._check_existing(path)
            self.db.executescript(_SCHEMA)
            self._init_meta()
        except JobStateError:
            self.close()
            raise
        except sqlite3.DatabaseError as exc:
            self.close()
            raise JobStateError(
                f"The job state {path} is damaged or not a PLT job state ({exc}). "
                + _way_out(self.jobdir)
            ) from None
        try:
            self.repaired_bytes, new_ids = itemsfile.reconcile(
                self.jobdir / ITEMS_FILE, self.get_meta("items_offset", 0)
            )
        except itemsfile.ItemsFileError as exc:
            self.close()
            raise JobStateError(f"{exc} " + _way_out(self.jobdir)) from None
        if new_ids:
            self._record_exports(new_ids, self.jobdir.joinpath(ITEMS_FILE).stat().st_size)
        elif self.repaired_bytes:
            self.set_meta("items_offset", (self.jobdir / ITEMS_FILE).stat().st_size)
        cur = self.db.execute("UPDATE requests SET state=? WHERE state=?", (QUEUED, LEASED))
        self.requeued_on_open = cur.rowcount
        if self.requeued_on_open:
            self.set_meta("requeued_total", self.get_meta("requeued_total", 0) + cur.rowcount)
        self._count()

    def _lock(self) -> None:
        assert self.jobdir is not None
        lock_path = self.jobdir / LOCK_FILE
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise JobStateError(
                f"The job directory {self.jobdir} is in use by another live process "
                f"(pid {owner}, lock {lock_path}). Wait for it to finish or stop it; "
                f"two crawls must not share one JOBDIR."
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock_fd = fd

    def _remove_state_files(self) -> None:
        assert self.jobdir is not None
        for name in (STATE_FILE, STATE_FILE + "-wal", STATE_FILE + "-shm", ITEMS_FILE):
            (self.jobdir / name).unlink(missing_ok=True)
        logger.info("PLT_JOB_RESET: job state and items removed from %s", self.jobdir)

    def _check_existing(self, path: Path) -> None:
        assert self.db is not None and self.jobdir is not None
        if self.db.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            raise sqlite3.DatabaseError("integrity check failed")
        tables = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master")}
        if "meta" not in tables:
            raise sqlite3.DatabaseError("no meta table")
        row = self.db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        version = int(row[0]) if row else None
        if version != SCHEMA_VERSION:
            raise JobStateError(
                f"The job state {path} has schema version {version}, this PLT reads "
                f"version {SCHEMA_VERSION}. Finish that job with the PLT version that "
                f"started it. " + _way_out(self.jobdir)
            )

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

    def set_meta(self, key: str, value: Any) -> None:
        assert self.db is not None
        self.db.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, ujson.dumps(value))
        )

    # -- frontier ------------------------------------------------------------

    def add_request(
        self,
        fp: str | None,
        priority: int,
        data: str,
        product_id: int | None,
        replaces: int | None = None,
    ) -> bool:
        """Queue a request unless its fingerprint was seen; True when queued.

        ``replaces`` is the lease of the request this one continues (a retry, a
        redirect): it is settled in the same transaction, so exactly one of the
        two can ever be fetched again after a crash.
        """
        assert self.db is not None
        with self.db:
            self.db.execute("BEGIN")
            cur = self.db.execute(
                "INSERT OR IGNORE INTO requests (fp, state, priority, product_id, data) "
                "VALUES (?, ?, ?, ?, ?)",
                (fp, QUEUED, priority, product_id, data),
            )
            added = cur.rowcount > 0
            if replaces is not None:
                self._settle(replaces)
        if added:
            self.queued += 1
        return added

    def add_seen(self, fp: str) -> bool:
        """Record a fingerprint without queueing anything; True when it is new."""
        assert self.db is not None
        cur = self.db.execute(
            "INSERT OR IGNORE INTO requests (fp, state, priority) VALUES (?, ?, 0)",
            (fp, SETTLED),
        )
        return cur.rowcount > 0

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
        return row

    def settle(self, lease_id: int) -> None:
        """The request's outcome is durable: it is never fetched again in this job."""
        assert self.db is not None
        self._settle(lease_id)

    def _settle(self, lease_id: int) -> None:
        assert self.db is not None
        cur = self.db.execute(
            "UPDATE requests SET state=?, data=NULL WHERE id=? AND state=?",
            (SETTLED, lease_id, LEASED),
        )
        self.leased -= cur.rowcount

    # -- partial items and exports -------------------------------------------

    def put_pending(self, product_id: int, fields: dict[str, Any]) -> None:
        assert self.db is not None
        self.db.execute(
            "INSERT OR REPLACE INTO pending (product_id, data) VALUES (?, ?)",
            (product_id, ujson.dumps(fields)),
        )

    def get_pending(self, product_id: int) -> dict[str, Any] | None:
        assert self.db is not None
        row = self.db.execute(
            "SELECT data FROM pending WHERE product_id=?", (product_id,)
        ).fetchone()
        return ujson.loads(row[0]) if row else None

    def pending_count(self) -> int:
        assert self.db is not None
        return self.db.execute("SELECT COUNT(*) FROM pending").fetchone()[0]

    def is_exported(self, product_id: int) -> bool:
        assert self.db is not None
        row = self.db.execute("SELECT 1 FROM exported WHERE product_id=?", (product_id,)).fetchone()
        return row is not None

    def exported_count(self) -> int:
        assert self.db is not None
        return self.db.execute("SELECT COUNT(*) FROM exported").fetchone()[0]

    def mark_exported(self, product_id: int, items_offset: int) -> None:
        """Called once the product's line is flushed to the items file."""
        self._record_exports([product_id], items_offset)

    def _record_exports(self, product_ids: list[int], items_offset: int) -> None:
        assert self.db is not None
        rows = [(pid,) for pid in product_ids]
        with self.db:  # one transaction: export, pending and leases agree
            self.db.execute("BEGIN")
            self.db.executemany("INSERT OR IGNORE INTO exported (product_id) VALUES (?)", rows)
            self.db.executemany("DELETE FROM pending WHERE product_id=?", rows)
            cur = self.db.executemany(
                "UPDATE requests SET state=?, data=NULL WHERE product_id=? AND state=?",
                [(SETTLED, pid, LEASED) for pid in product_ids],
            )
            self.leased -= max(cur.rowcount, 0)
            self.set_meta("items_offset", items_offset)
