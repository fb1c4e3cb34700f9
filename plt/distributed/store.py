"""The crawl's shared state in Redis: key names and the atomic steps on them.

All keys of one crawl share the prefix ``plt:<job>:``. Stateless: the worker's
own view (which leases it holds) lives in plt.distributed.state.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import Any

from redis import Redis

from plt.distributed import lua
from plt.distributed.batch import BATCH, BatchingRedis, Steps
from plt.job.itemsfile import DEFAULT_ID_FIELD
from plt.job.sqlrecord import GIVEN_UP_ITEM, TO_DO

SCHEMA_VERSION = 2  # 2: the crawl's identity (plt.distributed.identity)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(name: str) -> str:
    """A name usable in Redis keys and file names."""
    return _UNSAFE.sub("-", name).strip("-") or "default"


@dataclass(frozen=True)
class JobKeys:
    seen: str
    queue: str
    data: str
    seq: str
    leases: str
    owner: str
    failed: str
    pending: str
    exported: str
    offsets: str
    workers: str
    meta: str
    attempts: str
    shown: str
    gaveup: str
    items: str

    @classmethod
    def for_job(cls, job: str) -> JobKeys:
        prefix = f"plt:{safe_name(job)}:"
        # Named as scrapy-redis names its keys (<name>:requests, <name>:dupefilter).
        names = {"seen": "dupefilter", "queue": "requests"}
        return cls(**{f.name: prefix + names.get(f.name, f.name) for f in fields(cls)})

    def all(self) -> list[str]:
        return [getattr(self, f.name) for f in fields(self)]


@dataclass(frozen=True)
class CrawlStatus:
    queued: int
    leased: int
    failed: int
    pending: int
    seeded: bool
    finished: bool
    exported: int
    # The crawl's identity is gone or changed (plt.distributed.identity): its
    # counts are of nothing, and it is never done.
    lost: bool = False

    @property
    def done(self) -> bool:
        """Nothing is queued or in flight anywhere: every worker may stop."""
        return not self.lost and self.queued == 0 and self.leased == 0


@dataclass(frozen=True)
class Leased:
    """A request leased in a batch: its stored JSON (None: settled meanwhile), its
    item's partial item, and whether its item is exported (None: it names none)."""

    lease: str
    data: str | None
    pending: bytes | None
    exported: bool | None


