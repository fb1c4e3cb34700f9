"""The job directory as a place on disk: usable or not, and the record of failures.

Every way a job directory can be unusable (a file in its place, a read-only
directory, a full disk) ends the crawl with one :class:`JobStateError`, whose
message names the file and the way out; ``scrapy crawl`` exits with status 2.
"""

from __future__ import annotations

import fcntl
import functools
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import ujson

logger = logging.getLogger(__name__)

FAILED_FILE = "failed.jsonl"
# SQLite errors that come from where the database lives, not from its content.
_ENVIRONMENT_ERRORS = frozenset(
    {
        sqlite3.SQLITE_PERM,
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_CANTOPEN,
    }
)
T = TypeVar("T")


class JobStateError(Exception):
    """The job directory cannot be used; the message says which file and what to do."""


def way_out(jobdir: Path) -> str:
    return (
        f"Start the job over with -s PLT_JOB_RESET=1, or choose another "
        f"JOBDIR (the damaged one can be moved away: {jobdir})."
    )


def check_jobdir(jobdir: Path, files: tuple[str, ...] = ()) -> None:
    """Create ``jobdir`` if needed; JobStateError if the crawl could not write there."""
    if jobdir.exists() and not jobdir.is_dir():
        raise JobStateError(
            f"JOBDIR {jobdir} is a file, not a directory: choose another JOBDIR "
            f"(-s JOBDIR=...) or move the file away."
        )
    try:
        jobdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise JobStateError(
            f"The job directory {jobdir} cannot be created ({exc.strerror}): "
            f"choose another JOBDIR (-s JOBDIR=...)."
        ) from None
    for path in [jobdir, *(jobdir / name for name in files)]:
        if path.exists() and not os.access(path, os.W_OK):
            raise JobStateError(read_only(path, jobdir))


def lock_jobdir(jobdir: Path, lock_path: Path, busy: str | None = None) -> int:
    """Hold the job's lock (flock, released when the process dies); its fd.

    ``busy`` is the message when another live process holds it."""
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except PermissionError:
        raise JobStateError(read_only(lock_path, jobdir)) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        owner = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise JobStateError(
            busy
            or f"The job directory {jobdir} is in use by another live process "
            f"(pid {owner}, lock {lock_path}). Wait for it to finish or stop it; "
            f"two crawls must not share one JOBDIR."
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    return fd


def check_schema(
    db: sqlite3.Connection, path: Path, version: int, upgradable: tuple[int, ...] = ()
) -> None:
    """An existing job state is intact and of a schema this PLT reads or upgrades."""
    if db.execute("PRAGMA quick_check").fetchone()[0] != "ok":
        raise sqlite3.DatabaseError("integrity check failed")
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
    if "meta" not in tables:
        raise sqlite3.DatabaseError("no meta table")
    row = db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
    found = int(row[0]) if row and str(row[0]).isdigit() else None
    if found != version and found not in upgradable:
        raise JobStateError(
            f"The job state {path} has schema version {found}, this PLT reads "
            f"version {version}. Finish that job with the PLT version that "
            f"started it. " + way_out(path.parent)
        )


def check_meta(db: sqlite3.Connection, path: Path, types: dict[str, tuple[type, ...]]) -> None:
    """Every meta value is JSON, and those named in ``types`` have their type."""
    for key, raw in db.execute("SELECT key, value FROM meta"):
        try:
            value = ujson.loads(raw)
        except (ValueError, TypeError):
            valid = False
        else:
            expected = types.get(key)
            valid = expected is None or (
                isinstance(value, expected)
                and (bool in expected or not isinstance(value, bool))
                and not (isinstance(value, int) and value < 0)
            )
        if not valid:
            what = "a number" if types.get(key) == (int,) else "valid"
            raise JobStateError(
                f"The job state {path} has a meta value {key}={str(raw)[:40]!r} that is "
                f"not {what}. " + way_out(path.parent)
            )


def enable_wal(db: sqlite3.Connection, path: Path) -> None:
    """WAL mode, or one clear error: without it a killed crawl can lose its state."""
    mode = str(db.execute("PRAGMA journal_mode=WAL").fetchone()[0]).lower()
    if mode != "wal":
        raise JobStateError(
            f"The job state {path} cannot use SQLite's WAL mode on this filesystem "
            f"(journal mode {mode!r}), so the job would not survive a kill: put JOBDIR "
            f"on a local filesystem (not NFS or a FUSE mount)."
        )


def read_only(path: Path, jobdir: Path) -> str:
    return (
        f"The job directory {jobdir} is read-only ({path} cannot be written): make it "
        f"writable and run the same command again, or choose another JOBDIR."
    )


def write_failed(path: Path | str, exc: BaseException) -> JobStateError:
    """A write that failed mid-crawl (disk full, read-only, I/O error).

    Everything written before it is consistent, as after a kill: the same
    command resumes the job exactly once the cause is fixed.
    """
    return JobStateError(
        f"Cannot write {path} ({exc}): the crawl is stopped, and nothing done so far is "
        f"lost. Free some disk space (or make it writable) and run the same command "
        f"again to resume."
    )


def database_error(path: Path, exc: sqlite3.Error) -> JobStateError:
    """A disk, permission or I/O failure, or else a damaged job state."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None and code & 0xFF in _ENVIRONMENT_ERRORS:
        return write_failed(path, exc)
    return JobStateError(
        f"The job state {path} is damaged or not a PLT job state ({exc}). " + way_out(path.parent)
    )


def guarded_write(default: Any) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """For a job store method that writes: after a failed write, none are tried.

    The first failure (a full disk, a read-only file) is handed to the state's
    ``fail()``, which stops the crawl; the method then returns ``default`` as
    if nothing had been written. The database keeps its last committed state,
    which is what a kill at that instant leaves, and a resumed job reopens it
    exactly. Failures while the state opens are raised instead.
    """

    def decorate(method: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(method)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> T:
            if self.write_error is not None:
                return default
            try:
                return method(self, *args, **kwargs)
            except sqlite3.DatabaseError as exc:
                if not self.ready:
                    raise
                self.fail(database_error(self.state_path, exc))
                return default

        return wrapper

    return decorate


def record_failed(jobdir: Path | None, record: dict[str, Any]) -> Path | None:
    """Append one line to ``<JOBDIR>/failed.jsonl``; its path, or None without one."""
    if jobdir is None:
        return None
    path = jobdir / FAILED_FILE
    line = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **record}
    try:
        with path.open("a", encoding="utf-8") as f:
            f.write(ujson.dumps(line, ensure_ascii=False, escape_forward_slashes=False) + "\n")
    except OSError as exc:
        logger.warning("Cannot record %s in %s (%s)", record, path, exc)
        return None
    return path
