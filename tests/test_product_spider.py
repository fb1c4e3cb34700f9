from __future__ import annotations

import pytest
from scrapy import Request
from scrapy.exceptions import CloseSpider
from scrapy.http import HtmlResponse, TextResponse
from scrapy.spidermiddlewares.httperror import HttpError
from scrapy.utils.test import get_crawler
from twisted.python.failure import Failure

from plt.errors import ConfigError
from plt.items import ITEM_FIELDS
from plt.job import store as job_stores
from plt.job.scheduler import LEASE_KEY
from plt.middlewares.headonly import ResponseTooLarge
from plt.spiders.listing import FIRST_LISTING_FAILED, PRODUCT_PRIORITY, STOCK_PRIORITY
from plt.spiders.product import NOT_A_LISTING, ProductSpider
from tests.conftest import data_file
from tests.helpers import collect, empty_page, html, product_spider


@pytest.fixture
def spider():
    return product_spider()


def test_product_request_carries_only_the_id(spider):
    request = spider.product_request("http://shop.test:8800/product/a-17", 17)
    assert request.cb_kwargs == {"product_id": 17}
    assert request.priority == PRODUCT_PRIORITY
    assert request.meta["plt_head_until"] == "</main>"
    assert request.meta["deltafetch_key"] == "17"
    assert request.meta["handle_httpstatus_list"] == [404, 410]


def test_stock_request_goes_to_the_stock_api(spider):
    request = spider.stock_request(17, 100170)
    assert request.url == "http://stock.test/api/stock/100170"
    assert request.cb_kwargs == {"product_id": 17, "col_num": 100170}
    assert request.priority == STOCK_PRIORITY


def test_start_yields_the_first_listing_page(spider):
    assert [r.url for r in collect(spider.start())] == ["http://shop.test:8800/products?page=1"]


def test_product_then_stock_make_one_item(spider):
    product = spider.product_request("http://shop.test:8800/product/denim-slim-ankle-17", 17)
    out = collect(spider.parse_product(html(product, "product-17.html"), product_id=17))
    assert len(out) == 1 and out[0].url == "http://stock.test/api/stock/100170"
    assert spider.job.get_pending(17)["name"] == "Denim Slim Ankle"
    stock = out[0]
    response = TextResponse(stock.url, body=data_file("stock-100170.json"), request=stock)
    (item,) = collect(spider.parse_stock(response, **stock.cb_kwargs))
    assert tuple(item) == ITEM_FIELDS
    assert item["product_id"] == 17
    assert item["date"] == spider.job.get_meta("started_at")
    assert [s["sku"] for s in item["stock_jsons"]] == ["100170-S", "100170-M"]


def test_missing_active_colour_uses_the_first(spider):
    product = spider.product_request("http://shop.test:8800/product/wool-coat-99", 99)
    response = html(product, "product-sold-out-no-active.html")
    (stock,) = collect(spider.parse_product(response, product_id=99))
    assert stock.cb_kwargs == {"product_id": 99, "col_num": 100990}
    assert spider.crawler.stats.get_value("plt/product/no_active_colour") == 1


def test_withdrawn_product_is_counted(spider):
    product = spider.product_request("http://shop.test:8800/product/gone-5", 5)
    out = collect(spider.parse_product(html(product, "listing-last.html", 404), 5))
    assert out == []
    assert spider.crawler.stats.get_value("plt/product/withdrawn") == 1


def test_bad_stock_json_exports_null_stock(spider):
    spider.job.put_pending(17, {"product_id": 17, "name": "x"})
    stock = spider.stock_request(17, 100170)
    response = TextResponse(stock.url, body=b'{"colNum": 100170, "subProd', request=stock)
    (item,) = collect(spider.parse_stock(response, **stock.cb_kwargs))
    assert item["stock_jsons"] is None
    assert spider.crawler.stats.get_value("plt/stock/invalid_json") == 1


def leased(spider, request):
    from plt.job.scheduler import LEASE_KEY

    spider.job.add_request(None, 0, "{}", request.cb_kwargs.get("product_id"))
    request.meta[LEASE_KEY], _ = spider.job.lease_next()
    return request


def test_a_stock_call_failing_for_now_keeps_the_partial_item_for_the_next_run(spider):
    spider.job.put_pending(17, {"product_id": 17, "name": "x"})
    failure = Failure(ConnectionError("dropped"))
    failure.request = leased(spider, spider.stock_request(17, 100170))
    assert collect(spider.stock_failed(failure)) == []
    assert spider.job.get_pending(17) is not None and spider.job.leased == 1
    assert spider.crawler.stats.get_value("plt/stock/kept") == 1


