"""MemoryGovernor extension: keep the crawl's current RSS inside its memory budget.

Budget: the lowest of PLT_MEMORY_BUDGET_MB, MEMUSAGE_LIMIT_MB (aiming above the hard stop
would be pointless) and the cgroup limit. Each tick:
at PLT_GOVERNOR_HIGH of it, gc + malloc_trim (rate limited) and halve the concurrency; at
PLT_GOVERNOR_PAUSE, also start no new request until RSS is back under HIGH; under
PLT_GOVERNOR_LOW for PLT_GOVERNOR_RAISE_TICKS ticks, add PLT_GOVERNOR_RAISE_STEP, up to
CONCURRENT_REQUESTS. Scrapy's MemoryUsage stays on as the last line of defence.
The target reaches the engine and the downloader through plt.concurrency.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from scrapy import signals
from scrapy.exceptions import NotConfigured
from scrapy.utils.asyncio import create_looping_call

from plt import memory
from plt.concurrency import ConcurrencyControl

if TYPE_CHECKING:
    from typing import Self

    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

MIB = memory.MIB
STAT = "plt/memory/"


class MemoryGovernor:
    def __init__(
        self,
        crawler: Crawler,
        rss_reader: Callable[[], int] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        settings = crawler.settings
        if not settings.getbool("PLT_GOVERNOR_ENABLED", True):
            raise NotConfigured
        if rss_reader is None:
            if not memory.psutil_available():
                raise NotConfigured("MemoryGovernor needs psutil to read the current RSS")
            rss_reader = memory.current_rss
        self.crawler = crawler
        self.stats = crawler.stats
        self.control = ConcurrencyControl(crawler)
        self._read_rss = rss_reader
        self._clock = clock

        self.max_concurrency: int = settings.getint("CONCURRENT_REQUESTS")
        if self.max_concurrency <= 0:
            raise NotConfigured("MemoryGovernor needs a finite CONCURRENT_REQUESTS")
        # Never 0: a downloader total_concurrency of 0 means "no limit".
        self.min_concurrency: int = min(
            max(1, settings.getint("PLT_GOVERNOR_MIN_CONCURRENCY", 1)), self.max_concurrency
        )
        self.interval: float = settings.getfloat("PLT_GOVERNOR_INTERVAL", 1.0)
        self.high: float = settings.getfloat("PLT_GOVERNOR_HIGH", 0.80)
        self.pause_at: float = settings.getfloat("PLT_GOVERNOR_PAUSE", 0.90)
        self.low: float = settings.getfloat("PLT_GOVERNOR_LOW", 0.60)
        if not 0 < self.low < self.high <= self.pause_at:
            raise ValueError(
                "MemoryGovernor needs 0 < PLT_GOVERNOR_LOW < PLT_GOVERNOR_HIGH <= "
                f"PLT_GOVERNOR_PAUSE, got {self.low}, {self.high}, {self.pause_at}"
            )
        self.raise_ticks: int = max(1, settings.getint("PLT_GOVERNOR_RAISE_TICKS", 3))
        self.raise_step: int = max(1, settings.getint("PLT_GOVERNOR_RAISE_STEP", 1))
        self.cooldown: float = settings.getfloat("PLT_GOVERNOR_COOLDOWN", 3.0)
        self.max_pause: float = settings.getfloat("PLT_GOVERNOR_MAX_PAUSE", 60.0)
        self.trim_interval: float = settings.getfloat("PLT_GOVERNOR_TRIM_INTERVAL", 10.0)
        self.collect_garbage: bool = settings.getbool("PLT_GOVERNOR_GC", True)

        cgroup_root = settings.get("PLT_GOVERNOR_CGROUP_ROOT") or memory.DEFAULT_CGROUP_ROOT
        self.cgroup_limit: int | None = memory.cgroup_memory_limit(cgroup_root)
        budget = memory.tightest_limit(
            settings.getint("PLT_MEMORY_BUDGET_MB") * MIB,
            settings.getint("MEMUSAGE_LIMIT_MB") * MIB,
            self.cgroup_limit,
        )
        if budget is None:
            raise NotConfigured(
                "MemoryGovernor has no budget: set PLT_MEMORY_BUDGET_MB or MEMUSAGE_LIMIT_MB"
            )
        self.budget: int = budget

        self.target: int = self.max_concurrency
        self.paused = False
        self._pause_started: float | None = None
        self._pause_spent = False  # a timed-out pause re-arms only once under HIGH
        self._low_ticks = 0
        self._drained_ticks = 0
        self._last_reduce = float("-inf")
        self._last_trim = float("-inf")
        self._last_tick: float | None = None
        self._paused_seconds = 0.0
        self._freed_mb = 0.0
        self._warned: set[str] = set()
        self._task: Any = None

        crawler.signals.connect(self.engine_started, signal=signals.engine_started)
        crawler.signals.connect(self.engine_stopped, signal=signals.engine_stopped)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def engine_started(self) -> None:
        initial = {"budget_mb": round(self.budget / MIB), "concurrency": self.target}
        initial |= dict.fromkeys(("throttled", "raised", "trim_count"), 0)
        initial |= dict.fromkeys(("paused_seconds", "trim_freed_mb"), 0.0)
        for name, value in initial.items():
            self.stats.set_value(STAT + name, value)
        cgroup = f"{self.cgroup_limit // MIB}MiB" if self.cgroup_limit else "none"
        logger.info(
            "Memory governor: budget %(budget)dMiB (cgroup limit: %(cgroup)s), "
            "concurrency %(min)d..%(max)d",
            {
                "budget": self.budget / MIB,
                "cgroup": cgroup,
                "min": self.min_concurrency,
                "max": self.max_concurrency,
            },
            extra={"crawler": self.crawler},
        )
        self._task = create_looping_call(self._safe_tick)
        self._task.start(self.interval, now=True)

    def engine_stopped(self) -> None:
        if self._task is not None and self._task.running:
            self._task.stop()
        if self.paused:
            self._resume(self._clock())

    def _safe_tick(self) -> None:
        # An exception would stop the looping call and silently end governing.
        try:
            self.tick()
        except Exception:
            if "tick_error" not in self._warned:
                self._warned.add("tick_error")
                logger.exception("Memory governor tick failed", extra={"crawler": self.crawler})
            self.stats.inc_value(STAT + "tick_errors")

    def tick(self) -> None:
        now = self._clock()
        rss = self._read_rss()
        if self._last_tick is not None and self.paused:
            self._paused_seconds += now - self._last_tick
        self._last_tick = now

        if rss >= self.high * self.budget and self._trim_due(now):
            rss = self._trim(rss, now)
        self.stats.set_value(STAT + "rss_mb", round(rss / MIB, 1))
        self.stats.max_value(STAT + "rss_peak_mb", round(rss / MIB, 1))
        fraction = rss / self.budget

        if fraction >= self.high:
            self._low_ticks = 0
            # Crossing PAUSE halves at once; otherwise wait `cooldown` between halvings
            # so that the effect of the last one (in-flight work draining) shows first.
            urgent = fraction >= self.pause_at and not self.paused and not self._pause_spent
            if urgent or now - self._last_reduce >= self.cooldown:
                self._reduce(rss, now)
            if urgent:
                self._pause(rss, now)
            elif self._pause_started is not None:
                self._check_pause(rss, now)
        else:
            self._pause_spent = False
            if self.paused:
                self._resume(now)
            if fraction < self.low:
                self._low_ticks += 1
                if self._low_ticks >= self.raise_ticks:
                    self._low_ticks = 0
                    self._raise()
            else:
                self._low_ticks = 0

        self._apply()
        self.stats.set_value(STAT + "paused_seconds", round(self._paused_seconds, 1))

    def _reduce(self, rss: int, now: float) -> None:
        self._last_reduce = now
        new = max(self.min_concurrency, self.target // 2)
        if new >= self.target:
            return
        old, self.target = self.target, new
        self.stats.inc_value(STAT + "throttled")
        self._log_once(
            "throttle",
            "Memory governor: RSS %(rss)dMiB is %(pct)d%% of the %(budget)dMiB budget, "
            "lowering concurrency from %(old)d to %(new)d",
            {**self._usage(rss), "old": old, "new": new},
        )

    def _raise(self) -> None:
        new = min(self.max_concurrency, self.target + self.raise_step)
        if new > self.target:
            logger.debug("Memory governor: raising concurrency to %(new)d", {"new": new})
            self.target = new
            self.stats.inc_value(STAT + "raised")

    def _pause(self, rss: int, now: float) -> None:
        if not self.control.pause():
            return  # paused by someone else: not ours to resume
        self.paused = True
        self._pause_started = now
        self.stats.inc_value(STAT + "pauses")
        self._log_once(
            "pause",
            "Memory governor: RSS %(rss)dMiB is %(pct)d%% of the %(budget)dMiB budget, "
            "pausing new requests until it is under %(resume)d%%",
            {**self._usage(rss), "resume": self.high * 100},
            level=logging.WARNING,
        )

    def _check_pause(self, rss: int, now: float) -> None:
        # RSS that in-flight work cannot bring down (a leak, a large scheduler) would
        # hang the crawl forever; once nothing is left in flight for two ticks (each
        # with gc + trim) or PLT_GOVERNOR_MAX_PAUSE passed, crawl on at the minimum
        # concurrency and leave the hard stop to MemoryUsage.
        assert self._pause_started is not None
        self._drained_ticks = self._drained_ticks + 1 if self.control.drained() else 0
        paused_for = now - self._pause_started
        if self._drained_ticks < 2 and not 0 < self.max_pause <= paused_for:
            return
        self._resume(now)
        self._pause_spent = True
        self.target = self.min_concurrency
        self.stats.inc_value(STAT + "pause_timeouts")
        self._log_once(
            "pause_timeout",
            "Memory governor: RSS %(rss)dMiB still %(pct)d%% of the %(budget)dMiB budget "
            "after a %(secs)ds pause, resuming at concurrency %(new)d",
            {**self._usage(rss), "secs": paused_for, "new": self.target},
            level=logging.WARNING,
        )

    def _resume(self, now: float) -> None:
        self.paused = False
        self._drained_ticks = 0
        self._pause_started = None
        self.control.resume()
        logger.debug("Memory governor: resuming new requests", extra={"crawler": self.crawler})

    def _apply(self) -> None:
        self.control.apply(self.target)
        self.stats.set_value(STAT + "concurrency", 0 if self.paused else self.target)

    def _trim_due(self, now: float) -> bool:
        if self.trim_interval <= 0:
            return False
        # While paused nothing new starts, and garbage freed by in-flight work finishing
        # only shows in RSS after gc + trim, so trim every tick to resume sooner.
        every = self.interval if self.paused else self.trim_interval
        return now - self._last_trim >= every

    def _trim(self, rss: int, now: float) -> int:
        """Free cyclic garbage and glibc's cached heap; return the new RSS."""
        self._last_trim = now
        if self.collect_garbage:
            # Parsed responses sit in reference cycles (parsel/lxml), so they and
            # their bodies are freed only by a full collection, not on refcount.
            gc.collect()
        if memory.malloc_trim_available():
            memory.malloc_trim()
            self.stats.inc_value(STAT + "trim_count")
        elif not self.collect_garbage:
            return rss
        after = self._read_rss()
        freed = max(0, rss - after)
        self._freed_mb += freed / MIB
        self.stats.set_value(STAT + "trim_freed_mb", round(self._freed_mb, 1))
        logger.debug(
            "Memory governor: gc + malloc_trim freed %(freed)dMiB",
            {"freed": freed / MIB},
            extra={"crawler": self.crawler},
        )
        return after

    def _usage(self, rss: int) -> dict[str, float]:
        return {"rss": rss / MIB, "pct": 100 * rss / self.budget, "budget": self.budget / MIB}

    def _log_once(
        self, key: str, msg: str, args: dict[str, Any], level: int = logging.INFO
    ) -> None:
        # The first occurrence at `level`, later ones at DEBUG: stats count them all.
        first = key not in self._warned
        self._warned.add(key)
        logger.log(level if first else logging.DEBUG, msg, args, extra={"crawler": self.crawler})
