from __future__ import annotations

import pytest
from scrapy import Request
from scrapy.http import Response
from scrapy.utils.test import get_crawler

from plt.job.policy import RedirectFailure
from plt.middlewares.redirects import SAME_QUERY_KEY, RedirectGuard


def redirect(request: Request, location: str) -> Response:
    return Response(request.url, status=302, headers={"Location": location}, request=request)


@pytest.fixture
def mw():
    crawler = get_crawler()
    crawler.stats.open_spider()
    return RedirectGuard.from_crawler(crawler)


def test_a_hop_is_followed_whatever_the_dupefilter_says(mw):
    request = Request("http://shop.test/product/x-5")
    mw.process_response(request, redirect(request, "/product/canonical-5"))
    assert request.dont_filter


def test_a_loop_is_a_failure_of_the_request(mw):
    request = Request(
        "http://shop.test/product/b", meta={"redirect_urls": ["http://shop.test/product/a"]}
    )
    with pytest.raises(RedirectFailure, match="redirect loop"):
        mw.process_response(request, redirect(request, "/product/a"))


def test_a_listing_page_sent_to_another_page_fails(mw):
    request = Request("http://shop.test/products?page=5", meta={SAME_QUERY_KEY: True})
    with pytest.raises(RedirectFailure, match="another page"):
        mw.process_response(request, redirect(request, "/products?page=1"))
    same = Request("http://shop.test/products?page=5", meta={SAME_QUERY_KEY: True})
    mw.process_response(same, redirect(same, "https://shop.test/products?page=5"))
