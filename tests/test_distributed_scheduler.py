"""The scheduler over the Redis store decodes with plt.job.requestcodec: data never names code."""

from __future__ import annotations

import json
import logging
import pickle

from scrapy.utils.test import get_crawler

from plt.distributed.state import STORE_PATH
from plt.job.jobdir import FAILED_FILE
from plt.job.requestcodec import LEASE_KEY, request_to_json
from plt.job.scheduler import JobScheduler
from plt.spiders.product import ProductSpider

pytest_plugins = ("tests.redis_server",)


def test_undecodable_requests_are_given_up_and_the_crawl_cannot_finish(
    redis_server, tmp_path, caplog
):
    crawler = get_crawler(
        ProductSpider,
        {
            "PLT_DISTRIBUTED": True,
            "REDIS_URL": redis_server.url,
            "PLT_REDIS_JOB": "undecodable",
            "SHOP_URL": "http://shop.test",
            "PLT_JOB_STORE": STORE_PATH,
            "JOBDIR": str(tmp_path),
            "PLT_WORKER_NAME": "w",
        },
    )
    crawler.stats.open_spider()
    spider = ProductSpider.from_crawler(crawler)
    scheduler = JobScheduler.from_crawler(crawler)
    scheduler.open(spider)
    good = spider.product_request("http://shop.test/product/a-7", 7)
    stored = json.loads(request_to_json(good, spider))
    state = scheduler.state
    state.add_request("a", 50, "{garbage", None)
    state.add_request("b", 50, pickle.dumps(stored).decode("latin-1"), None)
    state.add_request("c", 50, json.dumps({**stored, "_class": "jobs.evil.X"}), None)
    assert scheduler.enqueue_request(good)
    with caplog.at_level(logging.INFO, logger="plt.job.scheduler"):
        request = scheduler.next_request()
        assert request.url == good.url and request.meta[LEASE_KEY] in state.held
        assert scheduler.next_request() is None
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert crawler.stats.get_value("plt/job/undecodable") == 3
    assert len((tmp_path / FAILED_FILE).read_text().splitlines()) == 3
    state.settle(request.meta[LEASE_KEY])
    state.set_meta("seeded", True)
    caplog.clear()
    scheduler.close("finished")
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "given up: 3 in the Redis crawl undecodable" in errors[0]
    assert crawler.stats.get_value("plt/job/state_error") == errors[0]
    # Nothing is left, but three were given up: the crawl is not finished.
    assert not state.server.hget(state.keys.meta, "finished")
