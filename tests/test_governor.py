from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest import mock

import pytest
from scrapy.exceptions import NotConfigured
from scrapy.utils.test import get_crawler

from plt import memory
from plt.extensions import governor as governor_module
from plt.extensions.governor import MemoryGovernor
from tests.helpers import FakeEngine

MIB = 1024 * 1024
BUDGET_MB = 1000


class Harness:
    """A governor on a real crawler with a fake engine, RSS and clock."""

    def __init__(self, tmp_path: Path, **settings: Any) -> None:
        base = {
            "CONCURRENT_REQUESTS": 64,
            "CONCURRENT_REQUESTS_PER_DOMAIN": 16,
            "PLT_MEMORY_BUDGET_MB": BUDGET_MB,
            "PLT_GOVERNOR_CGROUP_ROOT": str(tmp_path / "no-cgroup"),
            "PLT_GOVERNOR_TRIM_INTERVAL": 0,  # trimming has its own tests
            "PLT_GOVERNOR_MIN_CONCURRENCY": 2,
            "PLT_GOVERNOR_RAISE_STEP": 4,
        }
        self.crawler = get_crawler(settings_dict={**base, **settings})
        self.engine = FakeEngine(
            self.crawler.settings.getint("CONCURRENT_REQUESTS"),
            self.crawler.settings.getint("CONCURRENT_REQUESTS_PER_DOMAIN"),
        )
        self.crawler.engine = self.engine
        self.now = 0.0
        self.rss = 0
        self.gov = MemoryGovernor(self.crawler, rss_reader=lambda: self.rss, clock=lambda: self.now)

    def tick(self, fraction: float, advance: float = 1.0) -> None:
        """One tick `advance` seconds after the last one, at `fraction` of the budget."""
        self.now += advance
        self.rss = int(fraction * BUDGET_MB * MIB)
        self.gov.tick()

    def stat(self, name: str) -> Any:
        return self.crawler.stats.get_value(f"plt/memory/{name}")

    @property
    def total(self) -> int:
        return self.engine.downloader.total_concurrency

    def slot_concurrency(self) -> set[int]:
        return {s.concurrency for s in self.engine.downloader.slots.values()}


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


# -- configuration ---------------------------------------------------------


def test_disabled_raises_not_configured(tmp_path: Path) -> None:
    with pytest.raises(NotConfigured):
        Harness(tmp_path, PLT_GOVERNOR_ENABLED=False)


def test_missing_psutil_raises_not_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "psutil_available", lambda: False)
    crawler = get_crawler(settings_dict={"PLT_MEMORY_BUDGET_MB": 100})
    with pytest.raises(NotConfigured, match="psutil"):
        MemoryGovernor.from_crawler(crawler)


def test_no_budget_raises_not_configured(tmp_path: Path) -> None:
    with pytest.raises(NotConfigured, match="budget"):
        Harness(tmp_path, PLT_MEMORY_BUDGET_MB=0, MEMUSAGE_LIMIT_MB=0)


def test_unlimited_concurrency_raises_not_configured(tmp_path: Path) -> None:
    with pytest.raises(NotConfigured, match="CONCURRENT_REQUESTS"):
        Harness(tmp_path, CONCURRENT_REQUESTS=0)


def test_inconsistent_thresholds_are_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="PLT_GOVERNOR_LOW"):
        Harness(tmp_path, PLT_GOVERNOR_LOW=0.85)


def test_from_crawler_uses_psutil_rss() -> None:
    crawler = get_crawler(settings_dict={"PLT_MEMORY_BUDGET_MB": 100})
    gov = MemoryGovernor.from_crawler(crawler)
    assert gov._read_rss is memory.current_rss


# -- budget ----------------------------------------------------------------


def fake_cgroup_v2(tmp_path: Path, limit: str) -> Path:
    root = tmp_path / "cgroup"
    root.mkdir()
    (root / "memory.max").write_text(limit)
    return root


