"""JSON lines through ujson, one flushed line per item.

Registered as the ``jsonl`` format in FEED_EXPORTERS. Each line is built in
full and written with one call, then flushed, so a killed crawl leaves at most
one torn last line (which the next run of the job cuts off). On the job's own
feed (item_export_kwargs ``plt_job_feed``) it records each item as exported,
in the job state, right after its line is flushed and fsynced: the record can
then never get ahead of the items file, even after a power loss (the cost is
measured by benchmarks/durability.py). When the items file or the job state
cannot be written (a full disk), the job feed writes nothing more: the crawl
stops, and what was not recorded is exported again when the job resumes.
"""

from __future__ import annotations

import logging
import os
from typing import IO, TYPE_CHECKING, Any

import ujson
from scrapy.exporters import BaseItemExporter

from plt.job import crash
from plt.job.jobdir import write_failed
from plt.job.ledger import DEFAULT_ITEM_ID_FIELD, Ledger
from plt.job.store import JobStore, job_store

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)


class UjsonLinesExporter(BaseItemExporter):
    def __init__(
        self,
        file: IO[bytes],
        *,
        job_state: JobStore | None = None,
        ledger: Ledger | None = None,
        item_field: str = DEFAULT_ITEM_ID_FIELD,
        fsync: bool = True,
        **kwargs: Any,
    ):
        super().__init__(dont_fail=True, **kwargs)
        self.file = file
        self.job_state = job_state
        self.ledger = ledger
        self.item_field = item_field
        self.fsync = fsync
        self.encoding = self.encoding or "utf-8"

    @classmethod
    def from_crawler(cls, crawler: Crawler, file: IO[bytes], **kwargs: Any) -> UjsonLinesExporter:
        if not kwargs.pop("plt_job_feed", False):
            return cls(file, **kwargs)
        ledger = Ledger.for_crawler(crawler)
        return cls(
            file,
            job_state=job_store(crawler),
            ledger=ledger,
            item_field=ledger.item_field,
            # A shared store keeps each line with its record: the file is a copy.
            fsync=crawler.settings.getbool("PLT_JOB_FSYNC", True) and not job_store(crawler).shared,
            **kwargs,
        )

    def export_item(self, item: Any) -> None:
        fields = dict(self.get_serialized_fields(item))
        state = self.job_state
        if state is not None and state.write_error is not None:
            return  # stopping: the item's lease is open, so the next run exports it
        item_id = fields.get(self.item_field)
        if state is not None and self.ledger is not None and self.ledger.item_id(fields) is None:
            # Written, it would make the job's items file unreadable on resume.
            self.ledger.stats.inc_value("plt/job/item_without_id")
            logger.error(
                "Item without an integer %r (PLT_JOB_ITEM_ID_FIELD) not exported: %.200r",
                self.item_field,
                fields,
            )
            return
        if state is not None and state.is_open and state.is_exported(item_id):
            # Exports run one at a time, so this check cannot race; the
            # pipeline's earlier check can, between two items in flight.
            logger.warning("Item %s is already in the items file; not written again", item_id)
            if self.ledger is not None:
                self.ledger.settle_item(fields)
            return
        line = ujson.dumps(fields, ensure_ascii=False, escape_forward_slashes=False) + "\n"
        data = line.encode(self.encoding)
        try:
            self.file.write(data)
            self.file.flush()
            if state is not None and self.fsync:
                os.fsync(self.file.fileno())
        except OSError as exc:
            if state is None:
                raise
            # A torn line is cut off when the job resumes.
            state.fail(write_failed(getattr(self.file, "name", "the items file"), exc))
            return
        if state is not None and state.is_open:
            crash.point("after_flush")
            state.mark_exported(item_id, self.file.tell(), data)
            crash.point("after_record")
