"""Every use of Scrapy's (and scrapy-deltafetch's) private or undocumented API.

Nothing public lets an extension wake the engine, start queued downloads
after raising a slot's concurrency, or read the scraper's and downloader's
backlogs, so the governor, the lease keeper, the memory report and the
deltafetch middleware go through the small functions here. :func:`check`
verifies at start that each name still exists on the installed version, and
fails with one line naming the missing one, instead of the crawl running on
with a component that silently stopped working after an upgrade.
"""

from __future__ import annotations

import dis
import functools
import inspect
from typing import TYPE_CHECKING, Any

import scrapy
from scrapy.core.downloader import Downloader
from scrapy.core.downloader import Slot as DownloaderSlot
from scrapy.core.engine import ExecutionEngine
from scrapy.core.scraper import Scraper
from scrapy.core.scraper import Slot as ScraperSlot
from scrapy.crawler import Crawler
from scrapy.http import Response
from scrapy.utils.reactor import CallLaterOnce
from scrapy_deltafetch.middleware import DeltaFetch

if TYPE_CHECKING:
    from scrapy import Request

TESTED_SCRAPY = "2.19"

# (owner, name, what uses it). A name that is a method must be one on the
# class; an attribute may exist only on instances, so it must be assigned by
# one of the class's methods.
NAMES: tuple[tuple[type, str, str], ...] = (
    (Crawler, "_engine", "memory report: the engine before Crawler.engine is set"),
    (ExecutionEngine, "_slot", "governor and lease keeper: wake the engine"),
    (ExecutionEngine, "scraper", "governor and memory report: the scraper's backlog"),
    (ExecutionEngine, "downloader", "governor: concurrency"),
    (CallLaterOnce, "schedule()", "governor and lease keeper: wake the engine"),
    (Downloader, "slots", "governor: per-slot concurrency"),
    (Downloader, "active", "governor and memory report: requests in the downloader"),
    (Downloader, "total_concurrency", "governor: total concurrency"),
    (Downloader, "_process_queue()", "governor: start queued downloads after a raise"),
    (DownloaderSlot, "concurrency", "governor: per-slot concurrency"),
    (DownloaderSlot, "queue", "governor: queued downloads"),
    (Scraper, "slot", "governor and memory report: the scraper's backlog"),
    (ScraperSlot, "queue", "memory report: responses waiting in the scraper"),
    (ScraperSlot, "active", "memory report: responses being parsed"),
    (ScraperSlot, "active_size", "memory report: bytes in the scraper"),
    (ScraperSlot, "is_idle()", "governor: in-flight work drained"),
    (Response, "_body", "memory report: body bytes of live responses"),
    (DeltaFetch, "_get_key()", "deltafetch: a request's key"),
    (DeltaFetch, "_is_enabled_for_request()", "deltafetch: DELTAFETCH_ENABLED per request"),
)


class ScrapyCompatError(RuntimeError):
    """The installed Scrapy lacks a name PLT relies on."""


def _exists(owner: type, name: str) -> bool:
    if name.endswith("()"):
        return callable(getattr(owner, name[:-2], None))
    return hasattr(owner, name) or _assigned(owner, name)


def _assigned(owner: type, name: str) -> bool:
    """``self.<name> = ...`` appears in a method of ``owner`` or of its bases."""
    for klass in owner.__mro__:
        for value in vars(klass).values():
            func = getattr(value, "fget", None) or getattr(value, "__func__", value)
            if not inspect.isfunction(func):
                continue
            for ins in dis.get_instructions(func):
                if ins.opname == "STORE_ATTR" and ins.argval == name:
                    return True
    return False


def missing(names: tuple[tuple[type, str, str], ...] = NAMES) -> list[str]:
    return [f"{o.__module__}.{o.__qualname__}.{n}" for o, n, _ in names if not _exists(o, n)]


@functools.cache
def check() -> None:
    """Once per process: every private name used here exists, or one clear error."""
    gone = missing()
    if gone:
        raise ScrapyCompatError(
            f"PLT needs {gone[0]}, which the installed Scrapy {scrapy.__version__} does not "
            f"have{f' (nor {len(gone) - 1} other internal names)' if len(gone) > 1 else ''}: "
            f"install the Scrapy version pinned in requirements.txt ({TESTED_SCRAPY}.x)."
        )


# -- the engine --------------------------------------------------------------


def engine_of(crawler: Any) -> Any:
    """The crawler's engine, or None before the crawl starts (Crawler.engine raises)."""
    return getattr(crawler, "_engine", None)


def wake_engine(engine: Any) -> None:
    """Make the engine look at its scheduler now, not at its next 5 s heartbeat."""
    slot = getattr(engine, "_slot", None)
    if slot is not None and slot.nextcall is not None:
        slot.nextcall.schedule()


def engine_can_wake(engine: Any) -> bool:
    return getattr(getattr(engine, "_slot", None), "nextcall", None) is not None


# -- the downloader ----------------------------------------------------------


def downloader_slots(downloader: Any) -> dict[str, Any]:
    """Download slots by key; each has ``concurrency`` and a ``queue``."""
    return downloader.slots


def start_queued_downloads(downloader: Any, slot: Any) -> None:
    """After a slot's concurrency was raised: start what waits in its queue."""
    downloader._process_queue(slot)


def downloads_in_flight(downloader: Any) -> int:
    return len(downloader.active)


# -- the scraper -------------------------------------------------------------


def scraper_slot(engine: Any) -> Any:
    return getattr(getattr(engine, "scraper", None), "slot", None)


def scraper_idle(engine: Any) -> bool:
    slot = scraper_slot(engine)
    return slot is None or slot.is_idle()


def scraper_backlog(engine: Any) -> dict[str, int]:
    """Responses queued and being parsed in the scraper, and their bytes."""
    slot = scraper_slot(engine)
    if slot is None:
        return {}
    return {
        "scraper_queued": len(slot.queue),
        "scraper_active": len(slot.active),
        "scraper_bytes": slot.active_size,
    }


def body_of(obj: Any) -> bytes | None:
    """A live response's body without creating it (``Response.body`` may)."""
    body = getattr(obj, "_body", None)
    return body if isinstance(body, bytes) else None


# -- scrapy-deltafetch -------------------------------------------------------


def deltafetch_key(middleware: DeltaFetch, request: Request) -> bytes:
    return middleware._get_key(request)


def deltafetch_enabled_for(middleware: DeltaFetch, request: Request) -> bool:
    return middleware._is_enabled_for_request(request)
