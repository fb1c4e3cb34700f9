"""``scrapy crawl``: the daily job directory, and one clear message for a bad one."""

from __future__ import annotations

import dataclasses
import fcntl
import http.server
import json
import os
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest

from plt.commands.crawl import (
    CONFIG_ERROR_EXIT,
    JOB_INCOMPLETE_EXIT,
    JOB_STATE_ERROR_EXIT,
    NOT_A_LISTING_EXIT,
    default_jobdir,
)
from plt.job.sqlite import ITEMS_FILE, LOCK_FILE, STATE_FILE
from plt.shop.catalog import Catalog, ShopConfig
from plt.shop.truth import expected_items
from plt.verify import compare, read_items
from tests.conftest import PROJECT, crawl_argv, crawl_env, run_crawl, runs


def test_default_jobdir_is_daily_beside_scrapy_cfg(monkeypatch):
    monkeypatch.chdir(PROJECT)
    when = time.mktime((2026, 11, 23, 12, 0, 0, 0, 0, 0))
    assert default_jobdir("product", when) == PROJECT / "jobs" / "product-2026-11-23"


def make_job(jobdir: Path, shop) -> None:
    proc = run_crawl(jobdir, shop.url, "CLOSESPIDER_ITEMCOUNT=5")
    assert proc.returncode == 0, proc.stderr[-2000:]


def garbage(jobdir: Path) -> Path:
    path = jobdir / STATE_FILE
    path.write_bytes(os.urandom(8192))
    return path


def truncated(jobdir: Path) -> Path:
    path = jobdir / STATE_FILE
    path.write_bytes(path.read_bytes()[:4096])
    return path


def old_version(jobdir: Path) -> Path:
    path = jobdir / STATE_FILE
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value='0' WHERE key='schema'")
    db.commit()
    db.close()
    return path


def set_meta(key: str, value: str):
    def damage(jobdir: Path) -> Path:
        path = jobdir / STATE_FILE
        db = sqlite3.connect(path)
        db.execute("UPDATE meta SET value=? WHERE key=?", (value, key))
        db.commit()
        db.close()
        return path

    return damage


def bad_items(jobdir: Path) -> Path:
    path = jobdir / ITEMS_FILE
    with path.open("ab") as f:
        f.write(b"<html>not an item</html>\n")
    return path


