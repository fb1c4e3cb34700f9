"""The job's items.jsonl from the workers' items files, each product once.

    python -m plt.distributed.merge JOBDIR [MORE_FILES ...] --redis-url URL [--job NAME]

Workers of one crawl each append to ``<JOBDIR>/items-<worker>.jsonl``. A worker
killed between flushing a line and recording the export in Redis leaves a line
that another worker writes again; a killed worker may also leave a torn last
line. The merge keeps the first complete line of each product and writes the
result atomically (a temporary file, then a rename). A worker that sees the
crawl finished runs it on its JOBDIR; workers on other machines each have
their own file: gather them and run this command.

The result is checked against the crawl's record in Redis, and written only if
it holds every product id exported there and only items of the crawl's
retailer (SHOP_URL's host). The command refuses a crawl that Redis does not
know: it could check nothing. Exit status: 0 written; 1 the check failed;
2 it could not run (a missing file, a line that is no item, no such crawl,
Redis unreachable).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import ujson

from plt.distributed.identity import RECORD_FILE, CrawlIdentity, CrawlRecord, read_identity
from plt.job.itemsfile import DEFAULT_ID_FIELD, ITEMS_FILE, item_id_of
from plt.job.jobdir import JobStateError

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

    from plt.distributed.state import RedisJobState
    from plt.distributed.store import CrawlStatus

logger = logging.getLogger(__name__)

WORKER_FILES = "items-*.jsonl"


class MergeError(Exception):
    """An items file holds a line that is not a product item."""


@dataclass
class MergeResult:
    out: Path
    products: int = 0
    duplicates: int = 0
    torn: int = 0
    sources: list[Path] = field(default_factory=list)
    written: bool = False
    missing: list[int] = field(default_factory=list)  # exported, but in no file
    foreign: int = 0  # items of another retailer
    first_foreign: str = ""


def worker_files(jobdir: Path) -> list[Path]:
    return sorted(jobdir.glob(WORKER_FILES))


def site(url: str) -> str:
    """The host, without ``www.``: a retailer may redirect between the two, or to https."""
    host = urlsplit(url).hostname or ""
    return host.removeprefix("www.")


def merge_items(
    sources: list[Path],
    out: Path,
    expected: set[int] | None = None,
    shop_url: str | None = None,
    id_field: str = DEFAULT_ID_FIELD,
) -> MergeResult:
    """Write ``out`` from ``sources``; not written if a product id in ``expected`` is
    missing, or an item's url is not on ``shop_url``'s host."""
    result = MergeResult(out=out, sources=list(sources))
    shop_site = site(shop_url) if shop_url else None
    seen: set[int] = set()
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as w:
            for src in sources:
                with src.open("rb") as f:
                    offset = 0
                    for line in f:
                        here, offset = offset, offset + len(line)
                        if not line.endswith(b"\n"):
                            result.torn += 1  # a killed worker's half-written last line
                            continue
                        product_id = _item_id(src, line, here, id_field)
                        if product_id in seen:
                            result.duplicates += 1
                            continue
                        seen.add(product_id)
                        if shop_site is not None and site(url := _url(line)) != shop_site:
                            result.foreign += 1
                            result.first_foreign = result.first_foreign or url or "(no url)"
                        w.write(line)
            w.flush()
            os.fsync(w.fileno())
        result.products = len(seen)
        if expected is not None:
            result.missing = sorted(expected - seen)
        if result.missing or result.foreign:
            return result
        os.replace(tmp, out)
        result.written = True
        return result
    finally:
        tmp.unlink(missing_ok=True)


def _item_id(path: Path, line: bytes, offset: int, id_field: str) -> int:
    item_id = item_id_of(line, id_field)
    if item_id is None:
        raise MergeError(
            f"{path}: the line at byte {offset} has no integer {id_field!r}: {line[:80]!r}"
        )
    return item_id


def _url(line: bytes) -> str:
    url = ujson.loads(line).get("url")
    return url if isinstance(url, str) else ""


def finish_job(
    state: RedisJobState, status: CrawlStatus, settings: BaseSettings
) -> MergeResult | None:
    """Nothing is left to fetch: merge this JOBDIR's worker files into items.jsonl."""
    exported = status.exported
    outcome = "finished" if status.finished else "stopped"
    if status.failed:
        logger.warning(
            "%d requests failed for now (network or server errors); run a worker of "
            "the same crawl again to retry them.",
            status.failed,
        )
    if state.jobdir is None or not settings.getbool("PLT_REDIS_MERGE", True):
        logger.info("Crawl %s %s: %d products exported", state.job, outcome, exported)
        return None
    out = state.jobdir / ITEMS_FILE
    result = merge_items(
        worker_files(state.jobdir), out, state.store.exported_ids(), id_field=state.id_field
    )
    if result.written:
        logger.info(
            "Crawl %s %s: %d products in %s (merged from %d worker files, "
            "%d repeated lines dropped)",
            state.job,
            outcome,
            result.products,
            out,
            len(result.sources),
            result.duplicates,
        )
    else:
        logger.warning(
            "Crawl %s %s with %d products exported, but %d of them (%s) are in none of "
            "the items files in %s: the other workers' files are on other machines. "
            "Gather them and run python -m plt.distributed.merge %s FILES... --redis-url URL",
            state.job,
            outcome,
            exported,
            len(result.missing),
            _some(result.missing),
            state.jobdir,
            state.jobdir,
        )
    return result


