from __future__ import annotations

import pytest

from plt.spiders.listing import (
    FIRST_LISTING_FAILED,
    LISTING_PRIORITY,
    LISTING_TOTAL_META,
    PRODUCT_PRIORITY,
    STOCK_PRIORITY,
)
from tests.helpers import collect, empty_page, html, product_spider


@pytest.fixture
def spider():
    return product_spider()


def test_priorities_keep_the_frontier_shallow():
    assert STOCK_PRIORITY > PRODUCT_PRIORITY > LISTING_PRIORITY


def test_listing_request(spider):
    request = spider.listing_request(3, 419)
    assert request.url == "http://shop.test:8800/products?page=3"
    assert request.cb_kwargs == {"page": 3, "pages": 419}
    assert request.priority == LISTING_PRIORITY
    assert not request.dont_filter
    assert spider.listing_request(1).cb_kwargs == {"page": 1}  # the count is not known yet


def test_first_listing_page_gives_products_and_the_next_page(spider):
    request = spider.listing_request(1)
    out = collect(spider.parse_listing(html(request, "listing-1.html"), page=1))
    assert [r.cb_kwargs for r in out] == [
        # The next page first, stored whatever becomes of this one. Two tiles
        # on page 1 of 20,103: the listing's own page size counts.
        {"page": 2, "pages": 10_052},
        {"product_id": 17},
        {"product_id": 23},
    ]
    assert spider.crawler.stats.get_value("plt/products/total") == 20_103


def test_last_listing_page_ends_the_chain(spider):
    request = spider.listing_request(419, 419)
    out = collect(spider.parse_listing(html(request, "listing-last.html"), 419, 419))
    assert [r.cb_kwargs for r in out] == [{"product_id": 99}]


def test_a_listing_read_again_clears_the_failure(spider):
    spider.job.set_meta(FIRST_LISTING_FAILED, True)
    request = spider.listing_request(1)
    collect(spider.parse_listing(html(request, "listing-1.html"), page=1))
    assert spider.job.get_meta(FIRST_LISTING_FAILED) is False
    assert not collect(spider.start())[0].dont_filter


def test_a_later_empty_listing_page_does_not_stop_the_crawl(spider):
    request = spider.listing_request(5, 9)
    out = collect(spider.parse_listing(empty_page(request), page=5, pages=9))
    assert [r.cb_kwargs for r in out] == [{"page": 6, "pages": 9}]


def test_the_listing_total_is_kept_for_later_runs(spider):
    request = spider.listing_request(1)
    collect(spider.parse_listing(html(request, "listing-1.html"), page=1))
    assert spider.job.get_meta(LISTING_TOTAL_META) == 20_103
    assert spider.crawler.stats.get_value("plt/listing/pages") == 1


def test_without_a_total_the_next_links_are_followed(spider, caplog):
    request = spider.listing_request(4)  # no page count: the first page had no total
    body = (
        b'<ul><li class="product-tile" data-product-id="7"><a class="product-link" '
        b'href="/product/a-7">a</a></li></ul><nav class="pagination"><a class="next">next</a></nav>'
    )
    response = html(request, "listing-last.html").replace(body=body)
    out = collect(spider.parse_listing(response, page=4))
    assert [r.cb_kwargs for r in out] == [{"page": 5}, {"product_id": 7}]
    assert spider.crawler.stats.get_value("plt/listing/no_total") == 1
    assert "No total count on http://shop.test:8800/products?page=4" in caplog.text
    assert spider.job.get_meta(LISTING_TOTAL_META) is None
