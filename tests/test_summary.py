import asyncio
import logging
import os
import sys
import time
import xml.etree.ElementTree as ET

import pytest
from scrapy import Spider
from scrapy.exceptions import NotConfigured
from scrapy.utils.test import get_crawler

from plt.extensions import summary
from plt.extensions.summary import JobSummary, count_lines, same_command, top_causes
from tests.conftest import run_crawl, runs

SVG = "{http://www.w3.org/2000/svg}"


def make(tmp_path, **settings):
    jobdir = tmp_path / "product-2026-11-27"
    jobdir.mkdir(exist_ok=True)
    settings = {"JOBDIR": str(jobdir), "PROFILE": "512mb", **settings}
    crawler = get_crawler(Spider, settings)
    ext = JobSummary.from_crawler(crawler)
    ext.command = "scrapy crawl product"
    return ext, jobdir


def test_needs_a_job_directory(tmp_path):
    with pytest.raises(NotConfigured):
        JobSummary.from_crawler(get_crawler(Spider))
    with pytest.raises(NotConfigured):
        make(tmp_path, PLT_SUMMARY_ENABLED=False)


def test_count_lines(tmp_path):
    path = tmp_path / "items.jsonl"
    assert count_lines(path) == 0
    path.write_bytes(b'{"a": 1}\n' * 3000)
    assert count_lines(path) == 3000
    assert count_lines(tmp_path) is None  # a directory: unreadable as a file


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["python3", "-m", "scrapy", "crawl", "product"], "python -m scrapy crawl product"),
        ([sys.executable, ".venv/bin/scrapy", "crawl", "product", "-s", 'X={"a": 1}'],
         """.venv/bin/scrapy crawl product -s 'X={"a": 1}'"""),
        ([sys.executable, "/elsewhere/bin/scrapy", "crawl", "product"],
         "/elsewhere/bin/scrapy crawl product"),
        ([sys.executable, "my_pipeline.py"], None),
        ([sys.executable], None),
    ],
)  # fmt: skip
def test_same_command(argv, command):
    assert same_command(argv) == command


def test_same_command_shortens_a_scrapy_found_on_path(tmp_path, monkeypatch):
    scrapy = tmp_path / "scrapy"
    scrapy.write_text("#!/bin/sh\n")
    scrapy.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert same_command([sys.executable, str(scrapy), "crawl", "product"]) == "scrapy crawl product"


def test_top_causes():
    stats = {
        "retry/reason_count/503 Service Unavailable": 36,
        "retry/reason_count/twisted.internet.error.ConnectionRefusedError": 4,
        "retry/reason_count/504 Gateway Time-out": 2,
    }
    assert top_causes(stats) == "503 Service Unavailable x36, ConnectionRefusedError x4"
    errors = {"downloader/exception_type_count/twisted.internet.error.DNSLookupError": 8}
    assert top_causes(errors) == "DNSLookupError x8"
    assert top_causes({}) == ""


def test_a_finished_job(tmp_path):
    ext, jobdir = make(tmp_path)
    (jobdir / "items.jsonl").write_text("{}\n" * 2991)
    stats = {"finish_reason": "finished", "item_scraped_count": 1891}
    assert ext.lines(stats)[2] == "  exported  2,991 in the job, 1,891 of them new this run"
    lines = ext.lines({**stats, "plt/products/total": 3000})
    assert lines == [
        "  job       product-2026-11-27 (profile 512mb)",
        "  state     finished",
        "  exported  2,991 in the job (3,000 listed), 1,891 of them new this run",
        f"  items     {jobdir / 'items.jsonl'}",
    ]


def test_the_chart_is_named_only_when_drawn_in_this_run(tmp_path):
    ext, jobdir = make(tmp_path)
    chart = jobdir / "memory.svg"
    chart.write_text("<svg/>")
    old = ext.started - 3600
    os.utime(chart, (old, old))
    assert not any("memory" in line for line in ext.lines({"finish_reason": "finished"}))
    os.utime(chart, (time.time(), time.time()))
    assert f"  memory    {chart}" in ext.lines({"finish_reason": "finished"})


