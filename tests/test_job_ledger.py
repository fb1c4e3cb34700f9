from __future__ import annotations

import json
import logging

from scrapy import Request
from scrapy.utils.test import get_crawler
from twisted.internet.error import TimeoutError

from plt.job.jobdir import FAILED_FILE
from plt.job.ledger import GIVEN_UP, KEPT, Ledger
from plt.job.requestcodec import KEEP_LEASE_KEY, LEASE_KEY, request_to_json, run_meta
from plt.job.sqlite import SQLiteJobStore
from plt.job.store import job_store


def setup(tmp_path, **settings):
    crawler = get_crawler(settings_dict={"JOBDIR": str(tmp_path), **settings})
    crawler.stats.open_spider()
    state = job_store(crawler)
    state.open()
    return Ledger.for_crawler(crawler), state


def leased(state, item_id=None):
    state.add_request(None, 0, "{}", item_id)
    lease, _ = state.lease_next()
    return Request("http://shop.test/p-7", cb_kwargs={"product_id": item_id},
                   meta={LEASE_KEY: lease})  # fmt: skip


def test_a_failure_that_may_pass_is_kept_then_given_up_after_max_attempts(tmp_path, caplog):
    ledger, state = setup(tmp_path, PLT_JOB_MAX_ATTEMPTS=3)
    state.show_items([7])
    request = leased(state, 7)
    caplog.set_level(logging.WARNING)
    assert ledger.failed(request, TimeoutError()) == KEPT
    assert request.meta[KEEP_LEASE_KEY] and state.leased == 1
    assert "kept for the next run (attempt 1 of 3)" in caplog.text
    # Two more runs: the attempts are the job's, not the request's.
    for run, fate in ((2, KEPT), (3, GIVEN_UP)):
        state.close()
        ledger, state = setup(tmp_path, PLT_JOB_MAX_ATTEMPTS=3)  # the next run
        lease, _ = state.lease_next()
        request = Request("http://shop.test/p-7", cb_kwargs={"product_id": 7},
                          meta={LEASE_KEY: lease})  # fmt: skip
        assert ledger.failed(request, TimeoutError()) == fate, run
    assert (state.leased, state.failed) == (0, 1)
    assert "Giving up on http://shop.test/p-7 after 3 runs: TimeoutError" in caplog.text
    (line,) = (tmp_path / FAILED_FILE).read_text().splitlines()
    assert json.loads(line)["attempts"] == 3
    account = state.account()
    assert (account.given_up, account.missing, account.requests_given_up) == (1, 0, 1)
    assert ledger.stats.get_value("plt/job/given_up") == 1


def test_given_up_requests_are_tried_again_when_asked(tmp_path):
    ledger, state = setup(tmp_path, PLT_JOB_MAX_ATTEMPTS=1)
    state.show_items([7])
    assert ledger.failed(leased(state, 7), TimeoutError()) == GIVEN_UP
    assert state.retry_failed() == 1
    assert (state.queued, state.failed) == (1, 0)
    assert state.account().failed_for_now == 0 and state.account().not_fetched == 1


def test_a_retry_takes_over_its_original_row_and_attempts(tmp_path):
    _, state = setup(tmp_path)
    request = leased(state, 7)
    lease = request.meta[LEASE_KEY]
    state.record_attempt(lease, "HTTP 503")
    retry = request.replace(url="http://shop.test/p-7?again", dont_filter=True)
    assert state.add_request(None, 0, "{}", 7, replaces=lease)
    again, _ = state.lease_next()
    assert again == lease and state.attempts(again) == 1 and retry.url


def test_retry_counts_are_never_stored(tmp_path):
    from plt.spiders.product import ProductSpider

    crawler = get_crawler(ProductSpider, {"SHOP_URL": "http://shop.test"})
    spider = ProductSpider.from_crawler(crawler)
    request = spider.listing_request(2, 9)
    request.meta.update(retry_times=2, redirect_times=1, redirect_urls=["http://a"])
    assert "retry_times" not in json.loads(request_to_json(request, spider))["meta"]
    assert run_meta(request) == {"retry_times": 2, "redirect_times": 1,
                                 "redirect_urls": ["http://a"]}  # fmt: skip


def test_a_dropped_item_settles_its_request(tmp_path):
    from scrapy.http import Response

    ledger, state = setup(tmp_path)
    request = leased(state, 7)
    ledger.item_dropped({"product_id": 7}, Response(request.url, request=request), Exception())
    assert state.leased == 0


def test_a_dropped_item_leaves_a_request_without_an_item_id_to_the_lease_middleware(tmp_path):
    from scrapy.http import Response

    # A listing page whose tiles are the items: its other items may not be written yet.
    ledger, state = setup(tmp_path)
    request = leased(state, None)
    ledger.item_dropped({"product_id": 7}, Response(request.url, request=request), Exception())
    assert state.leased == 1


def test_the_item_id_is_the_field_the_job_names_whatever_the_item_type(tmp_path):
    from dataclasses import dataclass

    from scrapy import Field, Item

    @dataclass
    class Tile:
        sku: int

    class TileItem(Item):
        sku = Field()

    ledger, _ = setup(tmp_path, PLT_JOB_ITEM_ID_FIELD="sku")
    assert ledger.item_id({"sku": 3}) == 3
    assert ledger.item_id(Tile(sku=4)) == 4
    assert ledger.item_id(TileItem(sku=5)) == 5
    assert ledger.item_id({"product_id": 3}) is None
    assert ledger.item_id(Request("http://shop.test/", cb_kwargs={"sku": 6})) == 6
    assert ledger.item_id(Request("http://shop.test/", cb_kwargs={"product_id": 6})) is None
    assert ledger.item_id("not an item") is None


def test_a_request_failing_twice_in_a_run_counts_one_attempt(tmp_path):
    # Each of a response's items may fail (item_error): one run, one attempt.
    ledger, state = setup(tmp_path, PLT_JOB_MAX_ATTEMPTS=2)
    request = leased(state, None)
    for _ in range(3):
        assert ledger.failed(request, TimeoutError()) == KEPT
    assert state.attempts(request.meta[LEASE_KEY]) == 1
    assert ledger.stats.get_value("plt/job/kept") == 1
    assert state.failed == 0


def test_an_item_id_too_large_for_the_job_is_no_id(tmp_path):
    ledger, _ = setup(tmp_path)
    assert ledger.item_id({"product_id": 2**70}) is None
    ledger.show([1, 2**70])
    assert ledger.stats.get_value("plt/job/item_id_out_of_range") == 1


def test_a_redirect_hop_kept_for_the_next_run_starts_again_from_the_url_asked_for(tmp_path):
    from plt.job.policy import RedirectFailure
    from plt.spiders.product import ProductSpider

    crawler = get_crawler(ProductSpider, {"SHOP_URL": "http://shop.test", "JOBDIR": str(tmp_path)})
    crawler.stats.open_spider()
    crawler.spider = ProductSpider.from_crawler(crawler)
    state = job_store(crawler)
    state.open()
    ledger = Ledger.for_crawler(crawler)
    hop = leased(state, 7).replace(
        url="http://shop.test/product/item-7", callback=crawler.spider.parse_product
    )
    hop.meta["redirect_urls"] = ["http://shop.test/product/x-7"]
    assert ledger.failed(hop, RedirectFailure("redirect loop")) == KEPT
    state.close()
    state = SQLiteJobStore(tmp_path)
    state.open()
    _, data = state.lease_next()
    assert json.loads(data)["url"] == "http://shop.test/product/x-7"
