from __future__ import annotations

import pytest
from scrapy import Request
from scrapy.exceptions import CloseSpider
from scrapy.utils.test import get_crawler

from plt.jobstate import STATE_FILE
from plt.requestcodec import request_from_json, request_to_json
from plt.scheduler import LEASE_KEY, JobScheduler
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