def test_a_stock_call_given_up_exports_null_stock(spider):
    spider.job.put_pending(17, {"product_id": 17, "name": "x"})
    request = leased(spider, spider.stock_request(17, 100170))
    for _ in range(2):  # two earlier runs failed
        spider.job.record_attempt(request.meta["plt_lease"], "ConnectionError")
    failure = Failure(ConnectionError("dropped"))
    failure.request = request
    (item,) = collect(spider.stock_failed(failure))
    assert item["product_id"] == 17 and item["stock_jsons"] is None
    assert spider.crawler.stats.get_value("plt/stock/failed") == 1
    assert spider.crawler.stats.get_value("plt/job/given_up") == 1


def test_a_permanent_stock_answer_exports_null_stock(spider):
    from scrapy.spidermiddlewares.httperror import HttpError

    spider.job.put_pending(17, {"product_id": 17, "name": "x"})
    request = leased(spider, spider.stock_request(17, 100170))
    failure = Failure(HttpError(TextResponse(request.url, status=404, request=request)))
    failure.request = request
    (item,) = collect(spider.stock_failed(failure))
    assert item["stock_jsons"] is None


def test_too_large_product_page_is_counted(spider):
    failure = Failure(ResponseTooLarge("big"))
    failure.request = spider.product_request("http://shop.test:8800/product/big-3", 3)
    assert collect(spider.request_failed(failure)) == []
    assert spider.crawler.stats.get_value("plt/product/too_large") == 1


@pytest.mark.parametrize(
    ("status", "keeps_lease"),
    [(503, True), (429, True), (408, True), (403, True), (401, True), (404, False), (400, False)],
)
def test_failed_page_keeps_its_lease_unless_the_failure_is_permanent(spider, status, keeps_lease):
    from scrapy.spidermiddlewares.httperror import HttpError

    from plt.job.scheduler import KEEP_LEASE_KEY, LEASE_KEY

    spider.job.add_request("fp", 0, "{}", None)
    lease_id, _ = spider.job.lease_next()
    request = spider.listing_request(2, 9)
    request.meta[LEASE_KEY] = lease_id
    response = HtmlResponse(request.url, status=status, body=b"", request=request)
    failure = Failure(HttpError(response))
    failure.request = request
    # Whatever became of page 2, page 3 is queued.
    assert [r.cb_kwargs for r in collect(spider.request_failed(failure))] == [
        {"page": 3, "pages": 9}
    ]
    # Kept for the next run, or given up (400), both kept from settling; or
    # withdrawn (404): an answer, settled once LeaseMiddleware has stored the output.
    assert bool(request.meta.get(KEEP_LEASE_KEY)) is (status != 404)
    assert spider.job.leased == (0 if status == 400 else 1)
    assert spider.job.failed == (0 if keeps_lease else int(status == 400))
    assert spider.crawler.stats.get_value(f"plt/listing/http_{status}") == 1


def test_products_sharing_a_stock_url_are_not_duplicates(spider):
    from plt.job.scheduler import dedupe_key

    fingerprinter = spider.crawler.request_fingerprinter
    first, second = spider.stock_request(1, 500), spider.stock_request(2, 500)
    assert first.url == second.url
    assert dedupe_key(first, fingerprinter) != dedupe_key(second, fingerprinter)
    assert dedupe_key(first, fingerprinter) == dedupe_key(
        spider.stock_request(1, 500), fingerprinter
    )


def test_the_page_id_keys_the_rest_when_it_differs_from_the_listing(spider):
    product = spider.product_request("http://shop.test:8800/product/denim-slim-ankle-17", 99)
    (stock,) = collect(spider.parse_product(html(product, "product-17.html"), product_id=99))
    assert stock.cb_kwargs["product_id"] == 17
    assert spider.job.get_pending(17) is not None and spider.job.get_pending(99) is None
    assert spider.crawler.stats.get_value("plt/product/id_changed") == 1


# -- the retailer's settings and a first page that is no listing ---------------


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({}, "SHOP_URL is not set: .* -s PLT_EMBEDDED_SHOP=1"),
        ({"SHOP_URL": "shop.example"}, "did you mean https://shop.example"),
        ({"SHOP_URL": "http://shop.test", "STOCK_API_URL": "/api"}, "STOCK_API_URL '/api'"),
        ({"PLT_EMBEDDED_SHOP": True, "PLT_EMBEDDED_SHOP_OPTIONS": "{"}, "not a JSON object"),
    ],
)
def test_crawler_is_not_created_with_bad_retailer_settings(settings, message):
    with pytest.raises(ConfigError, match=message):
        get_crawler(ProductSpider, settings)


