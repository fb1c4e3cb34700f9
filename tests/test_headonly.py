from __future__ import annotations

import gzip
import zlib

import pytest
from scrapy import Request
from scrapy.exceptions import NotConfigured
from scrapy.http import HtmlResponse
from scrapy.utils.test import get_crawler

from plt.middlewares.headonly import (
    HeadOnlyMiddleware,
    ResponseTooLarge,
    gzip_declared_size,
    inflate_head,
)

HEAD = b"<html><main class='product'>block</main>"
PAGE = HEAD + b"<section>" + b"bulk " * 300_000 + b"</section>"


def raw_deflate(data: bytes) -> bytes:
    c = zlib.compressobj(wbits=-15)
    return c.compress(data) + c.flush()


@pytest.mark.parametrize("compress", [gzip.compress, zlib.compress, raw_deflate])
def test_inflate_stops_at_the_marker(compress):
    assert inflate_head(compress(PAGE), b"</main>") == (HEAD, True)


def test_inflate_without_marker_is_bounded():
    with pytest.raises(ResponseTooLarge):
        inflate_head(gzip.compress(PAGE), b"</nope>", max_size=100_000)
    assert inflate_head(gzip.compress(b"short"), b"</nope>") == (b"short", False)


def test_gzip_declared_size():
    assert gzip_declared_size(gzip.compress(PAGE)) == len(PAGE)
    assert gzip_declared_size(b"not gzip") is None


def make_mw(**settings) -> HeadOnlyMiddleware:
    crawler = get_crawler(settings_dict=settings)
    crawler.stats.open_spider()
    return HeadOnlyMiddleware.from_crawler(crawler)


def response(request: Request, body: bytes, encoding: bytes | None = b"gzip") -> HtmlResponse:
    headers = {"Content-Encoding": encoding} if encoding else {}
    return HtmlResponse(request.url, body=body, headers=headers, request=request)


def test_flagged_response_is_trimmed_and_counted():
    mw = make_mw()
    request = Request("http://shop/product/x-1", meta={"plt_head_until": "</main>"})
    wire = gzip.compress(PAGE)
    out = mw.process_response(request, response(request, wire))
    assert out.body == HEAD
    assert b"Content-Encoding" not in out.headers
    assert "head" in out.flags
    stats = mw.stats
    assert stats.get_value("plt/bytes/wire") == len(wire)
    assert stats.get_value("plt/bytes/decoded") == len(HEAD)
    assert stats.get_value("plt/bytes/skipped") == len(PAGE) - len(HEAD)


def test_identity_response_is_trimmed():
    mw = make_mw()
    request = Request("http://shop/p", meta={"plt_head_until": "</main>"})
    assert mw.process_response(request, response(request, PAGE, None)).body == HEAD


def test_unflagged_and_error_responses_pass_untouched():
    mw = make_mw()
    plain = Request("http://shop/products?page=1")
    resp = response(plain, gzip.compress(PAGE))
    assert mw.process_response(plain, resp) is resp
    flagged = Request("http://shop/p", meta={"plt_head_until": "</main>"})
    not_found = HtmlResponse(flagged.url, status=404, body=b"gone", request=flagged)
    assert mw.process_response(flagged, not_found) is not_found


def test_too_large_by_gzip_trailer_without_inflating():
    mw = make_mw(DOWNLOAD_MAXSIZE=100_000)
    request = Request("http://shop/p", meta={"plt_head_until": "</main>"})
    with pytest.raises(ResponseTooLarge, match="DOWNLOAD_MAXSIZE"):
        mw.process_response(request, response(request, gzip.compress(PAGE)))


def test_disabled():
    with pytest.raises(NotConfigured):
        make_mw(PLT_HEAD_ONLY_ENABLED=False)
