import asyncio
import json
import logging
import os
import subprocess
import sys
import textwrap
import threading
import xml.etree.ElementTree as ET
from collections import deque
from pathlib import Path
from types import SimpleNamespace

import pytest
from aiohttp import web
from scrapy import Request, Spider
from scrapy.exceptions import NotConfigured
from scrapy.http import HtmlResponse
from scrapy.utils.test import get_crawler

from plt import memsamples
from plt.extensions import memreport
from plt.extensions.memreport import MemoryReport, live_objects

MB = 1024 * 1024
ROOT = Path(__file__).resolve().parents[1]
SVG = "{http://www.w3.org/2000/svg}"


class Feed:
    """Fake clock and RSS readings driven by the test."""

    def __init__(self) -> None:
        self.t = 1000.0
        self.rss = 100 * MB


def make(**settings):
    crawler = get_crawler(Spider, settings)
    ext = MemoryReport.from_crawler(crawler)
    feed = Feed()
    ext.read_rss = lambda: feed.rss
    ext.clock = lambda: feed.t
    ext.t0 = feed.t
    return ext, crawler, feed


def fake_engine(crawler):
    slot = SimpleNamespace(
        queue=deque([1, 2, 3]), active={"a", "b"}, active_size=int(4.5 * MB), itemproc_size=0
    )

    class Sched:
        def __len__(self):
            return 1204

        def queue_sizes(self):
            return {"memory": 1000, "disk": 204}

    crawler.engine = SimpleNamespace(
        scraper=SimpleNamespace(slot=slot),
        downloader=SimpleNamespace(active=set(range(16))),
        scheduler=Sched(),
    )


def test_disabled_raises_not_configured():
    with pytest.raises(NotConfigured):
        MemoryReport.from_crawler(get_crawler(Spider, {"PLT_MEMREPORT_ENABLED": False}))


def test_missing_psutil_raises_not_configured(monkeypatch):
    monkeypatch.setattr(memreport.memory, "psutil", None)
    with pytest.raises(NotConfigured):
        MemoryReport.from_crawler(get_crawler(Spider))


def test_status_line_has_every_part(caplog):
    ext, crawler, feed = make()
    fake_engine(crawler)
    feed.rss = 412 * MB
    stats = crawler.stats
    stats.set_value("plt/memory/budget_mb", 950)
    stats.set_value("plt/memory/concurrency", 8)
    stats.set_value("plt/pending_items", 12)
    stats.set_value("downloader/response_bytes", 450 * MB)
    stats.set_value("plt/bytes/wire", 450 * MB)
    stats.set_value("plt/bytes/decoded", 1500 * MB)
    stats.set_value("plt/bytes/skipped", 1400 * MB)
    with caplog.at_level(logging.INFO, logger=memreport.__name__):
        ext.log_status()
    (msg,) = [r.getMessage() for r in caplog.records]
    assert msg.startswith("Memory: RSS 412 MiB (peak 412, budget 950)")
    for part in (
        "concurrency 8",
        "scraper 3 queued + 2 active (4.5 MiB)",
        "downloader 16 active",
        "scheduler 1,204 (memory 1,000, disk 204)",
        "pending items 12",
        "wire 450.0 MiB",
        "decoded 1.5 GiB",
        "skipped 1.4 GiB",
        "response_bytes 450.0 MiB",
    ):
        assert part in msg


def test_budget_and_concurrency_fallbacks():
    ext, crawler, _ = make(MEMUSAGE_LIMIT_MB=700, CONCURRENT_REQUESTS=12)
    assert (ext.budget_mb(), ext.concurrency()) == (700, 12)
    crawler.stats.set_value("plt/memory/budget_mb", 950)
    crawler.stats.set_value("plt/memory/concurrency", 0)  # governor paused downloads
    assert (ext.budget_mb(), ext.concurrency()) == (950, 0)
    assert make()[0].budget_mb() is None


