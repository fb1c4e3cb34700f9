"""End-to-end crawls of the demo retailer, every fault on, against its ground truth."""

from __future__ import annotations

import json
import math
import os
import random
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from plt.job.sqlite import STATE_FILE
from tests.conftest import FAULTY_SHOP, run_crawl, runs, start_crawl


def job_meta(jobdir: Path, key: str) -> int:
    db = sqlite3.connect(jobdir / STATE_FILE)
    try:
        row = db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
    finally:
        db.close()
    return json.loads(row[0]) if row else 0


def assert_exact(shop, jobdir: Path) -> None:
    result = shop.compare(jobdir / "items.jsonl")
    assert result.exact, result.summary()


def test_full_crawl_exports_each_product_once(fresh_shop, tmp_path):
    shop = fresh_shop  # its 503s are met by this crawl, whatever ran before
    proc = run_crawl(tmp_path, shop.url)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_exact(shop, tmp_path)
    (stats,) = runs(tmp_path)
    assert stats["finish_reason"] == "finished"
    assert stats.get("scheduler/unserializable", 0) == 0
    assert stats["scheduler/enqueued/disk"] == stats["scheduler/dequeued/disk"]
    assert stats["plt/product/withdrawn"] > 0
    assert stats["plt/product/no_active_colour"] > 0
    assert stats["plt/stock/invalid_json"] > 0
    assert stats["plt/stock/no_subproducts"] > 0
    assert stats["retry/count"] > 0
    assert stats["plt/products/total"] == 300
    assert f"Items of this job go to {tmp_path / 'items.jsonl'}" in proc.stderr


def test_finished_job_does_nothing_and_reset_starts_over(shop, tmp_path):
    assert run_crawl(tmp_path, shop.url).returncode == 0
    again = run_crawl(tmp_path, shop.url)
    assert again.returncode == 0
    assert "is finished" in again.stderr
    assert runs(tmp_path)[-1].get("scheduler/dequeued", 0) == 0
    assert_exact(shop, tmp_path)
    reset = run_crawl(tmp_path, shop.url, "PLT_JOB_RESET=1")
    assert reset.returncode == 0
    assert runs(tmp_path)[-1]["item_scraped_count"] == len(shop.ground_truth)
    assert_exact(shop, tmp_path)


@pytest.mark.parametrize(
    "stop_setting",
    ["CLOSESPIDER_ITEMCOUNT=40", "MEMUSAGE_LIMIT_MB=1"],
    ids=["closespider", "memusage"],
)
def test_graceful_stop_then_resume(shop, tmp_path, stop_setting):
    stops = 0
    while True:
        extra = [stop_setting, "MEMUSAGE_CHECK_INTERVAL_SECONDS=0.5"] if stops < 3 else []
        proc = run_crawl(tmp_path, shop.url, *extra)
        assert proc.returncode == 0, proc.stderr[-3000:]
        if runs(tmp_path)[-1]["finish_reason"] == "finished":
            break
        stops += 1
    assert stops >= 1
    if stops:
        assert "Resuming job" in proc.stderr
    assert_exact(shop, tmp_path)


def served(shop) -> int:
    """Answers the demo retailer gave, but its transient 503s."""
    stats = shop.process.stats()
    return stats["listing"] + stats["product"] + stats["stock"] + stats["not_found_404"]


def requests_of_one_clean_crawl(shop) -> int:
    pages = math.ceil(FAULTY_SHOP.products / FAULTY_SHOP.per_page)
    return pages + FAULTY_SHOP.products + len(shop.ground_truth)


def test_kill_9_at_random_moments_then_resume(shop, tmp_path):
    rng = random.Random(os.environ.get("PLT_TEST_SEED", "kill-9"))
    items = tmp_path / "items.jsonl"
    served_before = served(shop)
    kills = 0
    exported_at_kills = []
    for _ in range(4):
        proc = start_crawl(tmp_path, shop.url)
        deadline = time.monotonic() + 60
        # Kill somewhere in the crawl: after startup, before the job can end.
        target = rng.uniform(0.3, 1.5)
        time.sleep(target)
        while not items.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        time.sleep(rng.uniform(0, 0.4))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
            exported_at_kills.append(len(items.read_bytes().splitlines()) if items.exists() else 0)
        proc.wait()
    final = run_crawl(tmp_path, shop.url)
    assert final.returncode == 0, final.stderr[-3000:]
    assert kills >= 2
    assert any(0 < n < len(shop.ground_truth) for n in exported_at_kills), exported_at_kills
    assert_exact(shop, tmp_path)
    assert runs(tmp_path)[-1]["plt/pending_items"] == 0
    assert "already in the items file" not in final.stderr
    # Only requests leased (in flight) at a kill are fetched again.
    requeued = job_meta(tmp_path, "requeued_total")
    assert requeued > 0
    refetched = served(shop) - served_before - requests_of_one_clean_crawl(shop)
    assert 0 <= refetched <= requeued
