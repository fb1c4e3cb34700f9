"""The job's items.jsonl from the crawl's items stream in Redis, each item once.

    python -m plt.distributed.merge JOBDIR --redis-url URL [--job NAME]

A worker records each export in Redis together with the item's line, in the
crawl's items stream, in one atomic step (the export step of
plt.distributed.batch): an item counts as exported only where it outlives its
worker and that worker's disk.
The worker that sees the crawl done writes ``<JOBDIR>/items.jsonl`` from the
stream; this command does the same on any machine, until the crawl's keys
expire (PLT_REDIS_FINISHED_TTL after it finished). The file is written
atomically (a temporary file, fsynced, then a rename).

The result is checked before it is written: every item id exported in Redis,
each once, and only items of the crawl's retailer (SHOP_URL's host). The
command refuses a crawl that Redis does not know. Exit status: 0 written;
1 the check failed; 2 it could not run (no such crawl, Redis unreachable).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import ujson

from plt.distributed.identity import RECORD_FILE, CrawlIdentity, CrawlRecord, read_identity
from plt.job.itemsfile import ITEMS_FILE
from plt.job.jobdir import JobStateError

if TYPE_CHECKING:
    from redis import Redis
    from scrapy.settings import BaseSettings

    from plt.distributed.state import RedisJobState
    from plt.distributed.store import CrawlStatus, LeaseStore

logger = logging.getLogger(__name__)


@dataclass
class MergeResult:
    out: Path
    items: int = 0
    duplicates: int = 0
    written: bool = False
    missing: list[int] = field(default_factory=list)  # exported, but not in the stream
    foreign: int = 0  # items of another retailer
    first_foreign: str = ""


def site(url: str) -> str:
    """The host, without ``www.``: a retailer may redirect between the two, or to https."""
    host = urlsplit(url).hostname or ""
    return host.removeprefix("www.")


def write_items(
    items: Iterable[tuple[int, bytes]],
    out: Path,
    expected: set[int] | None = None,
    shop_url: str | None = None,
) -> MergeResult:
    """Write ``out`` from (item id, line) pairs; not written if an id in ``expected``
    is missing, or an item's url is not on ``shop_url``'s host."""
    result = MergeResult(out=out)
    shop_site = site(shop_url) if shop_url else None
    seen: set[int] = set()
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as w:
            for item_id, line in items:
                if item_id in seen:
                    result.duplicates += 1
                    continue
                seen.add(item_id)
                if shop_site is not None and site(url := _url(line)) != shop_site:
                    result.foreign += 1
                    result.first_foreign = result.first_foreign or url or "(no url)"
                w.write(line if line.endswith(b"\n") else line + b"\n")
            w.flush()
            os.fsync(w.fileno())
        result.items = len(seen)
        if expected is not None:
            result.missing = sorted(expected - seen)
        if result.missing or result.foreign:
            return result
        os.replace(tmp, out)
        result.written = True
        return result
    finally:
        tmp.unlink(missing_ok=True)


def _url(line: bytes) -> str:
    try:
        url = ujson.loads(line).get("url")
    except (ValueError, AttributeError):
        return ""
    return url if isinstance(url, str) else ""


def finish_job(
    state: RedisJobState, status: CrawlStatus, settings: BaseSettings
) -> MergeResult | None:
    """Nothing is left to fetch: items.jsonl in this worker's JOBDIR, from Redis."""
    outcome = "finished" if status.finished else "stopped"
    if status.failed:
        logger.warning(
            "%d requests failed for now (network or server errors); run a worker of "
            "the same crawl again to retry them.",
            status.failed,
        )
    if state.jobdir is None or not settings.getbool("PLT_REDIS_MERGE", True):
        logger.info("Crawl %s %s: %d items exported", state.job, outcome, status.exported)
        return None
    out = state.jobdir / ITEMS_FILE
    result = write_items(state.store.items(), out, state.store.exported_ids())
    if result.written:
        logger.info("Crawl %s %s: %d items in %s", state.job, outcome, result.items, out)
    else:
        logger.error(
            "Crawl %s %s with %d items exported, but %d of them (%s) are not in its items "
            "stream in Redis: %s not written",
            state.job,
            outcome,
            status.exported,
            len(result.missing),
            _some(result.missing),
            out,
        )
    return result


def _some(ids: list[int], shown: int = 5) -> str:
    more = f", ... {len(ids) - shown} more" if len(ids) > shown else ""
    return "ids " + ", ".join(map(str, ids[:shown])) + more


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m plt.distributed.merge",
        description="Write a distributed crawl's items.jsonl from its items in Redis, "
        "checked against the crawl's export record.",
    )
    parser.add_argument("jobdir", type=Path, help="job directory; items.jsonl is written there")
    parser.add_argument("--redis-url", help="the crawl's Redis (REDIS_URL): required")
    parser.add_argument("--job", help="the crawl's PLT_REDIS_JOB (default: the JOBDIR's name)")
    args = parser.parse_args(argv)
    try:
        return _merge(args)
    except _Refused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.status


class _Refused(Exception):
    def __init__(self, message: str, status: int = 2) -> None:
        super().__init__(message)
        self.status = status


def _merge(args: argparse.Namespace) -> int:
    from redis import Redis
    from redis.exceptions import RedisError

    from plt.distributed.store import JobKeys, LeaseStore

    if not args.redis_url:
        raise _Refused("--redis-url is required: the items are in the crawl's Redis")
    job = args.job or args.jobdir.resolve().name
    server = Redis.from_url(args.redis_url)
    store = LeaseStore(server, JobKeys.for_job(job))
    try:
        identity = _identity(server, store, job, args.redis_url)
        _check_jobdir(args.jobdir, job, identity)
        args.jobdir.mkdir(parents=True, exist_ok=True)
        expected = store.exported_ids()
        result = write_items(store.items(), args.jobdir / ITEMS_FILE, expected, identity.shop_url)
    except RedisError as exc:
        raise _Refused(f"Redis at {args.redis_url} is not reachable ({exc})") from None
    finally:
        server.close()
    print(f"{result.items} items in crawl {job}'s stream; {len(expected)} exported")
    if result.foreign:
        raise _Refused(
            f"{result.out} not written: {result.foreign} items are not of the crawl's "
            f"retailer {identity.shop_url} (the first: {result.first_foreign})",
            status=1,
        )
    if result.missing:
        raise _Refused(
            f"{result.out} not written: {len(result.missing)} of the {len(expected)} items "
            f"exported in Redis are not in its items stream ({_some(result.missing)})",
            status=1,
        )
    print(f"wrote {result.out}")
    return 0


def _identity(server: Redis, store: LeaseStore, job: str, redis_url: str) -> CrawlIdentity:
    identity = read_identity(server, store.keys)
    if identity is None:
        raise _Refused(
            f"no crawl {job} in Redis at {redis_url}: nothing to write the items from "
            f"(name it with --job; a finished crawl's keys expire after "
            f"PLT_REDIS_FINISHED_TTL)"
        )
    return identity


def _check_jobdir(jobdir: Path, job: str, identity: CrawlIdentity) -> None:
    """A JOBDIR that belongs to another crawl of the same name is refused."""
    try:
        record = CrawlRecord(jobdir, job).read() if jobdir.is_dir() else None
    except JobStateError as exc:
        raise _Refused(str(exc)) from None
    if record is not None and record.generation != identity.generation:
        raise _Refused(
            f"{jobdir} holds crawl {job} started at {record.started_at} "
            f"({jobdir / RECORD_FILE}), not the one in Redis, started at {identity.started_at}"
        )


if __name__ == "__main__":
    sys.exit(main())
