"""The ledger end to end: each failure of a real retailer, against the demo one.

Every case crawls its own small demo retailer (a fault's hit counts belong to
one shop) until the job ends, and checks the exit statuses and the items
against the ground truth, with each job store: SQLite in JOBDIR, and Redis
(one distributed worker, whose JOBDIR gets the merged items).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from plt.commands.crawl import JOB_GIVEN_UP_EXIT, JOB_INCOMPLETE_EXIT
from plt.job.crash import ENV, EXIT_STATUS
from plt.job.itemsfile import ITEMS_FILE
from plt.job.jobdir import FAILED_FILE
from plt.shop.catalog import ShopConfig
from plt.shop.process import ShopProcess
from plt.verify import compare, read_items
from tests.conftest import PROJECT, crawl_argv, crawl_env, runs

pytest_plugins = ("tests.redis_server",)

SMALL = {"products": 100, "seed": 3, "page_bytes": 20_000, "transient_error_rate": 0.0}
# Leases of a worker killed by a crash point expire quickly, so that its
# restart (a new process under the same name) gets them back.
REDIS_LEASE_SECONDS = 2
_backend_settings: list[str] = []


@pytest.fixture(params=["sqlite", "redis"], autouse=True)
def backend(request, tmp_path):
    """Every test runs with each job store."""
    _backend_settings.clear()
    if request.param == "redis":
        server = request.getfixturevalue("redis_server")
        _backend_settings.extend([
            "PLT_DISTRIBUTED=True", f"REDIS_URL={server.url}", f"PLT_REDIS_JOB={tmp_path.name}",
            "PLT_WORKER_NAME=w", f"PLT_LEASE_SECONDS={REDIS_LEASE_SECONDS}",
        ])  # fmt: skip
    yield request.param
    _backend_settings.clear()


def crawl(jobdir: Path, url: str, *settings: str, crash: str | None = None):
    env = crawl_env()
    if crash:
        env[ENV] = crash
    argv = crawl_argv(jobdir, url, *_backend_settings, *settings)
    return subprocess.run(argv, cwd=PROJECT, env=env, capture_output=True, text=True, timeout=300)


def exact(shop: ShopProcess, jobdir: Path, tmp_path: Path) -> bool:
    truth = read_items(shop.write_ground_truth(tmp_path / "truth.jsonl"))
    return compare(read_items(jobdir / ITEMS_FILE), truth).exact


def test_a_listing_wall_that_lifts_exits_3_naming_what_is_missing_then_finishes(tmp_path):
    # The wall answers 403 twice: both in the first run (a request and its one
    # retry), and the second run gets through.
    with ShopProcess(ShopConfig(**SMALL, wall_listing_page=2, wall_hits=2)) as shop:
        first = crawl(tmp_path / "job", shop.url)
        assert first.returncode == JOB_INCOMPLETE_EXIT, first.stderr[-3000:]
        assert "products?page=2 failed for now (HTTP 403)" in first.stderr
        assert "about 48 items on them, not shown yet" in first.stderr
        assert "48 items missing (48 on listing pages not read yet)" in first.stderr
        second = crawl(tmp_path / "job", shop.url)
        assert second.returncode == 0, second.stderr[-3000:]
        assert exact(shop, tmp_path / "job", tmp_path)


def test_a_permanent_403_is_given_up_after_max_attempts_and_listed(tmp_path):
    from plt.shop.options import product_id_at

    forbidden = product_id_at(SMALL["seed"], 7)
    job = tmp_path / "job"
    with ShopProcess(ShopConfig(**SMALL, forbidden_ids=str(forbidden))) as shop:
        statuses = [crawl(job, shop.url).returncode for _ in range(3)]
        assert statuses == [JOB_INCOMPLETE_EXIT, JOB_INCOMPLETE_EXIT, JOB_GIVEN_UP_EXIT]
        (failed,) = [json.loads(line) for line in (job / FAILED_FILE).read_text().splitlines()]
        assert failed["url"].endswith(f"-{forbidden}") and failed["attempts"] == 3
        assert failed["error"] == "HTTP 403"
        assert exact(shop, job, tmp_path)  # every other product, exactly
        again = crawl(job, shop.url)
        assert again.returncode == JOB_GIVEN_UP_EXIT
        assert "ended with 1 requests given up" in again.stderr and "nothing to do" in again.stderr
        assert runs(job)[-1].get("downloader/request_count", 0) == 0
        retried = crawl(job, shop.url, "PLT_JOB_RETRY_FAILED=1")
        assert retried.returncode == JOB_INCOMPLETE_EXIT
        assert "(attempt 1 of 3)" in retried.stderr


@pytest.mark.parametrize(
    "fault",
    [
        {"noncanonical_link_rate": 0.1},
        {"redirect_loop_rate": 0.05},
        {"listing_reset_rate": 0.5},
        {"wrong_id_rate": 0.05},
        {"bad_price_rate": 0.05},
        {"stock_down_requests": 60, "transient_error_rate": 0.0},
        {"throttle_rate": 0.05},
    ],
    ids=lambda fault: next(iter(fault)),
)
def test_each_failure_that_passes_ends_with_the_ground_truth(tmp_path, fault):
    options = {**SMALL, **fault}
    with ShopProcess(ShopConfig(**options)) as shop:
        statuses = []
        for _ in range(3):
            proc = crawl(tmp_path / "job", shop.url, "RETRY_TIMES=1")
            statuses.append(proc.returncode)
            if proc.returncode != JOB_INCOMPLETE_EXIT:
                break
        assert statuses[-1] == 0, proc.stderr[-3000:]
        assert exact(shop, tmp_path / "job", tmp_path)


@pytest.mark.parametrize(
    "point", ["after_flush:7", "after_record:7", "after_store:60", "after_lease:60"]
)
def test_a_crash_point_then_a_resume_is_exact(tmp_path, point):
    with ShopProcess(ShopConfig(**SMALL, withdrawn_rate=0.03)) as shop:
        killed = crawl(tmp_path / "job", shop.url, crash=point)
        assert killed.returncode == EXIT_STATUS, killed.stderr[-3000:]
        resumed = crawl(tmp_path / "job", shop.url)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        assert exact(shop, tmp_path / "job", tmp_path)