def test_demo_retailer_asked_for_needs_no_shop_url():
    crawler = get_crawler(ProductSpider, {"PLT_EMBEDDED_SHOP": True})
    assert not crawler.settings.get("SHOP_URL")  # the add-on sets it once the crawl starts


def leased_listing(spider, page: int, pages: int | None = None) -> Request:
    spider.job.add_request(f"fp{page}", 0, "{}", None)
    lease_id, _ = spider.job.lease_next()
    request = spider.listing_request(page, pages)
    request.meta[LEASE_KEY] = lease_id
    return request


def test_first_listing_page_without_tiles_or_total_stops_the_crawl(spider, caplog):
    request = leased_listing(spider, 1)
    with pytest.raises(CloseSpider) as excinfo:
        collect(spider.parse_listing(empty_page(request), page=1))
    assert excinfo.value.reason == NOT_A_LISTING
    assert spider.crawler.stats.get_value("plt/listing/not_a_listing") == request.url
    (error,) = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert "Check SHOP_URL (http://shop.test:8800)" in error
    assert "200, no product tiles, no total count" in error
    # Given up, and remembered: the next run asks for the first page again.
    assert spider.job.leased == 0
    assert spider.job.get_meta(FIRST_LISTING_FAILED) is True
    (again,) = collect(spider.start())
    assert again.dont_filter and again.url == request.url


@pytest.mark.parametrize("status", [404, 400])
def test_first_listing_page_refused_for_good_stops_the_crawl(spider, status):
    request = leased_listing(spider, 1)
    failure = Failure(HttpError(empty_page(request, status)))
    failure.request = request
    with pytest.raises(CloseSpider) as excinfo:
        collect(spider.request_failed(failure))
    assert excinfo.value.reason == NOT_A_LISTING
    assert spider.job.get_meta(FIRST_LISTING_FAILED) is True
    assert spider.job.leased == 0


def test_first_listing_page_failing_for_now_keeps_its_lease(spider):
    request = leased_listing(spider, 1)
    failure = Failure(HttpError(empty_page(request, 503)))
    failure.request = request
    assert collect(spider.request_failed(failure)) == []
    assert spider.job.leased == 1
    assert not spider.job.get_meta(FIRST_LISTING_FAILED)


def test_a_resumed_job_restores_its_total_and_what_earlier_runs_finished(spider, tmp_path):
    # First run: the listing's total and a withdrawn product go to the job state.
    first = spider.listing_request(1)
    collect(spider.parse_listing(html(first, "listing-1.html"), page=1))
    product = spider.product_request("http://shop.test:8800/product/x-5", 5)
    collect(spider.parse_product(html(product, "listing-last.html", 404), 5))
    spider.job.mark_exported(17, 100)
    spider.job.mark_exported(23, 200)
    # The next run (same job state) starts with both back in its stats.
    crawler = get_crawler(ProductSpider, {"SHOP_URL": "http://shop.test:8800"})
    crawler.stats.open_spider()
    resumed = ProductSpider.from_crawler(crawler)
    job_stores._stores[crawler] = spider.job  # the same job state, as on a resume
    collect(resumed.start())
    assert crawler.stats.get_value("plt/products/total") == 20_103
    assert crawler.stats.get_value("plt/products/done_before") == 3  # 2 exported, 1 withdrawn


def test_a_new_job_starts_from_nothing(spider):
    collect(spider.start())
    assert spider.crawler.stats.get_value("plt/products/total") is None
    assert spider.crawler.stats.get_value("plt/products/done_before") == 0


def test_a_page_showing_an_unseen_product_exports_it_under_its_own_id_and_url(spider):
    spider.ledger.show([5])
    asked = leased(spider, spider.product_request("http://shop.test:8800/product/x-5", 5))
    (stock,) = collect(spider.parse_product(html(asked, "product-17.html"), product_id=5))
    assert stock.cb_kwargs["product_id"] == 17  # its stock is looked up for it
    assert spider.job.get_pending(17)["url"] == "http://shop.test:8800/product/denim-slim-ankle-17"
    # The product asked for stays to do: kept for the next run, counted.
    assert asked.meta["plt_keep_lease"] and spider.job.leased == 1
    assert spider.crawler.stats.get_value("plt/product/id_changed") == 1


def test_a_page_showing_a_product_already_in_the_job_exports_nothing(spider):
    spider.ledger.show([5, 17])
    asked = leased(spider, spider.product_request("http://shop.test:8800/product/x-5", 5))
    assert collect(spider.parse_product(html(asked, "product-17.html"), product_id=5)) == []
    assert spider.job.get_pending(17) is None and asked.meta["plt_keep_lease"]
