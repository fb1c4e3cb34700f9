"""Crawl progress: products done of the listing's total, rate, ETA and RSS.

It counts the whole job: ``plt/products/done_before`` (what earlier runs
finished) and ``plt/products/total`` come back from the job state on a resume
(see ProductSpider.restore_job_figures), so the bar keeps its total and ETA.

On an interactive terminal a tqdm bar is redrawn every second and log records
are written above it; elsewhere (CI, Scrapy Cloud, redirected output) a
periodic log line is emitted instead.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections import deque
from collections.abc import Callable
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING, Any

from scrapy import Spider, signals
from scrapy.exceptions import NotConfigured
from scrapy.utils.asyncio import create_looping_call

from plt import memory

if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Self

    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

MIB = memory.MIB
MODES = ("auto", "bar", "log", "off")
TICK = 1.0  # seconds between readings; also the bar's redraw period


def fmt_duration(seconds: float) -> str:
    """6m06s-style duration, coarse enough to read at a glance."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def choose_mode(setting: str, stream: IO[str], env: dict[str, str]) -> str:
    """Resolve "auto": a bar only on an interactive terminal outside CI."""
    if setting != "auto":
        return setting
    interactive = hasattr(stream, "isatty") and stream.isatty()
    return "bar" if interactive and not env.get("CI") else "log"


class RateWindow:
    """Items per second over the last `window` seconds of (time, done) readings."""

    def __init__(self, window: float = 60.0):
        self.window = window
        self.points: deque[tuple[float, int]] = deque()

    def add(self, t: float, done: int) -> None:
        self.points.append((t, done))
        # Keep one point at or beyond the window edge so the span stays ~window long.
        while len(self.points) > 2 and t - self.points[1][0] >= self.window:
            self.points.popleft()

    def rate(self) -> float | None:
        if len(self.points) < 2:
            return None
        (t0, d0), (t1, d1) = self.points[0], self.points[-1]
        return (d1 - d0) / (t1 - t0) if t1 > t0 else None