def test_samples_go_to_a_bounded_series():
    ext, crawler, feed = make(PLT_MEMREPORT_MAX_SAMPLES=10)
    crawler.stats.set_value("plt/memory/concurrency", 6)
    for i in range(100):
        feed.t += 2
        feed.rss = (900 if i == 51 else 100) * MB
        ext.sample()
    samples = ext.series.samples
    assert len(samples) < 10 and ext.series.stride > 1
    assert max(s.rss_mb for s in samples) == 900
    assert ext.peak_rss == 900 * MB
    assert {s.concurrency for s in samples} == {6}
    assert [s.t for s in samples] == sorted(s.t for s in samples)


def test_report_files_in_jobdir(tmp_path, caplog):
    jobdir = tmp_path / "job"
    ext, crawler, feed = make(JOBDIR=str(jobdir), MEMUSAGE_LIMIT_MB=950, PROFILE="512mb")
    crawler.stats.set_value("plt/bytes/wire", 1000)
    crawler.stats.set_value("downloader/response_count", 30)
    for i in range(30):
        feed.t += 2
        feed.rss = (200 + 10 * i) * MB
        crawler.stats.set_value("plt/memory/concurrency", 16 - i // 3)
        ext.sample()
    feed.rss = 300 * MB
    with caplog.at_level(logging.INFO, logger=memreport.__name__):
        assert ext.finish("finished") == jobdir
    assert [r.getMessage() for r in caplog.records] == [
        f"Memory report of run 1 written to {jobdir} "
        "(memory-report.json/.txt, memory-samples.jsonl)"
    ]
    report = json.loads((jobdir / "memory-report.json").read_text())
    assert {
        "reason",
        "rss_mb",
        "peak_rss_mb",
        "ru_maxrss_mb",
        "budget_mb",
        "engine",
        "engine_max",
        "bytes",
        "live_objects",
        "samples",
    } <= report.keys()
    assert report["reason"] == "finished"
    assert report["rss_mb"] == 300
    assert report["peak_rss_mb"] == 490
    assert report["ru_maxrss_mb"] > 0
    assert report["budget_mb"] == 950
    assert report["bytes"] == {"wire": 1000}
    assert report["samples"]["count"] == 31
    assert report["samples"]["concurrency"][0] == 16
    assert report["samples"]["rss_mb"][-1] == 300
    text = (jobdir / "memory-report.txt").read_text()
    assert "close reason: finished" in text
    assert "peak RSS sampled 490.0 MiB" in text
    (run,) = memsamples.read_runs(jobdir)
    assert run["run"] == 1
    assert (run["job"], run["profile"], run["reason"]) == ("job", "512mb", "finished")
    assert run["t"] == report["samples"]["t"]
    assert run["rss_mb"][-1] == 300
    assert run["concurrency"][0] == 16


def test_each_run_appends_its_samples(tmp_path):
    jobdir = tmp_path / "job"
    for reason in ("shutdown", "finished"):
        ext, crawler, feed = make(JOBDIR=str(jobdir))
        crawler.stats.set_value("downloader/response_count", 3)
        feed.t += 5
        ext.sample()
        ext.finish(reason)
    runs = memsamples.read_runs(jobdir)
    assert [(r["run"], r["reason"]) for r in runs] == [(1, "shutdown"), (2, "finished")]


def test_chart_is_drawn_by_a_child_process(tmp_path, caplog):
    jobdir = tmp_path / "job"
    # An empty cgroup root: no container limit, whatever this machine has.
    ext, crawler, feed = make(JOBDIR=str(jobdir), PLT_GOVERNOR_CGROUP_ROOT=str(tmp_path))
    crawler.stats.set_value("downloader/response_count", 3)
    feed.t += 5
    ext.sample()
    with caplog.at_level(logging.INFO, logger=memreport.__name__):
        asyncio.run(ext.spider_closed(Spider("x"), "finished"))
    assert (jobdir / "memory.svg").stat().st_size > 0
    assert f"Memory chart of the job: {jobdir / 'memory.svg'}" in caplog.messages


def test_the_crawl_side_never_imports_the_charting_library():
    code = (
        "import sys, plt.settings, plt.extensions.memreport, plt.extensions.summary, "
        "plt.extensions.progress, plt.spiders.product\n"
        "print(sorted(m for m in ('matplotlib', 'pygal', 'plt.memchart') if m in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_chart_skipped_when_the_container_has_no_room(tmp_path, caplog):
    jobdir = tmp_path / "job"
    ext, crawler, _ = make(JOBDIR=str(jobdir))
    ext.chart_headroom_mib = lambda: 40.0
    crawler.stats.set_value("downloader/response_count", 3)
    with caplog.at_level(logging.INFO, logger=memreport.__name__):
        asyncio.run(ext.spider_closed(Spider("x"), "finished"))
    assert not (jobdir / "memory.svg").exists()
    assert (jobdir / "memory-samples.jsonl").exists()
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "leaves 40 MiB" in warning
    assert warning.endswith(f"python -m plt.memchart {jobdir}")


def test_chart_headroom_from_the_cgroup_limit(tmp_path):
    (tmp_path / "memory.max").write_text(f"{300 * MB}\n")
    ext, _, feed = make(PLT_GOVERNOR_CGROUP_ROOT=str(tmp_path))
    feed.rss = 180 * MB
    assert ext.chart_headroom_mib() == 120


def test_no_directory_skips_with_one_line(tmp_path, caplog):
    ext, _, _ = make()
    with caplog.at_level(logging.INFO, logger=memreport.__name__):
        assert ext.write_report("finished") is None
    assert len(caplog.records) == 1
    ext, _, _ = make(PLT_MEMREPORT_DIR=str(tmp_path / "reports"))
    assert ext.write_report("finished") == tmp_path / "reports"
    assert (tmp_path / "reports" / "memory-samples.jsonl").exists()


def test_live_objects_counts_tracked_types():
    keep = [
        HtmlResponse("http://127.0.0.1/", body=b"x" * 5000),
        Request("http://127.0.0.1/a"),
    ]
    rows = {r["type"]: r for r in live_objects()}
    assert rows["HtmlResponse"]["count"] >= 1
    assert rows["HtmlResponse"]["body_bytes"] >= 5000
    assert rows["Request"]["oldest_age_s"] >= 0
    del keep


# --- a real crawl against a local server ---------------------------------

SPIDER = textwrap.dedent(
    """
    import sys

    import scrapy
    from scrapy import signals

    class TinyShop(scrapy.Spider):
        name = "tinyshop"

        @classmethod
        def from_crawler(cls, crawler, *args, **kwargs):
            spider = super().from_crawler(crawler, *args, **kwargs)
            crawler.signals.connect(spider.charting_check, signal=signals.engine_stopped)
            return spider

        def charting_check(self):
            # After the chart was drawn: the crawl process never imported it.
            names = ("matplotlib", "pygal", "plt.memchart")
            self.logger.info("charting modules loaded: %s", [m for m in names if m in sys.modules])

        async def start(self):
            yield scrapy.Request(self.base + "/")

        def parse(self, response):
            links = response.css("a::attr(href)").getall()
            self.crawler.stats.set_value("plt/products/total", len(links))
            for href in links:
                yield response.follow(href, self.parse_product)

        def parse_product(self, response):
            sku = response.css("h1::text").get()
            yield response.follow(f"/api/stock/{sku}", self.parse_stock, cb_kwargs={"sku": sku})

        def parse_stock(self, response, sku):
            yield {"sku": sku, "stock": response.json()["stock"]}
    """
)


class Shop:
    """aiohttp shop on 127.0.0.1 with a random port, served from a thread."""

    def __init__(self, products: int = 12):
        self.products = products
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    async def index(self, request):
        links = "".join(f'<a href="/p/{i}">{i}</a>' for i in range(self.products))
        return web.Response(text=f"<html><body>{links}</body></html>", content_type="text/html")

    async def product(self, request):
        await asyncio.sleep(0.25)  # long enough for a few sampling ticks
        filler = "<p>" + "lorem ipsum " * 20000 + "</p>"
        sku = request.match_info["sku"]
        return web.Response(text=f"<html><h1>{sku}</h1>{filler}</html>", content_type="text/html")

    async def stock(self, request):
        return web.json_response({"stock": 3})

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        app = web.Application()
        app.add_routes(
            [
                web.get("/", self.index),
                web.get("/p/{sku}", self.product),
                web.get("/api/stock/{sku}", self.stock),
            ]
        )
        self.runner = web.AppRunner(app)
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]
        self.ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self.runner.cleanup())

    def __enter__(self) -> str:
        self.thread.start()
        assert self.ready.wait(10)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def test_real_crawl_writes_report(tmp_path):
    spider = tmp_path / "tinyshop.py"
    spider.write_text(SPIDER)
    jobdir = tmp_path / "job"
    extensions = {
        "plt.extensions.memreport.MemoryReport": 500,
        "plt.extensions.progress.Progress": 510,
    }
    settings = {
        "JOBDIR": str(jobdir),
        "EXTENSIONS": json.dumps(extensions),
        "PLT_PROGRESS": "log",
        "PLT_PROGRESS_INTERVAL": "0.5",
        "PLT_MEMREPORT_INTERVAL": "0.5",
        "PLT_MEMREPORT_SAMPLE_INTERVAL": "0.1",
        "MEMUSAGE_LIMIT_MB": "4000",
        "PLT_GOVERNOR_CGROUP_ROOT": str(tmp_path / "no-cgroup"),
        "CONCURRENT_REQUESTS": "2",
        "LOG_LEVEL": "INFO",
    }
    env = {k: v for k, v in os.environ.items() if k != "SCRAPY_SETTINGS_MODULE"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    with Shop() as base:
        cmd = [sys.executable, "-m", "scrapy", "runspider", str(spider), "-a", f"base={base}"]
        for key, value in settings.items():
            cmd += ["-s", f"{key}={value}"]
        # cwd outside the project so no scrapy.cfg or project settings are picked up
        proc = subprocess.run(
            cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )
    log = proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert "'item_scraped_count': 12" in log
    assert "Memory: RSS " in log
    assert "Progress: " in log and "/12 products" in log
    assert "Progress at close: 12/12 products (100.0%)" in log
    assert "'plt/progress/rate'" in log
    assert f"Memory report of run 1 written to {jobdir}" in log
    assert f"Memory chart of the job: {jobdir / 'memory.svg'}" in log
    assert "charting modules loaded: []" in log

    report = json.loads((jobdir / "memory-report.json").read_text())
    assert report["reason"] == "finished"
    assert 10 < report["rss_mb"] < 4000
    assert report["peak_rss_mb"] >= report["rss_mb"]
    # kernel and psutil count RSS slightly differently; both must be plausible
    assert report["ru_maxrss_mb"] > 0.5 * report["peak_rss_mb"]
    assert report["budget_mb"] == 4000
    assert report["samples"]["count"] >= 3
    assert all(c == 2 for c in report["samples"]["concurrency"])
    assert report["engine_max"]["downloader_active"] >= 1
    root = ET.parse(jobdir / "memory.svg").getroot()
    assert root.tag == f"{SVG}svg"
    assert "Memory of job job" in " ".join(t.text or "" for t in root.iter(f"{SVG}text"))
    assert (jobdir / "memory-report.txt").exists()


def test_a_run_that_fetched_nothing_writes_no_report(tmp_path):
    ext, _, _ = make(JOBDIR=str(tmp_path))
    assert ext.finish("finished") is None
    assert not (tmp_path / "memory-report.json").exists()