@pytest.mark.parametrize(
    ("settings", "cgroup", "expected_mb"),
    [
        ({"PLT_MEMORY_BUDGET_MB": 950}, None, 950),
        ({"PLT_MEMORY_BUDGET_MB": 950}, "max", 950),
        ({"PLT_MEMORY_BUDGET_MB": 950}, str(512 * MIB), 512),  # container is tighter
        ({"PLT_MEMORY_BUDGET_MB": 400}, str(1024 * MIB), 400),  # profile is tighter
        ({"PLT_MEMORY_BUDGET_MB": 0, "MEMUSAGE_LIMIT_MB": 950}, None, 950),
        ({"PLT_MEMORY_BUDGET_MB": 0, "MEMUSAGE_LIMIT_MB": 950}, str(256 * MIB), 256),
        ({"PLT_MEMORY_BUDGET_MB": 700, "MEMUSAGE_LIMIT_MB": 950}, None, 700),
        # -s MEMUSAGE_LIMIT_MB=160 under a profile's budget: the hard stop wins.
        ({"PLT_MEMORY_BUDGET_MB": 950, "MEMUSAGE_LIMIT_MB": 160}, None, 160),
        ({"PLT_MEMORY_BUDGET_MB": 0, "MEMUSAGE_LIMIT_MB": 0}, str(300 * MIB), 300),
    ],
)
def test_budget_is_the_lowest_limit(
    tmp_path: Path, settings: dict[str, int], cgroup: str | None, expected_mb: int
) -> None:
    if cgroup is not None:
        settings = {**settings, "PLT_GOVERNOR_CGROUP_ROOT": str(fake_cgroup_v2(tmp_path, cgroup))}
    h = Harness(tmp_path, **settings)
    assert h.gov.budget == expected_mb * MIB