def _some(ids: list[int], shown: int = 5) -> str:
    more = f", ... {len(ids) - shown} more" if len(ids) > shown else ""
    return "ids " + ", ".join(map(str, ids[:shown])) + more


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m plt.distributed.merge",
        description="Merge the workers' items files of a distributed crawl into items.jsonl, "
        "checked against the crawl's record in Redis.",
    )
    parser.add_argument("jobdir", type=Path, help="job directory; items.jsonl is written there")
    parser.add_argument("files", type=Path, nargs="*", help="more worker files (other machines)")
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
    if not args.redis_url:
        raise _Refused("--redis-url is required: the merge is checked against the crawl in Redis")
    missing = [str(f) for f in args.files if not f.is_file()]
    if missing:
        raise _Refused(f"no such file: {', '.join(missing)}")
    job = args.job or args.jobdir.resolve().name
    identity, expected = _crawl(args.redis_url, job)
    try:
        record = CrawlRecord(args.jobdir, job).read() if args.jobdir.is_dir() else None
    except JobStateError as exc:
        raise _Refused(str(exc)) from None
    if record is not None and record.generation != identity.generation:
        raise _Refused(
            f"the files in {args.jobdir} are of crawl {job} started at {record.started_at} "
            f"({args.jobdir / RECORD_FILE}), not of the one in Redis, started at "
            f"{identity.started_at}"
        )
    sources = worker_files(args.jobdir) + args.files
    try:
        result = merge_items(sources, args.jobdir / ITEMS_FILE, expected, identity.shop_url)
    except MergeError as exc:
        raise _Refused(str(exc)) from None
    print(
        f"{result.products} products from {len(sources)} files "
        f"({result.duplicates} repeated lines and {result.torn} torn lines dropped); "
        f"{len(expected)} exported in crawl {job}"
    )
    if result.foreign:
        raise _Refused(
            f"{result.out} not written: {result.foreign} items are not of the crawl's "
            f"retailer {identity.shop_url} (the first: {result.first_foreign})",
            status=1,
        )
    if result.missing:
        raise _Refused(
            f"{result.out} not written: {len(result.missing)} of the {len(expected)} "
            f"products exported in Redis "
            f"are in none of the files ({_some(result.missing)}); gather every worker's file",
            status=1,
        )
    print(f"wrote {result.out}")
    return 0


def _crawl(redis_url: str, job: str) -> tuple[CrawlIdentity, set[int]]:
    """The crawl's identity and exported product ids; _Refused if Redis does not know it."""
    from redis import Redis
    from redis.exceptions import RedisError

    from plt.distributed.store import JobKeys, LeaseStore

    server = Redis.from_url(redis_url)
    keys = JobKeys.for_job(job)
    try:
        identity = read_identity(server, keys)
        if identity is None:
            raise _Refused(
                f"no crawl {job} in Redis at {redis_url}: nothing to check the merge against "
                f"(name it with --job; a finished crawl's keys expire after "
                f"PLT_REDIS_FINISHED_TTL)"
            )
        return identity, LeaseStore(server, keys).exported_ids()
    except RedisError as exc:
        raise _Refused(f"Redis at {redis_url} is not reachable ({exc})") from None
    finally:
        server.close()


if __name__ == "__main__":
    sys.exit(main())