def cut_items(jobdir: Path) -> Path:
    path = jobdir / ITEMS_FILE
    path.write_bytes(b"")
    return path


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        (garbage, "damaged or not a PLT job state"),
        (truncated, "damaged or not a PLT job state"),
        (old_version, "schema version 0"),
        (set_meta("items_offset", '"abc"'), "items_offset='\"abc\"' that is not a number"),
        (set_meta("started_at", "{garbage"), "started_at='{garbage' that is not valid"),
        (bad_items, "without an integer 'product_id'"),
        (cut_items, "truncated or replaced"),
    ],
)
def test_damaged_job_directory_stops_with_one_message(shop, tmp_path, damage, words):
    make_job(tmp_path, shop)
    for suffix in ("-wal", "-shm"):
        (tmp_path / (STATE_FILE + suffix)).unlink(missing_ok=True)
    path = damage(tmp_path)
    proc = run_crawl(tmp_path, shop.url)
    assert proc.returncode == JOB_STATE_ERROR_EXIT
    errors = [line for line in proc.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1, errors
    assert words in errors[0] and str(path) in errors[0]
    assert "PLT_JOB_RESET=1" in errors[0]
    assert "Traceback" not in proc.stderr
    assert runs(tmp_path)[-1].get("scheduler/dequeued", 0) == 0
    # The way out works, and nothing of the damage is left.
    assert run_crawl(tmp_path, shop.url, "PLT_JOB_RESET=1").returncode == 0
    assert shop.compare(tmp_path / ITEMS_FILE).exact


def test_job_in_use_by_a_live_process(shop, tmp_path):
    make_job(tmp_path, shop)
    with (tmp_path / LOCK_FILE).open("r+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        lock.write("4242")
        lock.flush()
        proc = run_crawl(tmp_path, shop.url)
    assert proc.returncode == JOB_STATE_ERROR_EXIT
    assert "in use by another live process (pid 4242" in proc.stderr
    assert "Traceback" not in proc.stderr


DEMO = "PLT_EMBEDDED_SHOP=1"
EMBEDDED = {"products": 150, "page_bytes": 20000, "seed": 3, "per_page": 24}


def embedded_truth(jobdir: Path) -> list[dict]:
    port = int((jobdir / "embedded-shop-port").read_text())
    catalog = Catalog(ShopConfig(**EMBEDDED))
    return list(expected_items(catalog, f"http://127.0.0.1:{port}"))


def test_embedded_demo_retailer_when_asked_for(tmp_path):
    # 24 per page, not 48: the page count comes from the listing itself.
    proc = run_crawl(tmp_path, None, DEMO, f"PLT_EMBEDDED_SHOP_OPTIONS={json.dumps(EMBEDDED)}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "crawling the demo retailer at http://127.0.0.1:" in proc.stderr
    assert runs(tmp_path)[-1]["plt/products/total"] == 150
    assert json.loads((tmp_path / "embedded-shop-hits.json").read_text())["config"] == {
        **dataclasses.asdict(ShopConfig()),
        **EMBEDDED,
    }
    result = compare(read_items(tmp_path / ITEMS_FILE), embedded_truth(tmp_path))
    assert result.exact, result.summary()


def test_kill_9_with_the_embedded_retailer_then_resume(tmp_path):
    setting = f"PLT_EMBEDDED_SHOP_OPTIONS={json.dumps({**EMBEDDED, 'products': 2000})}"
    proc = subprocess.Popen(
        crawl_argv(tmp_path, None, DEMO, setting),
        cwd=PROJECT,
        env=crawl_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    items = tmp_path / ITEMS_FILE
    deadline = time.monotonic() + 60
    while (not items.exists() or items.stat().st_size == 0) and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # The demo retailer dies with its crawler and the resumed job gets its port back.
    resumed = run_crawl(tmp_path, None, DEMO, setting)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "Resuming job" in resumed.stderr
    truth = list(
        expected_items(
            Catalog(ShopConfig(**{**EMBEDDED, "products": 2000})),
            f"http://127.0.0.1:{int((tmp_path / 'embedded-shop-port').read_text())}",
        )
    )
    result = compare(read_items(items), truth)
    assert result.exact, result.summary()


def test_extra_output_with_o_keeps_the_job_feed(shop, tmp_path):
    extra = tmp_path / "extra.jsonl"
    feeds = json.dumps({str(extra): {"format": "jsonl"}})
    proc = run_crawl(tmp_path / "job", shop.url, f"FEEDS={feeds}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert shop.compare(tmp_path / "job" / ITEMS_FILE).exact
    assert shop.compare(extra).exact


def test_unreachable_retailer_exits_3_and_keeps_the_work(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"  # nothing listens there
    proc = run_crawl(tmp_path, url, "RETRY_TIMES=0")
    assert proc.returncode == JOB_INCOMPLETE_EXIT, proc.stderr[-2000:]
    assert "Run the same command again to retry them" in proc.stderr
    assert f"Is SHOP_URL ({url}) right?" in proc.stderr
    assert not (tmp_path / "memory-report.json").exists()


def test_embedded_shop_is_stopped_when_a_finished_job_runs_again(tmp_path):
    options = '{"products": 30, "page_bytes": 20000}'
    assert run_crawl(tmp_path, None, DEMO, f"PLT_EMBEDDED_SHOP_OPTIONS={options}").returncode == 0
    again = run_crawl(tmp_path, None, DEMO, f"PLT_EMBEDDED_SHOP_OPTIONS={options}")
    assert again.returncode == 0 and "is finished" in again.stderr
    port = int((tmp_path / "embedded-shop-port").read_text())
    with socket.socket() as s, pytest.raises(ConnectionRefusedError):
        s.connect(("127.0.0.1", port))


def test_o_naming_the_job_feed_itself_is_ignored(shop, tmp_path):
    feeds = json.dumps({str(tmp_path / ITEMS_FILE): {"format": "jsonl", "overwrite": True}})
    proc = run_crawl(tmp_path, shop.url, f"FEEDS={feeds}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "is the job's own feed, always appended to" in proc.stderr
    assert shop.compare(tmp_path / ITEMS_FILE).exact


# -- configuration errors: one line, status 1, before anything is fetched or created ----

NO_SHOP_URL = (
    "error: SHOP_URL is not set: name the retailer with -s SHOP_URL=https://retailer.example, "
    "or crawl the bundled demo retailer with -s PLT_EMBEDDED_SHOP=1"
)


@pytest.mark.parametrize(
    ("shop_url", "settings", "line"),
    [
        (None, [], NO_SHOP_URL),
        (
            "shop.example",
            [],
            "error: SHOP_URL 'shop.example' is not an http(s) URL with a host, "
            "e.g. https://retailer.example (did you mean https://shop.example?)",
        ),
        (
            "http://127.0.0.1:9",
            ["STOCK_API_URL=/api"],
            "error: STOCK_API_URL '/api' is not an http(s) URL with a host, "
            "e.g. https://retailer.example",
        ),
        (
            None,
            [DEMO, 'PLT_EMBEDDED_SHOP_OPTIONS={"product": 5}'],
            "error: PLT_EMBEDDED_SHOP_OPTIONS: unknown option(s) product; known: products, ",
        ),
        (
            None,
            [DEMO, 'PLT_EMBEDDED_SHOP_OPTIONS={"products": 5'],
            "error: PLT_EMBEDDED_SHOP_OPTIONS is not a JSON object (Expecting ',' delimiter)",
        ),
        (
            "http://127.0.0.1:9",
            ["CONCURRENT_REQUESTS=0"],
            "error: CONCURRENT_REQUESTS must be positive, got 0",
        ),
        (
            "http://127.0.0.1:9",
            ["CONCURRENT_REQUESTS_PER_DOMAIN=-4"],
            "error: CONCURRENT_REQUESTS_PER_DOMAIN must be positive, got -4",
        ),
        (
            "http://127.0.0.1:9",
            ["PLT_DISTRIBUTED=1"],
            "error: PLT_DISTRIBUTED needs REDIS_URL (redis://host:port/db)",
        ),
    ],
)
def test_configuration_error_is_one_line_and_exit_1(tmp_path, shop_url, settings, line):
    jobdir = tmp_path / "job"
    proc = run_crawl(jobdir, shop_url, *settings, timeout=60)
    assert proc.returncode == CONFIG_ERROR_EXIT
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr[-2000:]
    assert lines[0].startswith(line)
    assert not jobdir.exists()  # no job made of it


# -- a first listing page that is no listing ---------------------------------------


def serve(status: int):
    """A site that answers every URL with ``status`` and a page of no product tiles:
    an anti-bot interstitial, a wrong URL."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(status)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(b"<html><body><p>Checking your browser...</p></body></html>")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(params=[200, 404])
def not_a_retailer(request):
    server = serve(request.param)
    yield request.param, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_first_page_that_is_no_listing_is_an_error_and_the_job_is_not_finished(
    shop, tmp_path, not_a_retailer
):
    status, url = not_a_retailer
    proc = run_crawl(tmp_path, url)
    assert proc.returncode == NOT_A_LISTING_EXIT, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if "] ERROR:" in line]
    assert len(errors) == 1, errors
    what = "200, no product tiles, no total count" if status == 200 else "HTTP 404"
    assert f"is not a listing of the retailer contract ({what})" in errors[0]
    assert f"Check SHOP_URL ({url})" in errors[0]
    assert "Traceback" not in proc.stderr
    assert runs(tmp_path)[-1]["finish_reason"] == "not_a_listing"
    # Not finished: the same command tries again...
    again = run_crawl(tmp_path, url)
    assert again.returncode == NOT_A_LISTING_EXIT
    assert "is not a listing of the retailer contract" in again.stderr
    # ...and the same job with SHOP_URL put right crawls the retailer, exactly.
    fixed = run_crawl(tmp_path, shop.url)
    assert fixed.returncode == 0, fixed.stderr[-2000:]
    assert "Resuming job" in fixed.stderr
    assert shop.compare(tmp_path / ITEMS_FILE).exact