def test_budget_from_cgroup_v1(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    (root / "memory").mkdir(parents=True)
    (root / "memory" / "memory.limit_in_bytes").write_text(str(600 * MIB))
    h = Harness(tmp_path, PLT_GOVERNOR_CGROUP_ROOT=str(root))
    assert h.gov.budget == 600 * MIB


# -- lifecycle -------------------------------------------------------------


def test_engine_started_sets_stats_and_starts_the_loop(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    loops: list[mock.Mock] = []

    def fake_looping_call(func: Any) -> mock.Mock:
        loops.append(mock.Mock(func=func, running=True))
        return loops[-1]

    monkeypatch.setattr(governor_module, "create_looping_call", fake_looping_call)
    h.gov.engine_started()
    assert loops[0].func == h.gov._safe_tick
    loops[0].start.assert_called_once_with(1.0, now=True)
    assert h.stat("budget_mb") == BUDGET_MB
    assert h.stat("concurrency") == 64
    for name in ("throttled", "raised", "trim_count", "paused_seconds", "trim_freed_mb"):
        assert h.stat(name) == 0

    h.tick(0.95)
    assert h.engine.paused
    h.gov.engine_stopped()
    loops[0].stop.assert_called_once_with()
    assert not h.engine.paused  # the engine is not left paused by us


def test_tick_errors_are_logged_once_and_do_not_stop_the_loop(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    h.gov._read_rss = mock.Mock(side_effect=OSError("boom"))
    with caplog.at_level(logging.ERROR):
        h.gov._safe_tick()
        h.gov._safe_tick()
    assert caplog.text.count("Memory governor tick failed") == 1
    assert h.crawler.stats.get_value("plt/memory/tick_errors") == 2


# -- throttling ------------------------------------------------------------


def test_rss_stats_follow_the_current_reading(h: Harness) -> None:
    h.tick(0.3)
    h.tick(0.5)
    h.tick(0.4)
    assert h.stat("rss_mb") == 400.0
    assert h.stat("rss_peak_mb") == 500.0


def test_no_change_below_high(h: Harness) -> None:
    for _ in range(10):
        h.tick(0.7)
    assert h.total == 64
    assert h.slot_concurrency() == {16}
    assert h.stat("throttled") is None
    assert h.stat("concurrency") == 64


def test_above_high_halves_with_a_cooldown_down_to_the_minimum(h: Harness) -> None:
    h.tick(0.85)
    assert (h.total, h.stat("concurrency"), h.stat("throttled")) == (32, 32, 1)
    assert h.slot_concurrency() == {16}  # per-slot maximum is lower than the target
    h.tick(0.85)  # 1 s later, within the 3 s cooldown: let the last cut take effect
    assert h.total == 32
    h.tick(0.85, advance=3)
    assert h.total == 16
    h.tick(0.85, advance=3)
    assert h.total == 8
    assert h.slot_concurrency() == {8}
    for _ in range(5):
        h.tick(0.85, advance=3)
    assert h.total == 2  # PLT_GOVERNOR_MIN_CONCURRENCY
    assert h.slot_concurrency() == {2}
    assert h.stat("throttled") == 5  # 64 -> 32 -> 16 -> 8 -> 4 -> 2, no-op cuts not counted
    assert not h.engine.paused


def test_minimum_concurrency_is_never_zero(tmp_path: Path) -> None:
    # A downloader total_concurrency of 0 would mean "unlimited".
    h = Harness(tmp_path, PLT_GOVERNOR_MIN_CONCURRENCY=0, CONCURRENT_REQUESTS=4)
    for _ in range(10):
        h.tick(0.99, advance=5)
    assert h.total == 1


# -- pausing ---------------------------------------------------------------


def test_pause_and_resume(h: Harness) -> None:
    h.tick(0.95)
    assert h.engine.paused
    assert h.total == 32  # halved at once, without waiting for a cooldown
    assert h.stat("concurrency") == 0  # no new requests while paused
    h.tick(0.85)  # between HIGH and PAUSE: stays paused (hysteresis)
    h.tick(0.85)
    assert h.engine.paused
    assert h.stat("paused_seconds") == 2.0
    h.engine._slot.nextcall.schedule.assert_not_called()

    h.tick(0.75)  # under HIGH: resume
    assert not h.engine.paused
    h.engine._slot.nextcall.schedule.assert_called_once_with()
    assert h.stat("paused_seconds") == 3.0
    assert h.stat("concurrency") == h.total == 32
    assert h.stat("pauses") == 1


def test_pause_is_not_repeated_while_paused(h: Harness) -> None:
    for _ in range(3):
        h.tick(0.97)
    assert h.stat("pauses") == 1
    assert h.total == 32  # one urgent halving; later ones keep the cooldown
    h.tick(0.97, advance=3)
    assert h.total == 16


def test_does_not_resume_a_pause_it_did_not_make(h: Harness) -> None:
    h.engine.pause()  # e.g. from the telnet console
    h.tick(0.95)
    h.tick(0.3)
    assert h.engine.paused
    assert h.stat("pauses") is None


def test_pause_times_out_and_rearms_under_high(tmp_path: Path) -> None:
    h = Harness(tmp_path, PLT_GOVERNOR_MAX_PAUSE=10)
    h.tick(0.95)
    for _ in range(9):
        h.tick(0.95)
    assert h.engine.paused
    h.tick(0.95)  # 10 s paused and RSS did not come down: crawl on slowly
    assert not h.engine.paused
    assert h.total == 2
    assert h.stat("pause_timeouts") == 1
    h.tick(0.95)
    assert not h.engine.paused  # not re-paused while still above HIGH
    h.tick(0.7)
    h.tick(0.95)
    assert h.engine.paused  # re-armed once RSS went under HIGH


def test_pause_ends_once_in_flight_work_has_drained(h: Harness) -> None:
    h.engine.scraper = SimpleNamespace(slot=mock.Mock(is_idle=mock.Mock(return_value=False)))
    h.tick(0.95)
    h.engine.downloader.active.clear()
    for _ in range(3):
        h.tick(0.95)
    assert h.engine.paused  # the scraper still holds responses
    h.engine.scraper.slot.is_idle.return_value = True
    h.tick(0.95)
    assert h.engine.paused  # drained: one more tick, with gc + trim, to see RSS fall
    h.tick(0.95)
    assert not h.engine.paused  # nothing left to wait for: crawl on slowly
    assert h.total == 2
    assert h.stat("pause_timeouts") == 1


def test_max_pause_zero_pauses_as_long_as_needed(tmp_path: Path) -> None:
    h = Harness(tmp_path, PLT_GOVERNOR_MAX_PAUSE=0)
    for _ in range(100):
        h.tick(0.95, advance=10)
    assert h.engine.paused


# -- raising ---------------------------------------------------------------


def test_additive_raise_after_consecutive_low_ticks_up_to_the_maximum(h: Harness) -> None:
    h.tick(0.95)
    for _ in range(5):
        h.tick(0.85, advance=3)
    h.tick(0.5)
    assert not h.engine.paused
    assert h.total == 2
    h.tick(0.5)
    assert h.total == 2  # two low ticks: not yet
    h.tick(0.5)
    assert h.total == 6  # third: +PLT_GOVERNOR_RAISE_STEP
    h.tick(0.5)
    h.tick(0.65)  # between LOW and HIGH: hold, and restart the count
    h.tick(0.5)
    h.tick(0.5)
    assert h.total == 6
    h.tick(0.5)
    assert h.total == 10
    assert h.stat("raised") == 2
    for _ in range(100):
        h.tick(0.5)
    assert h.total == 64  # never above CONCURRENT_REQUESTS
    assert h.slot_concurrency() == {16}  # back to the per-slot maximum
    assert h.stat("concurrency") == 64
    assert h.stat("raised") == 16


# -- trimming --------------------------------------------------------------


@pytest.fixture
def trim_mocks(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    mocks = SimpleNamespace(trim=mock.Mock(return_value=True), collect=mock.Mock(return_value=0))
    monkeypatch.setattr(memory, "malloc_trim_available", lambda: True)
    monkeypatch.setattr(memory, "malloc_trim", mocks.trim)
    monkeypatch.setattr(governor_module.gc, "collect", mocks.collect)
    return mocks


def test_trim_above_high_rate_limited_and_measured(
    tmp_path: Path, trim_mocks: SimpleNamespace
) -> None:
    h = Harness(tmp_path, PLT_GOVERNOR_TRIM_INTERVAL=10)
    readings = iter([850 * MIB, 700 * MIB])  # before and after the trim
    h.gov._read_rss = lambda: next(readings)
    h.gov.tick()
    trim_mocks.collect.assert_called_once_with()
    trim_mocks.trim.assert_called_once_with()
    assert h.stat("trim_count") == 1
    assert h.stat("trim_freed_mb") == 150.0
    assert h.stat("rss_mb") == 700.0
    assert h.total == 64  # trimming alone brought RSS under HIGH: no throttling

    h.gov._read_rss = lambda: 850 * MIB
    h.now += 5
    h.gov.tick()
    assert h.stat("trim_count") == 1  # at most once per PLT_GOVERNOR_TRIM_INTERVAL
    assert h.total == 32
    h.now += 5
    h.gov.tick()
    assert h.stat("trim_count") == 2
    assert h.stat("trim_freed_mb") == 150.0  # nothing freed the second time


def test_trim_every_tick_while_paused(tmp_path: Path, trim_mocks: SimpleNamespace) -> None:
    h = Harness(tmp_path, PLT_GOVERNOR_TRIM_INTERVAL=10)
    h.tick(0.95)
    assert h.engine.paused
    for _ in range(3):
        h.tick(0.85)
    assert trim_mocks.trim.call_count == 4
    h.tick(0.5)  # resumed
    h.tick(0.85)
    h.tick(0.85)
    assert trim_mocks.trim.call_count == 4  # back to once per PLT_GOVERNOR_TRIM_INTERVAL


def test_no_trim_below_high(tmp_path: Path, trim_mocks: SimpleNamespace) -> None:
    h = Harness(tmp_path, PLT_GOVERNOR_TRIM_INTERVAL=10)
    for _ in range(20):
        h.tick(0.79)
    trim_mocks.trim.assert_not_called()
    trim_mocks.collect.assert_not_called()


def test_trim_without_gc(tmp_path: Path, trim_mocks: SimpleNamespace) -> None:
    h = Harness(tmp_path, PLT_GOVERNOR_TRIM_INTERVAL=10, PLT_GOVERNOR_GC=False)
    h.tick(0.85)
    trim_mocks.collect.assert_not_called()
    trim_mocks.trim.assert_called_once_with()


def test_gc_only_where_malloc_trim_is_missing(
    tmp_path: Path, trim_mocks: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(memory, "malloc_trim_available", lambda: False)
    h = Harness(tmp_path, PLT_GOVERNOR_TRIM_INTERVAL=10)
    h.tick(0.85)
    trim_mocks.collect.assert_called_once_with()
    trim_mocks.trim.assert_not_called()
    assert h.stat("trim_count") == 0 or h.stat("trim_count") is None


# -- logging ---------------------------------------------------------------


def test_first_throttle_and_first_pause_are_logged_once(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="plt.extensions.governor"):
        for _ in range(4):
            h.tick(0.85, advance=3)
        h.tick(0.95)
        h.tick(0.5)
        h.tick(0.95)
    throttle = [r for r in caplog.records if "lowering concurrency" in r.getMessage()]
    pause = [r for r in caplog.records if "pausing new requests" in r.getMessage()]
    assert len(throttle) == 1
    assert throttle[0].getMessage() == (
        "Memory governor: RSS 850MiB is 85% of the 1000MiB budget, "
        "lowering concurrency from 64 to 32"
    )
    assert len(pause) == 1
    assert pause[0].levelno == logging.WARNING
    assert h.stat("pauses") == 2


# -- a real crawl ------------------------------------------------------------

CRAWL_SCRIPT = r"""
import json, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import scrapy
from scrapy.core.downloader import Downloader
from scrapy.crawler import CrawlerProcess

from plt.extensions.governor import MemoryGovernor

PAGES, BUDGET = 200, 1000 * 1024 * 1024
arrivals = []
state = {"pressure": 0.3, "pause": None, "resume": None, "in_downloader": None}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        arrivals.append(time.monotonic())
        time.sleep(0.02)
        body = b"<html><body><h1>p</h1></body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class FakePressureGovernor(MemoryGovernor):
    @classmethod
    def from_crawler(cls, crawler):
        governor = cls(crawler, rss_reader=lambda: int(state["pressure"] * BUDGET))
        if sys.argv[1] == "resume":
            # Wait for RSS to fall, not for the work in flight ("drain") to end.
            governor.control.drained = lambda: False
        return governor

    def _pause(self, rss, now):
        super()._pause(rss, now)
        state["pause"] = time.monotonic()
        # Requests the engine had already handed to the downloader still go out.
        state["in_downloader"] = len(self.crawler.engine.downloader.active)

    def _resume(self, now):
        super()._resume(now)
        state["resume"] = state["resume"] or time.monotonic()


class Spider(scrapy.Spider):
    name = "s"
    seen = 0

    async def start(self):
        for i in range(PAGES):
            yield scrapy.Request(f"{BASE}/{i}", dont_filter=True)

    def parse(self, response):
        self.seen += 1
        if self.seen == 40:  # memory pressure for one second
            state["pressure"] = 0.95
            threading.Timer(1.0, state.update, kwargs={"pressure": 0.3}).start()


ThreadingHTTPServer.request_queue_size = 128  # no SYN retries under load
server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
BASE = f"http://127.0.0.1:{server.server_port}"
process = CrawlerProcess({
    "CONCURRENT_REQUESTS": 8, "CONCURRENT_REQUESTS_PER_DOMAIN": 8,
    "PLT_MEMORY_BUDGET_MB": 1000, "PLT_GOVERNOR_INTERVAL": 0.1,
    "PLT_GOVERNOR_RAISE_TICKS": 1, "PLT_GOVERNOR_TRIM_INTERVAL": 0,
    "EXTENSIONS": {"__main__.FakePressureGovernor": 0},
    "LOG_LEVEL": "WARNING", "TELNETCONSOLE_ENABLED": False, "REMOTE_CONTROL_ENABLED": False,
})
crawler = process.create_crawler(Spider)
started = []  # when the engine hands a request to the downloader
fetch = Downloader.fetch


def recording_fetch(self, request, *args, **kwargs):
    started.append(time.monotonic())
    return fetch(self, request, *args, **kwargs)


Downloader.fetch = recording_fetch
process.crawl(crawler)
process.start()
server.shutdown()
stats = crawler.stats.get_stats()
pause, resume = state["pause"], state["resume"]
print(json.dumps({
    "responses": stats.get("response_received_count"),
    "finish_reason": stats.get("finish_reason"),
    "paused_seconds": stats.get("plt/memory/paused_seconds"),
    "throttled": stats.get("plt/memory/throttled"),
    "raised": stats.get("plt/memory/raised"),
    "concurrency": stats.get("plt/memory/concurrency"),
    "pause_window": resume - pause if pause and resume else None,
    "pause_timeouts": stats.get("plt/memory/pause_timeouts"),
    "in_downloader_at_pause": state["in_downloader"],
    "arrivals_in_pause": sum(pause < t < resume for t in arrivals) if pause else None,
    "started_in_pause": sum(pause < t < resume for t in started) if pause else None,
    "arrivals_after_resume": sum(t > resume for t in arrivals) if resume else None,
}))
"""


@pytest.mark.parametrize("mode", ["resume", "drain"])
def test_real_crawl_pauses_without_losing_requests(tmp_path: Path, mode: str) -> None:
    import json
    import subprocess
    import sys

    script = tmp_path / "crawl.py"
    script.write_text(CRAWL_SCRIPT)
    repo = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, str(script), mode],
        cwd=tmp_path,
        env={"PYTHONPATH": str(repo), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["finish_reason"] == "finished"
    assert out["responses"] == 200  # every request was crawled, none lost in the pause
    if mode == "resume":  # the pause lasted as long as the memory pressure
        assert out["pause_window"] > 0.8
        assert out["paused_seconds"] >= 0.8
        assert out["pause_timeouts"] is None
    else:  # pressure outlived the in-flight work: resumed early, at the minimum
        assert out["pause_window"] < 0.8
        assert out["pause_timeouts"] == 1
    # While paused the engine started nothing; only requests it had already handed
    # to the downloader reached the server.
    assert out["arrivals_in_pause"] <= out["in_downloader_at_pause"]
    assert out["started_in_pause"] == 0
    assert out["arrivals_after_resume"] > 0
    assert out["throttled"] >= 1
    assert out["raised"] >= 1
    assert out["concurrency"] == 8  # back to CONCURRENT_REQUESTS


# -- it can only lower what the user and the profile set ---------------------------


def test_never_above_scrapys_polite_defaults(tmp_path: Path) -> None:
    h = Harness(tmp_path, CONCURRENT_REQUESTS=16, CONCURRENT_REQUESTS_PER_DOMAIN=8)
    seen_total, seen_slot = set(), set()
    for fraction in [0.95, 0.85, 0.85, 0.5, 0.5, 0.5, 0.85, *[0.5] * 50, 0.7, *[0.5] * 20]:
        h.tick(fraction, advance=3)
        seen_total.add(h.total)
        seen_slot |= h.slot_concurrency()
    assert max(seen_total) == 16 and min(seen_total) < 16
    assert max(seen_slot) == 8 and min(seen_slot) < 8
    assert h.total == 16 and h.slot_concurrency() == {8}


def test_top_is_the_concurrency_after_the_profile_ceiling(tmp_path: Path) -> None:
    h = Harness(
        tmp_path,
        ADDONS={"plt.profiles.ProfileAddon": 0},
        PROFILE="256mb",
        CONCURRENT_REQUESTS=100,
    )
    assert h.gov.max_concurrency == 16
    for _ in range(30):
        h.tick(0.1)  # of 1000 MiB: well under the profile's LOW mark
    assert h.total == 16
