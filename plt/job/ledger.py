"""The ledger: the one place that decides what becomes of a request.

A request is *settled* (its outcome is durable), *kept* for the next run of
the job (a failure that may pass), or *given up* (a permanent answer, too many
attempts, or a stored request that cannot be decoded). Attempts are counted
per request across runs, in the job state: one per run in which the request
failed after Scrapy's own retries. After ``PLT_JOB_MAX_ATTEMPTS`` of them it is
given up: a stat, one log line with the URL and the last error, and a line in
``<JOBDIR>/failed.jsonl``.

The ledger knows requests and item ids (``cb_kwargs[PLT_JOB_ITEM_ID_FIELD]``),
never what the items are.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, ClassVar
from weakref import WeakKeyDictionary

from itemadapter import ItemAdapter
from scrapy import Request, signals

from plt.job.itemsfile import DEFAULT_ID_FIELD as DEFAULT_ITEM_ID_FIELD
from plt.job.jobdir import record_failed
from plt.job.policy import MAY_PASS, PERMANENT, WITHDRAWN, Verdict, classify
from plt.job.requestcodec import KEEP_LEASE_KEY, LEASE_KEY, request_to_json
from plt.job.store import JobStore, job_store

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from twisted.python.failure import Failure

logger = logging.getLogger(__name__)

# Fates, as the ledger returns them.
SETTLED, KEPT, GIVEN_UP = "settled", "kept", "given_up"
DEFAULT_MAX_ATTEMPTS = 3
# What SQLite stores as an integer: a larger id is no id the job can keep.
_ID_RANGE = range(-(2**63), 2**63)


class Ledger:
    _by_crawler: ClassVar[WeakKeyDictionary[Any, Ledger]] = WeakKeyDictionary()

    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        self.crawler = crawler
        self.max_attempts = max(1, settings.getint("PLT_JOB_MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS))
        self.item_field = settings.get("PLT_JOB_ITEM_ID_FIELD") or DEFAULT_ITEM_ID_FIELD
        crawler.signals.connect(self.item_dropped, signal=signals.item_dropped)
        crawler.signals.connect(self.item_error, signal=signals.item_error)

    @classmethod
    def for_crawler(cls, crawler: Crawler) -> Ledger:
        ledger = cls._by_crawler.get(crawler)
        if ledger is None:
            ledger = cls._by_crawler[crawler] = cls(crawler)
        return ledger

    @property
    def state(self) -> JobStore:
        # Read when used: the spider creates the ledger before the add-ons
        # have set the crawl's settings (PLT_JOB_STORE).
        return job_store(self.crawler)

    @property
    def stats(self) -> Any:
        # Read when used: the spider creates the ledger before the crawl's stats exist.
        return self.crawler.stats

    @property
    def open(self) -> bool:
        return self.state.is_open

    def item_id(self, obj: Any) -> int | None:
        """The item id a request works for, or an item's own (a dict, an Item, a dataclass...)."""
        if isinstance(obj, Request):
            value = obj.cb_kwargs.get(self.item_field)
        else:
            value = ItemAdapter(obj).get(self.item_field) if ItemAdapter.is_item(obj) else None
        if isinstance(value, bool) or not isinstance(value, int) or value not in _ID_RANGE:
            return None
        return value

    # -- settled ----------------------------------------------------------------

    def settle(self, request: Request | None) -> str:
        """Everything the request produced is durable: never fetched again."""
        lease = request.meta.get(LEASE_KEY) if request is not None else None
        if lease is not None and self.open:
            self.state.settle(lease)
        return SETTLED

    def settle_item(self, item: dict[str, Any]) -> None:
        """The item is in the items file already (a duplicate): its leases are settled."""
        item_id = self.item_id(item)
        if item_id is not None and self.open:
            self.state.settle_item(item_id)

    def item_dropped(self, item: Any, response: Response, exception: Exception) -> None:
        # A pipeline decided the item's fate: its request is done. A request with
        # no item id of its own may have yielded more items: the LeaseMiddleware
        # settles it once all of them are durable.
        self.stats.inc_value("plt/job/item_dropped")
        request = getattr(response, "request", None)
        if request is not None and self.item_id(request) is not None:
            self.settle(request)

    def item_error(self, item: Any, response: Response, failure: Failure) -> None:
        request = getattr(response, "request", None)
        if request is not None:
            self.failed(request, failure)

    # -- failed -----------------------------------------------------------------

    def failed(
        self, request: Request, error: Failure | BaseException | Verdict, detail: str = ""
    ) -> str:
        """A request failed (after Scrapy's retries): its fate, by the policy.

        A withdrawn page (404, 410) is an answer: SETTLED is returned and the
        caller's output settles the lease as for any answer.
        """
        verdict = error if isinstance(error, Verdict) else classify(error)
        detail = detail or (verdict.reason if isinstance(error, Verdict) else _describe(error))
        if verdict.kind == WITHDRAWN:
            item_id = self.item_id(request)
            if item_id is not None and self.open:
                self.state.item_withdrawn(item_id)
            return SETTLED
        if verdict.kind == MAY_PASS:
            return self._keep(request, verdict, detail)
        assert verdict.kind == PERMANENT
        return self._give_up(request, verdict, detail, attempts=1)

    def _keep(self, request: Request, verdict: Verdict, detail: str) -> str:
        if request.meta.get(KEEP_LEASE_KEY):
            # Kept already in this run (its items may fail one by one): one attempt a run.
            return KEPT
        lease = request.meta.get(LEASE_KEY)
        request.meta[KEEP_LEASE_KEY] = True  # no answer settles it in this run
        attempts = self.state.record_attempt(lease, detail) if lease is not None else 1
        self.stats.inc_value(f"plt/job/failed/{verdict.reason}")
        if attempts >= self.max_attempts:
            return self._give_up(request, verdict, detail, attempts)
        self.stats.inc_value("plt/job/kept")
        self._keep_original(request, lease)
        logger.warning(
            "%s failed for now (%s); kept for the next run (attempt %d of %d)",
            request.url,
            detail,
            attempts,
            self.max_attempts,
        )
        return KEPT

    def _keep_original(self, request: Request, lease: Any) -> None:
        """A redirect hop that failed: the next run starts from the URL asked for."""
        urls = request.meta.get("redirect_urls")
        spider = getattr(self.crawler, "spider", None)
        if not urls or lease is None or spider is None:
            return
        original = request.replace(url=urls[0])
        try:
            data = request_to_json(original, spider)
        except (ValueError, TypeError, OverflowError):
            return
        self.state.replace_data(lease, data)

    def _give_up(self, request: Request, verdict: Verdict, detail: str, attempts: int) -> str:
        lease = request.meta.get(LEASE_KEY)
        request.meta[KEEP_LEASE_KEY] = True
        item_id = self.item_id(request)
        if lease is not None and self.open:
            self.state.fail_request(lease, item_id)
        self.stats.inc_value("plt/job/given_up")
        self.stats.inc_value(f"plt/job/given_up/{verdict.reason}")
        why = "a permanent answer" if verdict.kind == PERMANENT else f"{attempts} runs"
        where = record_failed(
            self.state.jobdir,
            {"url": request.url, "request": lease, "attempts": attempts, "error": detail},
        )
        logger.error(
            "Giving up on %s after %s: %s%s",
            request.url,
            why,
            detail,
            f" (listed in {where})" if where else "",
        )
        return GIVEN_UP

    def undecodable(self, lease: Any, data: Any, error: Exception) -> None:
        """A stored request that cannot be decoded is given up at once."""
        if self.open:
            self.state.give_up(lease)
        excerpt = data[:200] if isinstance(data, (str, bytes)) else data
        if isinstance(excerpt, bytes):
            excerpt = excerpt.decode("latin-1")
        where = record_failed(
            self.state.jobdir, {"request": lease, "error": str(error), "data": excerpt}
        )
        self.stats.inc_value("plt/job/undecodable")
        first = self.stats.get_value("plt/job/undecodable") == 1
        logger.log(
            logging.WARNING if first else logging.DEBUG,
            "Stored request %s cannot be decoded (%s); given up%s",
            lease,
            error,
            f", recorded in {where}" if where else "",
        )

    # -- what the job expects ---------------------------------------------------

    def announce(self, total: int | None, pages: int | None) -> None:
        """What the listing says it holds: checked against what it showed at the end."""
        if self.open:
            if total is not None:
                self.state.set_meta("announced_items", total)
            if pages is not None:
                self.state.set_meta("announced_pages", pages)

    def show(self, item_ids: list[int]) -> None:
        """Items the listing showed: each must end exported, withdrawn or given up."""
        valid = [i for i in item_ids if i in _ID_RANGE]
        if len(valid) < len(item_ids):
            self.stats.inc_value("plt/job/item_id_out_of_range", len(item_ids) - len(valid))
        if self.open and valid:
            self.state.show_items(valid)

    def seen(self, item_id: int) -> bool:
        """Shown by the listing, exported, or waiting for its last request."""
        if not self.open or item_id not in _ID_RANGE:
            return False
        state = self.state
        return (
            state.item_shown(item_id)
            or state.is_exported(item_id)
            or state.get_pending(item_id) is not None
        )


def _describe(error: Any) -> str:
    exc = getattr(error, "value", error)
    response = getattr(exc, "response", None)
    if response is not None and getattr(response, "status", None):
        return f"HTTP {response.status}"
    text = str(exc).strip()
    name = type(exc).__name__
    return f"{name}: {text}"[:300] if text else name