@pytest.mark.parametrize(
    ("stats", "state", "next_step"),
    [
        ({"finish_reason": "shutdown"}, "stopped: interrupted (Ctrl-C or SIGTERM)",
         "resume with the same command: scrapy crawl product"),
        ({"finish_reason": "memusage_exceeded", "memusage/max": 1000 * 1024 * 1024},
         "stopped: memory limit reached (MEMUSAGE_LIMIT_MB 950 MiB, peak 1,000 MiB)",
         "resume with the same command: scrapy crawl product"),
        ({"finish_reason": "closespider_itemcount"}, "stopped: CLOSESPIDER_ITEMCOUNT 40 reached",
         "resume with the same command: scrapy crawl product"),
        ({"finish_reason": "finished", "plt/job/incomplete": 12,
          "retry/reason_count/503 Service Unavailable": 36},
         "incomplete: 12 requests failed for now (retried for 503 Service Unavailable x36)",
         "retry them with the same command: scrapy crawl product"),
        ({"finish_reason": "finished", "plt/job/incomplete": 3},
         "incomplete: 3 requests failed for now (network or server errors)",
         "retry them with the same command: scrapy crawl product"),
        ({"finish_reason": "finished", "plt/job/incomplete": 1,
          "retry/reason_count/twisted.internet.error.DNSLookupError": 3},
         "incomplete: 1 request failed for now (retried for DNSLookupError x3)",
         "check the host in SHOP_URL, then resume with the same command: scrapy crawl product"),
        ({"finish_reason": "job_state_error", "plt/job/state_error": "The job state x is damaged."},
         "stopped: the job state cannot be used: The job state x is damaged.", None),
        ({"finish_reason": "no_shop_url"}, "stopped (no_shop_url): see the error above", None),
        ({"finish_reason": "finished", "plt/job/incomplete": 2, "plt/job/failed/http_403": 2,
          "plt/job/missing": 50, "plt/job/missing/failed_for_now": 2,
          "plt/job/missing/on_unread_pages": 48},
         "incomplete: 2 requests failed for now (retried for http_403 x2); 50 items missing "
         "(2 failed for now, 48 on listing pages not read yet)",
         "retry them with the same command: scrapy crawl product"),
        ({"finish_reason": "finished", "plt/job/given_up_end": 3},
         "ended with 3 requests given up, listed in failed.jsonl",
         "try them again: add -s PLT_JOB_RETRY_FAILED=1 to the same command"),
        ({"finish_reason": "given_up", "plt/job/given_up_end": 3},
         "ended with 3 requests given up, listed in failed.jsonl",
         "try them again: add -s PLT_JOB_RETRY_FAILED=1 to the same command"),
    ],
)  # fmt: skip
def test_state_and_next_step(tmp_path, stats, state, next_step):
    ext, _ = make(tmp_path, MEMUSAGE_LIMIT_MB=950, CLOSESPIDER_ITEMCOUNT=40)
    assert ext.state(stats) == (state, next_step)
    lines = ext.lines(stats)
    assert f"  state     {state}" in lines
    assert (
        (f"  next      {next_step}" in lines) if next_step else not lines[-1].startswith("  next")
    )


def test_no_command_to_repeat_when_embedded(tmp_path):
    ext, _ = make(tmp_path)
    ext.command = None
    assert (
        ext.state({"finish_reason": "shutdown"})[1] == "resume with the same command: run it again"
    )


def test_logged_once_at_engine_stop(tmp_path, caplog):
    ext, _ = make(tmp_path)
    with caplog.at_level(logging.INFO, logger=summary.__name__):
        asyncio.run(ext.engine_stopped())  # the spider never opened: nothing to sum up
        assert not caplog.records
        ext.crawler.stats.set_value("finish_reason", "finished")
        asyncio.run(ext.engine_stopped())
    (record,) = caplog.records
    assert record.levelno == logging.INFO
    assert record.getMessage().startswith("Job summary:\n  job       product-2026-11-27")


