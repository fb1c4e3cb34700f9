from __future__ import annotations

import json
import logging
import pickle

import pytest
from scrapy import Request
from scrapy.exceptions import CloseSpider
from scrapy.utils.test import get_crawler

from plt.job.jobdir import FAILED_FILE
from plt.job.requestcodec import request_from_json, request_to_json
from plt.job.scheduler import LEASE_KEY, JobScheduler
from plt.job.sqlite import STATE_FILE
from plt.spiders.product import ProductSpider


def make_spider(jobdir=None) -> ProductSpider:
    settings = {"SHOP_URL": "http://shop.test", "JOBDIR": str(jobdir) if jobdir else None}
    crawler = get_crawler(ProductSpider, settings)
    crawler.stats.open_spider()
    return ProductSpider.from_crawler(crawler)


@pytest.fixture
def spider():
    return make_spider()


def open_scheduler(spider, jobdir) -> JobScheduler:
    if jobdir is not None:
        spider = make_spider(jobdir)
    scheduler = JobScheduler.from_crawler(spider.crawler)
    scheduler.open(spider)
    return scheduler


def test_request_json_round_trip(spider):
    request = spider.product_request("http://shop.test/product/a-7", 7)
    request.headers["X-Bytes"] = b"\xff\x00"
    back = request_from_json(request_to_json(request, spider), spider)
    assert back.url == request.url
    assert back.callback == spider.parse_product
    assert back.errback == spider.request_failed
    assert back.cb_kwargs == {"product_id": 7}
    assert back.priority == request.priority
    assert back.meta["plt_head_until"] == "</main>"
    assert back.headers["X-Bytes"] == b"\xff\x00"


def test_enqueue_dedupe_and_lease(spider, tmp_path):
    scheduler = open_scheduler(spider, tmp_path)
    assert scheduler.enqueue_request(spider.listing_request(1))
    assert not scheduler.enqueue_request(spider.listing_request(1))
    assert scheduler.enqueue_request(spider.product_request("http://shop.test/product/a-7", 7))
    assert len(scheduler) == 2
    first = scheduler.next_request()
    assert first.cb_kwargs == {"product_id": 7}  # products outrank listings
    assert first.meta[LEASE_KEY]
    stats = scheduler.stats
    assert stats.get_value("dupefilter/filtered") == 1
    assert stats.get_value("scheduler/enqueued/disk") == 2
    assert stats.get_value("scheduler/unserializable") is None
    scheduler.close("shutdown")


def test_unserializable_request_stays_in_memory(spider):
    scheduler = open_scheduler(spider, None)
    request = Request("http://shop.test/x", meta={"obj": object()})
    assert scheduler.enqueue_request(request)
    assert spider.crawler.stats.get_value("scheduler/unserializable") == 1
    assert scheduler.next_request() is request
    assert scheduler.next_request() is None  # its seen mark is not a queued request
    assert not scheduler.enqueue_request(Request("http://shop.test/x", meta={"obj": object()}))


def test_finished_job_closes_at_once(spider, tmp_path):
    scheduler = open_scheduler(spider, tmp_path)
    scheduler.close("finished")
    scheduler = open_scheduler(spider, tmp_path)
    with pytest.raises(CloseSpider) as info:
        scheduler.spider_opened(spider)
    assert info.value.reason == "finished"


def test_damaged_job_closes_with_a_reason(tmp_path):
    (tmp_path / STATE_FILE).write_bytes(b"garbage" * 1000)
    spider = make_spider(tmp_path)
    scheduler = JobScheduler.from_crawler(spider.crawler)
    scheduler.open(spider)
    with pytest.raises(CloseSpider) as info:
        scheduler.spider_opened(spider)
    assert info.value.reason == "job_state_error"
    assert STATE_FILE in scheduler.stats.get_value("plt/job/state_error")


def test_undecodable_rows_are_given_up_recorded_and_counted(spider, tmp_path, caplog):
    scheduler = open_scheduler(spider, tmp_path)
    spider = scheduler.spider
    good = spider.product_request("http://shop.test/product/a-7", 7)
    stored = json.loads(request_to_json(good, spider))
    state = scheduler.state
    rows = {
        "garbage": "{not json",
        "pickle": pickle.dumps(good.to_dict(spider=spider)),
        "evil": json.dumps({**stored, "_class": "jobs.evil.X"}),
        "renamed": json.dumps({**stored, "callback": "parse_old"}),
    }
    for fp, data in rows.items():
        state.add_request(fp, 50, data, None)
    assert scheduler.enqueue_request(good)
    with caplog.at_level(logging.DEBUG, logger="plt.job.scheduler"):
        assert scheduler.next_request().url == good.url  # past the four bad rows
        assert scheduler.next_request() is None
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "cannot be decoded" in warnings[0].getMessage()
    assert scheduler.stats.get_value("plt/job/undecodable") == 4
    failed = [json.loads(line) for line in (tmp_path / FAILED_FILE).read_text().splitlines()]
    assert [f["request"] for f in failed] == [1, 2, 3, 4]
    assert "not JSON" in failed[0]["error"] and "jobs.evil.X" in failed[2]["error"]
    # The job cannot finish: one error line, and the crawl command exits 2.
    caplog.clear()
    scheduler.close("finished")
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "were given up: 4 in" in errors[0]
    assert str(tmp_path / FAILED_FILE) in errors[0] and "PLT_JOB_RESET=1" in errors[0]
    assert scheduler.stats.get_value("plt/job/state_error") == errors[0]
    again = open_scheduler(spider, tmp_path)
    assert again.state.given_up == 4 and not again.state.get_meta("finished")
    again.close("shutdown")
