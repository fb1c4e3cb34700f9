from __future__ import annotations

import pytest
from scrapy import Request
from scrapy.exceptions import NotConfigured
from scrapy.http import HtmlResponse
from scrapy.utils.test import get_crawler

from plt.middlewares.forbidden import ForbiddenRetryMiddleware


def make(**settings) -> ForbiddenRetryMiddleware:
    crawler = get_crawler(settings_dict=settings)
    crawler.stats.open_spider()
    crawler.spider = crawler._create_spider("s")
    return ForbiddenRetryMiddleware.from_crawler(crawler)


def answer(request: Request, status: int) -> HtmlResponse:
    return HtmlResponse(request.url, status=status, body=b"denied", request=request)


@pytest.mark.parametrize("status", [401, 403])
def test_retried_once_then_handed_on(status):
    mw = make()
    request = Request("http://shop/products?page=2")
    retry = mw.process_response(request, answer(request, status))
    assert isinstance(retry, Request) and retry.meta["retry_times"] == 1
    second = answer(retry, status)
    assert mw.process_response(retry, second) is second
    assert mw.crawler.stats.get_value(f"retry/reason_count/{status} (refused)") == 1


def test_other_answers_and_dont_retry_pass():
    mw = make()
    request = Request("http://shop/p")
    ok = answer(request, 200)
    assert mw.process_response(request, ok) is ok
    no = Request("http://shop/p", meta={"dont_retry": True})
    refused = answer(no, 403)
    assert mw.process_response(no, refused) is refused


@pytest.mark.parametrize("settings", [{"PLT_RETRY_FORBIDDEN_TIMES": 0}, {"RETRY_ENABLED": False}])
def test_disabled(settings):
    with pytest.raises(NotConfigured):
        make(**settings)
