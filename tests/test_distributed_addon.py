"""The distributed add-on: job store, keeper and the worker's own items file."""

from __future__ import annotations

import json
import os
import socket

import pytest
from scrapy.settings import Settings
from scrapy.utils.test import get_crawler

from plt import settings as project_settings
from plt.distributed.addon import DistributedAddon
from plt.distributed.checks import RedisStartCheck
from plt.distributed.keeper import LeaseKeeper
from plt.distributed.names import job_name, worker_name
from plt.distributed.state import STORE_PATH, RedisJobState
from plt.errors import ConfigError
from plt.job.store import job_store
from tests.conftest import run_crawl

pytest_plugins = ("tests.redis_server",)

ADDONS = {"plt.job.feed.JobFeedAddon": 20, "plt.distributed.addon.DistributedAddon": 30}
JOB_FEED = {"format": "jsonl", "overwrite": False, "encoding": "utf-8"}


def crawler_settings(tmp_path, **values):
    settings = {
        "ADDONS": ADDONS,
        "JOBDIR": str(tmp_path / "job-1"),
        "SCHEDULER": "plt.job.scheduler.JobScheduler",
        "SHOP_URL": "http://127.0.0.1:1",
        **values,
    }
    return get_crawler(settings_dict=settings).settings


def test_off_by_default(tmp_path):
    settings = crawler_settings(tmp_path)
    assert settings["SCHEDULER"] == "plt.job.scheduler.JobScheduler"
    assert list(settings.getdict("FEEDS")) == [(tmp_path / "job-1" / "items.jsonl").as_uri()]


def test_worker_gets_the_redis_scheduler_the_keeper_and_its_own_feed(tmp_path):
    settings = crawler_settings(
        tmp_path, PLT_DISTRIBUTED=True, REDIS_URL="redis://127.0.0.1:1/0", PLT_WORKER_NAME="w 1"
    )
    assert settings["PLT_JOB_STORE"] == STORE_PATH
    assert LeaseKeeper in settings.getdict("EXTENSIONS")
    assert RedisStartCheck in settings.getdict("EXTENSIONS")
    feeds = settings.getdict("FEEDS")
    assert list(feeds) == [(tmp_path / "job-1" / "items-w-1.jsonl").as_uri()]
    assert feeds[next(iter(feeds))]["item_export_kwargs"] == {"plt_job_feed": True}
    assert worker_name(settings) == "w-1"
    assert job_name(settings) == "job-1"


def test_default_worker_name_is_unique_and_fixed_once(tmp_path):
    settings = crawler_settings(tmp_path, PLT_DISTRIBUTED=True, REDIS_URL="redis://127.0.0.1:1/0")
    name = settings["PLT_WORKER_NAME"]
    assert name and name == worker_name(settings)
    assert name.endswith(f"-{os.getpid()}")


def test_job_state_is_the_redis_one(tmp_path):
    crawler = get_crawler(
        settings_dict={
            "ADDONS": ADDONS,
            "PLT_DISTRIBUTED": True,
            "REDIS_URL": "redis://127.0.0.1:1/0",
            "SHOP_URL": "http://127.0.0.1:1",
            "JOBDIR": str(tmp_path),
        }
    )
    assert isinstance(job_store(crawler), RedisJobState)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"SHOP_URL": "http://127.0.0.1:1"}, "PLT_DISTRIBUTED needs REDIS_URL"),
        ({"REDIS_URL": "redis://127.0.0.1:1/0"}, "PLT_DISTRIBUTED needs SHOP_URL"),
    ],
)
def test_missing_settings_stop_at_once(values, message):
    settings = Settings({"PLT_DISTRIBUTED": True, **values})
    # A ConfigError, not SystemExit: a program that embeds the crawler is not killed.
    with pytest.raises(ConfigError, match=message):
        DistributedAddon.update_pre_crawler_settings(settings)


def test_without_the_addon_the_crawl_stops_with_one_message(redis_server, tmp_path):
    addons = dict(project_settings.ADDONS)
    del addons["plt.distributed.addon.DistributedAddon"]
    proc = run_crawl(
        tmp_path,
        "http://127.0.0.1:9",
        "PLT_DISTRIBUTED=True",
        f"REDIS_URL={redis_server.url}",
        f"ADDONS={json.dumps(addons)}",
        timeout=60,
    )
    assert proc.returncode == 1, proc.stderr[-3000:]  # a settings error
    assert "needs the add-on plt.distributed.addon.DistributedAddon" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_unreachable_redis_stops_with_one_message(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # free, so nothing listens there
    proc = run_crawl(
        tmp_path,
        "http://127.0.0.1:9",
        "PLT_DISTRIBUTED=True",
        f"REDIS_URL=redis://127.0.0.1:{port}/0",
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Redis at REDIS_URL is not reachable" in proc.stderr
