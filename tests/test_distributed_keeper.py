"""The lease keeper's periodic tick and idle check see a crawl whose state was lost."""

from __future__ import annotations

import pytest
from scrapy.exceptions import CloseSpider
from scrapy.utils.test import get_crawler

from plt.distributed.keeper import LeaseKeeper
from plt.distributed.state import STORE_PATH
from plt.job.jobdir import JobStateError
from plt.job.store import job_store

pytest_plugins = ("tests.redis_server",)


def keeper_of(redis_server, jobdir) -> tuple[LeaseKeeper, list[JobStateError]]:
    crawler = get_crawler(
        settings_dict={
            "PLT_DISTRIBUTED": True,
            "REDIS_URL": redis_server.url,
            "SHOP_URL": "http://127.0.0.1:1",
            "PLT_JOB_STORE": STORE_PATH,
            "JOBDIR": str(jobdir),
            "PLT_WORKER_NAME": "w",
        }
    )
    crawler.stats.open_spider()
    keeper = LeaseKeeper(crawler)
    state = job_store(crawler)
    state.open()
    failures: list[JobStateError] = []
    state.on_error = failures.append
    return keeper, failures


def test_the_tick_stops_a_worker_whose_crawl_was_lost(redis_server, tmp_path):
    keeper, failures = keeper_of(redis_server, tmp_path)
    state = keeper.state
    state.add_request("a", 0, "{}", None, seed=True)
    state.lease_next()
    keeper.tick()
    assert not failures
    state.store.reset()
    keeper.tick()
    (error,) = failures
    assert "was lost" in str(error)
    assert not redis_server.client().exists(state.keys.workers)  # no lease renewed
    with pytest.raises(CloseSpider) as closed:
        keeper.spider_idle(None)
    assert closed.value.reason == "job_state_error"  # never "finished"
    state.close()