class Progress:
    def __init__(self, crawler: Crawler):
        settings = crawler.settings
        setting = str(settings.get("PLT_PROGRESS", "auto")).lower()
        if setting not in MODES:
            raise ValueError(f"PLT_PROGRESS must be one of {MODES}, got {setting!r}")
        if setting == "off":
            raise NotConfigured
        self.crawler = crawler
        self.stats = crawler.stats
        self.interval = settings.getfloat("PLT_PROGRESS_INTERVAL", 30.0)
        self.limit_mb = settings.getfloat("MEMUSAGE_LIMIT_MB") or None
        self.bar_file: IO[str] = sys.stderr
        self.mode = choose_mode(setting, self.bar_file, dict(os.environ))
        self.rates = RateWindow(settings.getfloat("PLT_PROGRESS_WINDOW", 60.0))
        # Injectable for tests: current RSS in bytes, or None when unknown.
        self.read_rss: Callable[[], int | None] = self._process_rss
        self.clock: Callable[[], float] = time.monotonic
        self.bar: Any = None
        self._last_log: float | None = None
        self._task: Any = None
        self._redirect: Any = None
        crawler.signals.connect(self.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def spider_opened(self, spider: Spider) -> None:
        self._last_log = self.clock()
        if self.mode == "bar":
            self.open_bar()
        self._task = create_looping_call(self.tick)
        # A short log interval needs readings at least that often.
        period = min(TICK, self.interval) if self.mode == "log" and self.interval > 0 else TICK
        self._task.start(period, now=False)

    def spider_closed(self, spider: Spider, reason: str) -> None:
        if self._task is not None and self._task.running:
            self._task.stop()
        state = self.tick(final=True)
        self.close_bar()
        if self.mode == "log" or self.bar is None:
            logger.info("Progress at close: %s", self.format_line(state))

    def _process_rss(self) -> int | None:
        return memory.current_rss() if memory.psutil_available() else None

    def read(self) -> dict[str, Any]:
        """Current progress numbers; also feeds the rate window."""
        get = self.stats.get_value
        # Withdrawn products never yield an item but are finished all the same;
        # done_before is what earlier runs of the job finished.
        withdrawn = get("plt/product/withdrawn") or 0
        run_done = (get("item_scraped_count") or 0) + withdrawn
        done = (get("plt/products/done_before") or 0) + run_done
        total = get("plt/products/total")
        now = self.clock()
        self.rates.add(now, run_done)  # the rate is this run's, whenever done_before arrives
        rate = self.rates.rate()
        eta = None
        if total and rate:
            eta = max(0, total - done) / rate
        rss = self.read_rss()
        return {
            "done": done,
            "total": total,
            "rate": rate,
            "eta": eta,
            "rss_mb": rss / MIB if rss is not None else None,
            "budget_mb": get("plt/memory/budget_mb") or self.limit_mb,
        }

    def tick(self, final: bool = False) -> dict[str, Any]:
        state = self.read()
        if state["rate"] is not None:
            self.stats.set_value("plt/progress/rate", round(state["rate"], 2))
        if state["eta"] is not None:
            self.stats.set_value("plt/progress/eta_s", round(state["eta"]))
        if self.bar is not None:
            self.update_bar(state)
        elif not final and self.interval > 0:
            now = self.clock()
            if self._last_log is None or now - self._last_log >= self.interval:
                self._last_log = now
                logger.info("Progress: %s", self.format_line(state))
        return state

    @staticmethod
    def format_line(state: dict[str, Any]) -> str:
        done, total = state["done"], state["total"]
        if total:
            head = f"{done:,}/{total:,} products ({100 * done / total:.1f}%)"
        else:
            head = f"{done:,} products"
        parts = [head, "?/s" if state["rate"] is None else f"{state['rate']:.1f}/s"]
        if state["eta"] is not None:
            parts.append(f"ETA {fmt_duration(state['eta'])}")
        parts.append(Progress.format_rss(state))
        return ", ".join(p for p in parts if p)

    @staticmethod
    def format_rss(state: dict[str, Any]) -> str:
        if state["rss_mb"] is None:
            return ""
        budget = f"/{state['budget_mb']:,.0f}" if state["budget_mb"] else ""
        return f"RSS {state['rss_mb']:,.0f}{budget} MiB"

    def open_bar(self) -> None:
        try:
            from tqdm import tqdm
        except ImportError:
            self.mode = "log"
            return
        self.bar = tqdm(
            total=None,
            unit="product",
            file=self.bar_file,
            dynamic_ncols=True,
            # Rate and ETA come from our moving window, not tqdm's own timer.
            bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt}{postfix}",
            leave=True,
        )
        self._redirect = _logs_above_bar(self.bar_file)
        self._redirect.__enter__()

    def update_bar(self, state: dict[str, Any]) -> None:
        bar = self.bar
        if state["total"] and bar.total != state["total"]:
            bar.total = state["total"]
        bar.n = state["done"]
        rate = "?/s" if state["rate"] is None else f"{state['rate']:.1f}/s"
        eta = f"ETA {fmt_duration(state['eta'])}" if state["eta"] is not None else ""
        bar.set_postfix_str(" ".join(p for p in (rate, eta, self.format_rss(state)) if p), False)
        bar.refresh()

    def close_bar(self) -> None:
        if self._redirect is not None:
            self._redirect.__exit__(None, None, None)
            self._redirect = None
        if self.bar is not None:
            self.bar.close()


class _BarSafeStream:
    """Stream wrapper that clears the bar, writes a log record and redraws the bar."""

    def __init__(self, stream: IO[str]):
        self.stream = stream

    def write(self, text: str) -> int:
        from tqdm import tqdm

        with tqdm.external_write_mode(file=self.stream):
            return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()


@contextmanager
def _logs_above_bar(bar_file: IO[str]) -> Iterator[None]:
    """Route console log handlers through _BarSafeStream, keeping their level,
    filters and format (tqdm's own logging_redirect_tqdm drops the level)."""
    consoles = (sys.stderr, sys.stdout, bar_file)
    swapped = [
        (h, h.setStream(_BarSafeStream(h.stream)))  # type: ignore[arg-type]
        for h in logging.root.handlers
        if type(h) is logging.StreamHandler and h.stream in consoles
    ]
    try:
        yield
    finally:
        for handler, original in swapped:
            handler.setStream(original)