class LeaseStore:
    def __init__(self, server: Redis, keys: JobKeys) -> None:
        self.server = server
        self.keys = keys
        register = server.register_script
        self._renew = register(lua.RENEW)
        self._requeue = register(lua.REQUEUE_EXPIRED)
        self._give_back = register(lua.GIVE_BACK)
        self._retry = register(lua.RETRY_FAILED)
        self._status = register(lua.STATUS)
        self._give_up = register(lua.GIVE_UP)
        self._retry_given_up = register(lua.RETRY_GIVEN_UP)
        self._replace = register(lua.REPLACE)
        self._expire = register(lua.EXPIRE_UNSET)
        self._batch = register(BATCH)
        self._finish = register(lua.FINISH)
        self.steps = Steps()
        if isinstance(server, BatchingRedis):
            server.flush_hook = self.flush

    # -- batched steps (plt.distributed.batch) ----------------------------------

    @property
    def _batch_keys(self) -> list[str]:
        k = self.keys
        return [k.seen, k.queue, k.data, k.seq, k.leases, k.owner, k.meta, k.attempts,
                k.exported, k.pending, k.offsets, k.items, k.shown]  # fmt: skip

    def run(self, name: str, *args: Any) -> Any:
        """The steps that wait, then this one, in one call: this one's result."""
        steps = self.steps.take()
        steps += [name, len(args), *args]
        return self._batch(keys=self._batch_keys, args=steps)[-1]

    def flush(self) -> None:
        """Send the steps that wait (before any other command, see BatchingRedis)."""
        if self.steps.count:
            self._batch(keys=self._batch_keys, args=self.steps.take())

    def later(self, name: str, *args: Any) -> None:
        """A step whose answer nobody needs: it goes with the next call."""
        self.steps.add(name, *args)
        if self.steps.full:
            self.flush()

    def push(
        self, fp: str | None, priority: int, data: str, replaces: str | None, seed: bool
    ) -> bool:
        """Queue a request unless its fingerprint was seen; True when queued."""
        seed_flag = "1" if seed else "0"
        return bool(self.run("push", fp or "", priority, data, replaces or "", seed_flag))

    def pop_many(
        self, worker: str, lease_seconds: float, count: int, id_field: str
    ) -> list[Leased]:
        """Lease up to ``count`` requests, each with what the worker will ask of it."""
        rows = self.run("pop", worker, lease_seconds, count, id_field)
        leased = []
        for i in range(0, len(rows), 4):
            lease, value, pending, exported = rows[i : i + 4]
            data = _text(value).split(" ", 1)[1] if value else None
            done = None if exported == -1 else bool(exported)
            leased.append(Leased(_text(lease), data, pending or None, done))
        return leased

    def show(self, item_ids: list[int]) -> list[bool]:
        """Record items the listing showed; whether each is exported already."""
        return [bool(flag) for flag in self.run("show", *item_ids)] if item_ids else []

    def pop(self, worker: str, lease_seconds: float) -> tuple[str, str | None] | None:
        """Lease one request now: (lease, stored JSON), or None when none is queued."""
        rows = self.pop_many(worker, lease_seconds, 1, DEFAULT_ID_FIELD)
        return (rows[0].lease, rows[0].data) if rows else None

    def settle(self, leases: list[str]) -> int:
        """Settle leases now: how many were leased or queued."""
        return int(self.run("settle", *leases)) if leases else 0

    def export(
        self, item_id: int, worker: str, offset: int, leases: list[str], line: bytes = b""
    ) -> bool:
        """Record the item (and its line, in the items stream) unless it is; settle leases."""
        return bool(self.run("export", item_id, worker, offset, line, *leases))

    def items(self, batch: int = 1000) -> Iterator[tuple[int, bytes]]:
        """(item id, line) of every exported item, in export order, read in batches."""
        start = "-"
        while entries := self.server.xrange(self.keys.items, start, "+", count=batch):
            for _, entry in entries:
                yield int(entry[b"id"]), entry[b"line"]
            start = "(" + _text(entries[-1][0])

    def renew(self, worker: str, lease_seconds: float, leases: list[str]) -> list[str]:
        k = self.keys
        lost = self._renew(
            keys=[k.leases, k.owner, k.workers], args=[worker, lease_seconds, *leases]
        )
        return [_text(m) for m in lost]

    def requeue_expired(self, limit: int = 1000) -> int:
        k = self.keys
        return int(self._requeue(keys=[k.leases, k.queue, k.data, k.owner, k.meta], args=[limit]))

    def give_back(self, worker: str, leases: list[str], *, failed: bool) -> int:
        if not leases:
            return 0
        k = self.keys
        where = "failed" if failed else "queue"
        return int(
            self._give_back(
                keys=[k.leases, k.queue, k.data, k.owner, k.failed], args=[worker, where, *leases]
            )
        )

    def retry_failed(self) -> int:
        k = self.keys
        return int(self._retry(keys=[k.failed, k.queue, k.data]))

    def give_up(self, lease: str, item_id: int | None) -> None:
        k = self.keys
        item = "" if item_id is None else str(item_id)
        keys = [k.leases, k.owner, k.gaveup, k.shown]
        self._give_up(keys=keys, args=[lease, item, GIVEN_UP_ITEM])

    def retry_given_up(self) -> int:
        k = self.keys
        return int(
            self._retry_given_up(
                keys=[k.gaveup, k.queue, k.data, k.attempts, k.shown], args=[GIVEN_UP_ITEM, TO_DO]
            )
        )

    def replace_data(self, lease: str, data: str) -> None:
        self._replace(keys=[self.keys.leases, self.keys.data], args=[lease, data])

    def finish(self) -> bool:
        """Mark the crawl finished if nothing is left anywhere, at this instant."""
        k = self.keys
        keys = [k.queue, k.leases, k.failed, k.pending, k.meta]
        return bool(self._finish(keys=keys, args=["true"]))

    def status(self) -> CrawlStatus:
        k = self.keys
        q, le, f, p, seeded, finished, exported = self._status(
            keys=[k.queue, k.leases, k.failed, k.pending, k.meta, k.exported]
        )
        return CrawlStatus(q, le, f, p, bool(seeded), bool(finished), exported)

    def exported_ids(self) -> set[int]:
        return {int(m) for m in self.server.sscan_iter(self.keys.exported, count=1000)}

    def expire(self, seconds: int) -> int:
        """Every key of the crawl expires in ``seconds``, unless it expires already."""
        return int(self._expire(keys=self.keys.all(), args=[seconds])) if seconds > 0 else 0

    def queued(self) -> int:
        return int(self.server.zcard(self.keys.queue))

    def reset(self) -> int:
        """Delete every key of the crawl."""
        return int(self.server.delete(*self.keys.all()))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
