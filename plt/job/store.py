"""The job store: what the scheduler, the ledger and the exporter keep of a job.

One interface, two backends: plt.job.sqlite (the default, one SQLite file in
JOBDIR) and the Redis store of distributed mode. The crawl's ``PLT_JOB_STORE``
setting names the backend's class (distributed mode's add-on sets it), so this
package never imports a backend it does not own. Like Scrapy's SCHEDULER, it
is a setting: nothing read from a job directory, Redis or a response can name
the class to load.

A store holds requests (queued, leased, settled, kept for the next run, given
up), the ledger's record (attempts per request, the items the listing
showed and their fates), partial items, and the export record. Item ids are
integers named by ``PLT_JOB_ITEM_ID_FIELD``; the store knows nothing of what
the items are.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar
from weakref import WeakKeyDictionary

from scrapy.utils.misc import load_object

from plt.errors import ConfigError
from plt.job.itemsfile import ITEMS_FILE

if TYPE_CHECKING:
    from collections.abc import Callable

    from scrapy.crawler import Crawler

    from plt.job.jobdir import JobStateError
    from plt.job.sqlrecord import Account

logger = logging.getLogger(__name__)

STORE_SETTING = "PLT_JOB_STORE"
DEFAULT_STORE = "plt.job.sqlite.SQLiteJobStore"


class JobStore(ABC):
    """The state of one job, shared by the scheduler, the ledger and the exporter."""

    #: Named in the scheduler's stats (scheduler/enqueued/<queue_name>).
    queue_name: ClassVar[str] = "disk"
    #: Shared by several processes (workers), each with its own run.
    shared: ClassVar[bool] = False

    def __init__(self, jobdir: str | Path | None, *, reset: bool = False) -> None:
        self.jobdir = Path(jobdir) if jobdir else None
        self.reset = reset
        self.requeued_on_open = 0
        self.repaired_bytes = 0
        self.resumed = False
        # Set once the store is open: a failed write then stops the crawl
        # (through on_error) instead of raising at the writer.
        self.ready = False
        self.write_error: JobStateError | None = None
        self.on_error: Callable[[JobStateError], None] | None = None

    @classmethod
    @abstractmethod
    def from_crawler(cls, crawler: Crawler) -> JobStore: ...

    # -- opening and closing -------------------------------------------------

    @property
    @abstractmethod
    def is_open(self) -> bool: ...

    @abstractmethod
    def open(self) -> None:
        """Open (or create) the job; raises JobStateError with one clear line."""

    @abstractmethod
    def close(self) -> None: ...

    @property
    def items_path(self) -> Path | None:
        return self.jobdir / ITEMS_FILE if self.jobdir else None

    @property
    def name(self) -> str:
        """The job, as messages name it."""
        return str(self.jobdir) if self.jobdir else "in memory"

    @property
    @abstractmethod
    def where(self) -> str:
        """Where the job is kept, for messages."""

    @abstractmethod
    def opened_line(self) -> str:
        """One line saying what the run starts from."""

    def fail(self, error: JobStateError) -> None:
        """A write failed: write nothing more, and let the crawl stop (on_error)."""
        if self.write_error is not None:
            return
        self.write_error = error
        if self.on_error is not None:
            self.on_error(error)

    # -- meta ----------------------------------------------------------------

    @abstractmethod
    def get_meta(self, key: str, default: Any = None) -> Any: ...

    @abstractmethod
    def set_meta(self, key: str, value: Any) -> None: ...

    # -- frontier ------------------------------------------------------------

    @abstractmethod
    def add_request(
        self,
        fp: str | None,
        priority: int,
        data: str,
        item_id: int | None,
        replaces: Any = None,
        seed: bool = False,
    ) -> bool:
        """Queue a request unless its fingerprint was seen; True when queued.

        ``replaces`` is the lease of the request this one continues (a retry,
        a redirect): it takes over that request's place and attempts.
        ``seed`` marks a request of spider.start().
        """

    @abstractmethod
    def add_seen(self, fp: str) -> bool:
        """Record a fingerprint without queueing anything; True when it is new."""

    @abstractmethod
    def lease_next(self) -> tuple[Any, str] | None:
        """Lease the next queued request: (lease, stored JSON), or None."""

    @property
    def takes_seeds(self) -> bool:
        """Whether this run queues the requests of spider.start()."""
        return True

    def hold(self, lease: Any, item_id: int | None) -> None:  # noqa: B027 (optional hook)
        """The scheduler hands the leased request (for ``item_id``) to the engine."""

    @abstractmethod
    def queued_count(self) -> int:
        """Requests queued, for this run to lease."""

    @abstractmethod
    def leased_count(self) -> int:
        """Requests leased by this run and not settled."""

    def release_held(self) -> int:
        """The run stops: leases it holds go back for the next run (or worker)."""
        return 0

    def idle(self) -> bool:
        """Nothing is queued or in flight for the job anywhere."""
        return self.queued_count() == 0 and self.leased_count() == 0

    def mark_finished(self) -> bool:
        """Record that the job is finished; False when the store finds work left
        after all (a store shared by workers checks it again, atomically)."""
        self.set_meta("finished", True)
        return True

    def crawl_over(self, finished: bool, settings: Any) -> None:  # noqa: B027 (optional hook)
        """Nothing is left to fetch in this run of the job (finished or not)."""

    @abstractmethod
    def settle(self, lease: Any) -> None:
        """The request's outcome is durable: it is never fetched again."""

    @abstractmethod
    def give_up(self, lease: Any) -> None:
        """The leased request cannot be decoded: given up, never finished."""

    @abstractmethod
    def given_up_count(self) -> int:
        """Stored requests given up because they cannot be decoded."""

    @abstractmethod
    def replace_data(self, lease: Any, data: str) -> None:
        """A leased request kept for the next run is stored as ``data`` instead."""

    # -- the ledger's record -------------------------------------------------

    @abstractmethod
    def record_attempt(self, lease: Any, error: str) -> int:
        """The request failed in this run: its attempts so far, this one included."""

    @abstractmethod
    def fail_request(self, lease: Any, item_id: int | None) -> None:
        """Given up by the ledger: never fetched again (unless asked), nor its item."""

    @abstractmethod
    def retry_failed(self) -> int:
        """Requests given up by the ledger are queued again, attempts reset."""

    @abstractmethod
    def show_items(self, item_ids: list[int]) -> None: ...

    @abstractmethod
    def item_shown(self, item_id: int) -> bool: ...

    @abstractmethod
    def item_withdrawn(self, item_id: int) -> None: ...

    @abstractmethod
    def settle_item(self, item_id: int) -> None:
        """The item is in the items file already: its open leases are settled."""

    @abstractmethod
    def account(self) -> Account:
        """Every item the listing showed, by fate, and the requests left."""

    # -- partial items and the export record ---------------------------------

    @abstractmethod
    def put_pending(self, item_id: int, fields: dict[str, Any]) -> None: ...

    @abstractmethod
    def get_pending(self, item_id: int) -> dict[str, Any] | None: ...

    @abstractmethod
    def pending_count(self) -> int: ...

    @abstractmethod
    def is_exported(self, item_id: int) -> bool: ...

    @abstractmethod
    def exported_count(self) -> int: ...

    @abstractmethod
    def mark_exported(self, item_id: int, items_offset: int, line: bytes = b"") -> None:
        """Called once the item's line is flushed to the items file.

        A store shared by several workers keeps ``line`` with the record, so that
        the item outlives the worker (and the disk) that wrote it.
        """


_stores: WeakKeyDictionary[Any, JobStore] = WeakKeyDictionary()


def job_store(crawler: Crawler) -> JobStore:
    """The crawler's job store, created on first use from its settings."""
    store = _stores.get(crawler)
    if store is None:
        path = crawler.settings.get(STORE_SETTING) or DEFAULT_STORE
        try:
            cls = load_object(path)
        except (ImportError, NameError, ValueError) as exc:
            raise ConfigError(f"{STORE_SETTING}={path!r} cannot be loaded: {exc}") from None
        if not (isinstance(cls, type) and issubclass(cls, JobStore)):
            raise ConfigError(f"{STORE_SETTING}={path!r} is not a job store (plt.job.store)")
        store = _stores[crawler] = cls.from_crawler(crawler)
    return store
