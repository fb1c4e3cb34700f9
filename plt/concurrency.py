"""Holding a running crawl to a concurrency target, from outside the engine.

The memory governor (plt.extensions.governor) decides the target; this pushes it
into Scrapy's downloader (the total, and each download slot up to the slot's own
maximum), pauses and resumes new requests, and says whether the work in flight
has drained. Scrapy's private names are reached through plt.compat.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from plt import compat

if TYPE_CHECKING:
    from scrapy.crawler import Crawler


class ConcurrencyControl:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler  # its engine exists only once the crawl runs
        self._slot_max: dict[str, int] = {}

    def apply(self, target: int) -> None:
        """Push the target into the downloader: total and per-slot concurrency."""
        downloader = self.crawler.engine.downloader
        downloader.total_concurrency = target
        slots = compat.downloader_slots(downloader)
        for key in list(self._slot_max):
            if key not in slots:
                del self._slot_max[key]  # garbage-collected by the downloader
        for key, slot in list(slots.items()):
            # First sight of a slot is before any change by us: its own maximum.
            top = self._slot_max.setdefault(key, slot.concurrency)
            new = min(top, target)
            if new != slot.concurrency:
                raised = new > slot.concurrency
                slot.concurrency = new
                if raised and slot.queue:
                    # Start queued downloads now, not at the next finish.
                    compat.start_queued_downloads(downloader, slot)

    def pause(self) -> bool:
        """Start no new request; False when the engine was paused already (not by us).

        engine.pause() only gates ExecutionEngine._start_scheduled_requests (the sole
        reader of engine.paused): no new request leaves the scheduler, while downloads
        already in the downloader finish, the scraper keeps parsing and pipelines keep
        running, so memory held by in-flight work drains. The engine's idle check sits
        behind the same gate, so a pause cannot close the spider early. Alternatives
        are worse: downloader.total_concurrency=0 means *unlimited*, 1 still starts a
        request whenever the downloader empties, and wrapping engine.needs_backout()
        makes the engine drain spider.start() eagerly into the scheduler.
        """
        engine = self.crawler.engine
        if engine.paused:
            return False  # paused by someone else: not ours to resume
        engine.pause()
        return True

    def resume(self) -> None:
        engine = self.crawler.engine
        engine.unpause()
        compat.wake_engine(engine)  # or it waits for its 5 s heartbeat

    def drained(self) -> bool:
        """Nothing left in flight: no download running, no response being parsed."""
        engine = self.crawler.engine
        return compat.scraper_idle(engine) and not compat.downloads_in_flight(engine.downloader)
