"""The job layer with another spider: items straight from the listing pages, keyed by ``sku``.

tests/listingspider.py yields one item per listing tile, many per response,
with ids its requests do not carry; no product page, no stock API. Each test
crawls its own small demo retailer (its faults' hit counts belong to one shop)
in child processes, as a user runs ``scrapy crawl``, and compares the job's
items.jsonl with what the retailer lists. Each page queues the next before its
items, so the items of two or three pages may interleave; what is checked holds
however they do: the Nth time a crash point is reached, the page whose item or
request it was is still leased, and the same command must then end exact.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest

from plt.job import crash
from plt.job.itemsfile import ITEMS_FILE
from plt.shop.catalog import Catalog, ShopConfig, cents_to_float
from plt.shop.process import ShopProcess
from tests.conftest import PROJECT, crawl_env, runs
from tests.listingspider import ID_FIELD

# 300 products on 7 listing pages; page 4 answers 503 first (retried within the
# run). The faults of product pages and the stock API are never met: this spider
# does not ask for them.
SHOP = ShopConfig(products=300, seed=11, page_bytes=20_000, transient_error_rate=0.3)


def crawl(jobdir: Path, shop_url: str, crash_at: str | None = None) -> subprocess.CompletedProcess:
    env = crawl_env()
    if crash_at:
        env[crash.ENV] = crash_at
    argv = [sys.executable, "-m", "scrapy", "crawl", "listing"]
    settings = [
        "SPIDER_MODULES=tests.listingspider",  # not a spider of the project
        f"JOBDIR={jobdir}",
        f"SHOP_URL={shop_url}",
        "LOG_LEVEL=INFO",
        "PLT_MEMCHART=False",  # the chart's child process is no part of the job
    ]
    for setting in settings:
        argv += ["-s", setting]
    return subprocess.run(
        argv, cwd=PROJECT, env=env, capture_output=True, text=True, timeout=300
    )  # fmt: skip


def ground_truth(config: ShopConfig, shop_url: str) -> list[dict[str, Any]]:
    """Every listed product as its listing tile shows it, withdrawn ones too."""
    catalog = Catalog(config)
    return [
        {
            ID_FIELD: p.product_id,
            "name": p.name,
            "price": None if p.sold_out else cents_to_float(p.price_cents),
            "url": urljoin(shop_url, catalog.listing_path(p)),
        }
        for p in catalog.products()
    ]


CRASH_CASES = [
    "after_flush:48",  # an item's line flushed, its record not written (about page 1's last)
    "after_flush:100",  # the same, pages further (about page 3's 4th)
    "after_record:49",  # an item recorded, the rest of its page not
    "after_store:4",  # listing page 4 stored, before the items of the page that queued it
    "after_lease:3",  # a listing page leased, never fetched
]


def items(jobdir: Path) -> list[dict[str, Any]]:
    path = jobdir / ITEMS_FILE
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def assert_exact(jobdir: Path, truth: list[dict[str, Any]]) -> None:
    got = items(jobdir)
    ids = [item[ID_FIELD] for item in got]
    assert len(ids) == len(set(ids)), "an item exported twice"
    assert sorted(ids) == sorted(t[ID_FIELD] for t in truth), "items missing or extra"
    by_id = {t[ID_FIELD]: t for t in truth}
    assert [item for item in got if item != by_id[item[ID_FIELD]]] == []


def job_words(stderr: str) -> list[str]:
    """What the job layer said (the scheduler, the ledger, the summary), URLs left out."""
    loggers = ("[plt.job.", "[plt.extensions.summary]")
    lines = stderr.splitlines()
    start = next(i for i, line in enumerate(lines) if "Job summary:" in line)
    said = [line for line in lines if any(n in line for n in loggers)] + lines[start + 1 :]
    return [re.sub(r"\S+://\S+", "<url>", line) for line in said]


def products_named(stderr: str) -> list[str]:
    return [line for line in job_words(stderr) if "product" in line.lower()]


def test_a_full_crawl_exports_every_listed_item_once(tmp_path):
    job = tmp_path / "job"
    with ShopProcess(SHOP) as shop:
        proc = crawl(job, shop.url)
        truth = ground_truth(SHOP, shop.url)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(truth) == 300
    assert_exact(job, truth)
    (stats,) = runs(job)
    assert stats["finish_reason"] == "finished"
    assert stats["retry/count"] > 0  # pages that answered 503 first were fetched again
    assert stats["plt/job/items_shown"] == 300
    assert stats.get("plt/job/incomplete", 0) == 0
    assert f"Job {job} finished: 300 items exported to {job / ITEMS_FILE}" in proc.stderr
    assert "  state     finished" in job_words(proc.stderr)
    assert products_named(proc.stderr) == []


@pytest.mark.parametrize("crash_at", CRASH_CASES)
def test_a_crash_then_the_same_command_ends_with_exactly_the_ground_truth(tmp_path, crash_at):
    job = tmp_path / "job"
    with ShopProcess(SHOP) as shop:
        killed = crawl(job, shop.url, crash_at)
        assert killed.returncode == crash.EXIT_STATUS, killed.stderr[-3000:]
        assert f"crashing at {crash_at.replace(':', ' #')}" in killed.stderr
        assert len(items(job)) < 300
        rerun = crawl(job, shop.url)
        truth = ground_truth(SHOP, shop.url)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "Resuming job" in rerun.stderr
    assert_exact(job, truth)
    (stats,) = runs(job)  # the killed run wrote none
    assert stats["finish_reason"] == "finished"
    assert stats["plt/job/requeued"] >= 1  # the page in flight when it died
    if crash_at.startswith(("after_flush", "after_record")):
        # The item's page was fetched again; what it had exported was not written twice.
        assert stats["plt/items/duplicate_dropped"] >= 1
    assert products_named(rerun.stderr) == []


def test_every_crash_point_is_covered():
    assert {case.split(":")[0] for case in CRASH_CASES} == crash.POINTS


def test_a_finished_job_run_again_does_nothing(tmp_path):
    job = tmp_path / "job"
    with ShopProcess(SHOP) as shop:
        first = crawl(job, shop.url)
        assert first.returncode == 0, first.stderr[-3000:]
        before = (job / ITEMS_FILE).read_bytes()
        again = crawl(job, shop.url)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"Job {job} is finished: 300 items exported. Nothing to do" in again.stderr
    assert (job / ITEMS_FILE).read_bytes() == before
    last = runs(job)[-1]
    assert last.get("downloader/request_count", 0) == 0
    assert last.get("scheduler/dequeued", 0) == 0
    assert last.get("item_scraped_count", 0) == 0