class ClosingEngine:
    """An engine whose spider is still closing for the first few looks."""

    def __init__(self, looks: int) -> None:
        self.looks = looks

    @property
    def spider(self):
        self.looks -= 1
        return "closing" if self.looks >= 0 else None


def test_waits_for_the_spider_to_close_when_stopped_while_closing(tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(summary, "CLOSE_WAIT_TICK", 0)
    ext, _ = make(tmp_path)
    ext.crawler.engine = engine = ClosingEngine(looks=3)
    ext.crawler.stats.set_value("finish_reason", "shutdown")
    with caplog.at_level(logging.INFO, logger=summary.__name__):
        asyncio.run(ext.engine_stopped())
    assert engine.looks == -1  # looked until the close had ended
    assert len(caplog.records) == 1


# --- the demo retailer, stopped then resumed ---------------------------------


def summary_of(stderr: str) -> list[str]:
    """The summary's lines, checking they are the last thing the run printed."""
    lines = stderr.rstrip("\n").splitlines()
    start = max(i for i, line in enumerate(lines) if line.endswith("INFO: Job summary:"))
    tail = lines[start + 1 :]
    assert tail and all(line.startswith("  ") for line in tail), lines[start - 3 :]
    return tail


def test_a_stopped_then_resumed_job_ends_with_its_summary(shop, tmp_path):
    items = tmp_path / "items.jsonl"
    first = run_crawl(tmp_path, shop.url, "CLOSESPIDER_ITEMCOUNT=40", "PLT_PROGRESS=log")
    assert first.returncode == 0, first.stderr[-3000:]
    tail = summary_of(first.stderr)
    new = runs(tmp_path)[-1]["item_scraped_count"]
    assert tail[1] == "  state     stopped: CLOSESPIDER_ITEMCOUNT 40 reached"
    assert tail[2] == (
        f"  exported  {count_lines(items):,} in the job (300 listed), {new:,} of them new this run"
    )
    assert tail[-1].startswith("  next      resume with the same command: python -m scrapy crawl")
    assert "CLOSESPIDER_ITEMCOUNT=40" in tail[-1]

    second = run_crawl(tmp_path, shop.url, "PLT_PROGRESS=log")
    assert second.returncode == 0, second.stderr[-3000:]
    tail = summary_of(second.stderr)
    stats = runs(tmp_path)[-1]
    assert tail[1] == "  state     finished"
    total = len(shop.ground_truth)
    assert count_lines(items) == total
    new = stats["item_scraped_count"]
    assert 0 < new < total
    assert tail[2] == f"  exported  {total:,} in the job (300 listed), {new:,} of them new this run"
    assert tail[-1] == f"  memory    {tmp_path / 'memory.svg'}"
    # Scrapy's own line counts this run only; the summary says which is which.
    assert f"Stored jsonl feed ({new} items)" in second.stderr
    # The resumed run's progress has the listing's total and counts the whole job.
    assert "Progress at close: 300/300 products (100.0%)" in second.stderr
    root = ET.parse(tmp_path / "memory.svg").getroot()
    texts = [t.text or "" for t in root.iter(f"{SVG}text")]
    (title,) = [t for t in texts if t.startswith(f"Memory of job {tmp_path.name} (profile ")]
    assert title.endswith("), 2 runs")
    assert "run 1 (closespider_itemcount)" in texts
    assert "run 2 (finished)" in texts

    # A finished job run again does nothing, and still ends with its summary.
    third = run_crawl(tmp_path, shop.url)
    assert third.returncode == 0, third.stderr[-3000:]
    tail = summary_of(third.stderr)
    assert tail[1] == "  state     finished"
    assert tail[2].startswith(f"  exported  {total:,} in the job") and tail[2].endswith(
        "0 of them new this run"
    )
