"""Memory report: where the crawl's memory goes.

Logs a periodic one-line breakdown (RSS, scraper/downloader/scheduler backlog,
bytes on the wire vs decompressed) and keeps a bounded RSS time series
(plt.memseries). At spider close it writes memory-report.json and
memory-report.txt (this run; the text forms are plt.memtext's), appends the
run's samples to memory-samples.jsonl (every run of the job), and has a child
process draw memory.svg from them (plt.memchart), so the charting library never
loads into the crawl's memory.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scrapy import Spider, signals
from scrapy.exceptions import NotConfigured
from scrapy.utils.asyncio import create_looping_call
from scrapy.utils.trackref import live_refs

from plt import compat, memory, memsamples
from plt.memseries import Sample, SampleSeries
from plt.memtext import render_text, status_line

if TYPE_CHECKING:
    from typing import Self

    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

MIB = memory.MIB
# Peak RSS of `python -m plt.memchart` drawing 3 runs of 2,000 samples to SVG,
# measured with matplotlib 3.11.2: 78 MiB. The chart is drawn at close only if
# the container's memory limit leaves this much beside the crawl.
CHART_RSS_MIB = 100
CHART_TIMEOUT_S = 120  # matplotlib's first run on a machine builds its font cache
BYTE_STATS = {
    "response_bytes": "downloader/response_bytes",  # counted before decompression
    "wire": "plt/bytes/wire",
    "decoded": "plt/bytes/decoded",
    "skipped": "plt/bytes/skipped",
}


def live_objects() -> list[dict[str, Any]]:
    """Objects tracked by scrapy.utils.trackref, biggest first."""
    now = time.monotonic_ns()
    rows = []
    for cls, refs in list(live_refs.items()):
        objs = list(refs.items())
        if not objs:
            continue
        # Bodies are plain bytes, so their size is cheap to sum.
        size = sum(len(b) for o, _ in objs if (b := compat.body_of(o)) is not None)
        age = round((now - min(t for _, t in objs)) / 1e9, 1)
        rows.append(
            {"type": cls.__name__, "count": len(objs), "oldest_age_s": age, "body_bytes": size}
        )
    return sorted(rows, key=lambda r: (r["body_bytes"], r["count"]), reverse=True)


class MemoryReport:
    def __init__(self, crawler: Crawler):
        settings = crawler.settings
        if not settings.getbool("PLT_MEMREPORT_ENABLED", True):
            raise NotConfigured
        if not memory.psutil_available():
            raise NotConfigured("MemoryReport needs psutil")
        self.crawler = crawler
        self.stats = crawler.stats
        self.interval = settings.getfloat("PLT_MEMREPORT_INTERVAL", 60.0)
        self.sample_interval = settings.getfloat("PLT_MEMREPORT_SAMPLE_INTERVAL", 2.0)
        self.series = SampleSeries(settings.getint("PLT_MEMREPORT_MAX_SAMPLES", 2000))
        self.chart = settings.getbool("PLT_MEMCHART", True)
        self.cgroup_root = settings.get("PLT_GOVERNOR_CGROUP_ROOT") or memory.DEFAULT_CGROUP_ROOT
        self.profile = settings.get("PROFILE")
        self.jobdir = settings.get("JOBDIR") or settings.get("PLT_MEMREPORT_DIR")
        self.limit_mb = settings.getfloat("MEMUSAGE_LIMIT_MB") or None
        self.default_concurrency = settings.getint("CONCURRENT_REQUESTS")
        # Injectable for tests: returns the current RSS in bytes.
        self.read_rss: Callable[[], int] = memory.current_rss
        self.clock: Callable[[], float] = time.monotonic
        self.t0 = self.clock()
        self.started_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.peak_rss = 0
        self.engine_max: dict[str, int] = {}
        self._tasks: list[Any] = []
        crawler.signals.connect(self.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def spider_opened(self, spider: Spider) -> None:
        self.t0 = self.clock()
        self.started_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        if self.sample_interval > 0:
            self._start(self.sample, self.sample_interval, now=True)
        if self.interval > 0:
            self._start(self.log_status, self.interval, now=False)

    def _start(self, func: Callable[[], None], interval: float, now: bool) -> None:
        task = create_looping_call(func)
        task.start(interval, now=now)
        self._tasks.append(task)

    async def spider_closed(self, spider: Spider, reason: str) -> None:
        out = self.finish(reason)
        if out is not None and self.chart:
            await self.draw_chart(out)

    def finish(self, reason: str) -> Path | None:
        """Stop sampling and write this run's report and samples."""
        for task in self._tasks:
            if task.running:
                task.stop()
        self._tasks.clear()
        self.sample(force=True)
        if not self.stats.get_value("downloader/response_count"):
            # A run that fetched nothing (a finished or unusable job) has no
            # memory story, and must not overwrite the report of one that had.
            logger.info("No responses in this run: memory report not written")
            return None
        return self.write_report(reason)

    def rss(self) -> int:
        rss = self.read_rss()
        self.peak_rss = max(self.peak_rss, rss)
        return rss

    def budget_mb(self) -> float | None:
        return self.stats.get_value("plt/memory/budget_mb") or self.limit_mb

    def concurrency(self) -> int | None:
        value = self.stats.get_value("plt/memory/concurrency")  # 0 is a real value: paused
        return self.default_concurrency if value is None else value

    def engine_state(self) -> dict[str, Any]:
        """Backlogs that hold response bodies or requests; empty before/after the crawl."""
        state: dict[str, Any] = {}
        engine = compat.engine_of(self.crawler)
        if engine is None:
            return state
        state.update(compat.scraper_backlog(engine))
        downloader = getattr(engine, "downloader", None)
        if downloader is not None:
            state["downloader_active"] = compat.downloads_in_flight(downloader)
        scheduler = getattr(engine, "scheduler", None)
        if scheduler is not None:
            with contextlib.suppress(TypeError):  # schedulers need not define __len__
                state["scheduler"] = len(scheduler)
            if callable(sizes := getattr(scheduler, "queue_sizes", None)):
                state["scheduler_queues"] = dict(sizes())
        return state

    def snapshot(self) -> dict[str, Any]:
        rss = self.rss()
        state = self.engine_state()
        for key, value in state.items():
            if isinstance(value, int):
                self.engine_max[key] = max(self.engine_max.get(key, 0), value)
        byte_stats = {k: self.stats.get_value(s) for k, s in BYTE_STATS.items()}
        return {
            "rss_mb": round(rss / MIB, 1),
            "peak_rss_mb": round(self.peak_rss / MIB, 1),
            "budget_mb": self.budget_mb(),
            "concurrency": self.concurrency(),
            "engine": state,
            "pending_items": self.stats.get_value("plt/pending_items"),
            "bytes": {k: v for k, v in byte_stats.items() if v is not None},
        }

    def sample(self, force: bool = False) -> None:
        snap = self.snapshot()
        s = Sample(
            round(self.clock() - self.t0, 2), snap["rss_mb"], snap["concurrency"], snap["budget_mb"]
        )
        self.series.add(s, force=force)  # the closing reading is always kept

    def log_status(self) -> None:
        logger.info("Memory: %s", status_line(self.snapshot()), extra={"crawler": self.crawler})

    def build_report(self, reason: str) -> dict[str, Any]:
        snap = self.snapshot()
        ru = memory.ru_maxrss_bytes()
        return {
            "reason": reason,
            "elapsed_s": round(self.clock() - self.t0, 1),
            **snap,
            "ru_maxrss_mb": round(ru / MIB, 1) if ru else None,
            "engine_max": dict(self.engine_max),
            "live_objects": live_objects(),
            "samples": {
                "interval_s": self.sample_interval * self.series.stride,
                "count": len(self.series.samples),
                **self.series.columns(),
            },
        }

    def write_report(self, reason: str) -> Path | None:
        if not self.jobdir:
            logger.info("Memory report not written: set JOBDIR or PLT_MEMREPORT_DIR")
            return None
        out = Path(self.jobdir)
        report = self.build_report(reason)
        try:
            out.mkdir(parents=True, exist_ok=True)
            # Sample columns go on one line each so the file stays readable.
            text = json.dumps({**report, "samples": None}, indent=1, default=str)
            samples = json.dumps(report["samples"], separators=(",", ":"))
            text = text.replace('"samples": null', f'"samples": {samples}')
            (out / "memory-report.json").write_text(text)
            (out / "memory-report.txt").write_text(render_text(report))
            samples = report["samples"]
            run = memsamples.append_run(
                out,
                {
                    "job": out.resolve().name,
                    "profile": self.profile,
                    "started_at": self.started_at,
                    "reason": reason,
                    "interval_s": samples["interval_s"],
                    **{name: samples[name] for name in memsamples.COLUMNS},
                },
            )
        except OSError as exc:
            logger.error("Could not write memory report to %s: %s", out, exc)
            return None
        logger.info(
            "Memory report of run %d written to %s (memory-report.json/.txt, %s)",
            run,
            out,
            memsamples.SAMPLES_FILE,
        )
        return out

    def chart_headroom_mib(self) -> float | None:
        """What the container's memory limit leaves beside the crawl; None: no limit."""
        limit = memory.cgroup_memory_limit(self.cgroup_root)
        return None if limit is None else (limit - self.rss()) / MIB

    async def draw_chart(self, out: Path) -> Path | None:
        """Draw the job's chart in a child process: the crawl's RSS is not touched."""
        command = memsamples.chart_command(out)
        headroom = self.chart_headroom_mib()
        if headroom is not None and headroom < CHART_RSS_MIB:
            logger.warning(
                "Memory chart not drawn: the container's memory limit leaves %.0f MiB beside "
                "the crawl, the chart needs ~%d MiB. Draw it later with: %s",
                headroom,
                CHART_RSS_MIB,
                command,
            )
            return None
        error = await memsamples.draw_in_child(out, CHART_TIMEOUT_S)
        if error is not None:
            logger.warning("Memory chart not drawn (%s). Draw it with: %s", error, command)
            return None
        path = out / memsamples.CHART_FILE
        logger.info("Memory chart of the job: %s", path)
        return path
