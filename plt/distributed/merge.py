"""The job's items.jsonl from the workers' items files, each product once.

    python -m plt.distributed.merge JOBDIR [MORE_FILES ...] [--redis-url URL --job NAME]

Workers of one crawl each append to ``<JOBDIR>/items-<worker>.jsonl``. A worker
killed between flushing a line and recording the export in Redis leaves a line
that another worker writes again; a killed worker may also leave a torn last
line. The merge keeps the first complete line of each product and writes the
result atomically (a temporary file, then a rename). A worker that sees the
crawl finished runs it on its JOBDIR; workers on other machines each have
their own file: gather them and run this command.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from plt.job.itemsfile import DEFAULT_ID_FIELD, ITEMS_FILE, item_id_of

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


def worker_files(jobdir: Path) -> list[Path]:
    return sorted(jobdir.glob(WORKER_FILES))


def merge_items(
    sources: list[Path],
    out: Path,
    expected: int | None = None,
    id_field: str = DEFAULT_ID_FIELD,
) -> MergeResult:
    """Write ``out`` from ``sources``; not written if fewer than ``expected`` items."""
    result = MergeResult(out=out, sources=list(sources))
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
                        w.write(line)
            w.flush()
            os.fsync(w.fileno())
        result.products = len(seen)
        if expected is not None and result.products < expected:
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
        worker_files(state.jobdir), out, expected=exported, id_field=state.id_field
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
            "Crawl %s %s with %d products exported, but the items files in %s hold "
            "%d: the other workers' files are on other machines. Gather them and run "
            "python -m plt.distributed.merge %s FILES...",
            state.job,
            outcome,
            exported,
            state.jobdir,
            result.products,
            state.jobdir,
        )
    return result


def _expected(redis_url: str, job: str) -> int:
    from redis import Redis

    from plt.distributed.store import JobKeys

    return int(Redis.from_url(redis_url).scard(JobKeys.for_job(job).exported))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m plt.distributed.merge",
        description="Merge the workers' items files of a distributed crawl into items.jsonl.",
    )
    parser.add_argument("jobdir", type=Path, help="job directory; items.jsonl is written there")
    parser.add_argument("files", type=Path, nargs="*", help="more worker files (other machines)")
    parser.add_argument("--redis-url", help="check that every exported product is present")
    parser.add_argument("--job", help="the crawl's PLT_REDIS_JOB (default: the JOBDIR's name)")
    args = parser.parse_args(argv)
    missing = [str(f) for f in args.files if not f.is_file()]
    if missing:
        print(f"error: no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    sources = worker_files(args.jobdir) + args.files
    expected = None
    if args.redis_url:
        expected = _expected(args.redis_url, args.job or args.jobdir.resolve().name)
    try:
        result = merge_items(sources, args.jobdir / ITEMS_FILE, expected)
    except MergeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"{result.products} products from {len(sources)} files "
        f"({result.duplicates} repeated lines and {result.torn} torn lines dropped)"
        + (f"; {expected} exported in Redis" if expected is not None else "")
    )
    if not result.written:
        print(f"error: {result.out} not written: products are missing", file=sys.stderr)
        return 1
    print(f"wrote {result.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
