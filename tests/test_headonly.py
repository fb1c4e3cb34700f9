from __future__ import annotations

import dataclasses
import gzip
import json

import brotli
import pytest
from scrapy import Request
from scrapy.exceptions import NotConfigured, StopDownload
from scrapy.http import Headers, HtmlResponse
from scrapy.utils.test import get_crawler

from plt.middlewares.headonly import (
    SCRAPY_ACCEPT_ENCODING,
    HeadOnlyMiddleware,
    IncompleteBody,
    ResponseTooLarge,
)
from plt.shop.catalog import ShopConfig
from plt.shop.process import ShopProcess
from plt.verify import compare, read_items
from tests.conftest import FAULTY_SHOP, run_crawl, runs
from tests.test_decoding import ENCODERS, HEAD, PAGE

ENCODE = {k: ENCODERS[k] for k in (b"gzip", b"br", b"zstd")}


def make_mw(**settings) -> HeadOnlyMiddleware:
    crawler = get_crawler(settings_dict={"RETRY_TIMES": 1, **settings})
    crawler.stats.open_spider()
    crawler.spider = crawler._create_spider("s")
    return HeadOnlyMiddleware.from_crawler(crawler)


def flagged(url: str = "http://shop/product/x-1") -> Request:
    return Request(url, meta={"plt_head_until": "</main>"})


def response(request: Request, body: bytes, encoding: bytes | None = b"gzip", **kw) -> HtmlResponse:
    headers = {"Content-Encoding": encoding} if encoding else {}
    return HtmlResponse(request.url, body=body, headers=headers, request=request, **kw)


@pytest.mark.parametrize("encoding", list(ENCODE))
def test_flagged_response_is_trimmed_and_counted(encoding):
    mw = make_mw()
    request = flagged()
    wire = ENCODE[encoding](PAGE)
    out = mw.process_response(request, response(request, wire, encoding))
    assert out.body == HEAD
    assert b"Content-Encoding" not in out.headers
    assert "head" in out.flags
    stats = mw.stats
    assert stats.get_value("plt/bytes/wire") == len(wire)
    assert stats.get_value("plt/bytes/decoded") == len(HEAD)
    assert 0 < stats.get_value("plt/bytes/skipped") < len(wire)


def test_identity_response_is_trimmed():
    mw = make_mw()
    request = flagged()
    assert mw.process_response(request, response(request, PAGE, None)).body == HEAD


def test_unflagged_response_is_decoded_whole_and_plain_passes_untouched():
    mw = make_mw()
    plain = Request("http://shop/products?page=1")
    out = mw.process_response(plain, response(plain, brotli.compress(b"<ul>listing</ul>"), b"br"))
    assert out.body == b"<ul>listing</ul>"
    assert b"Content-Encoding" not in out.headers
    untouched = response(plain, b"<ul/>", None)
    assert mw.process_response(plain, untouched) is untouched


def test_error_response_of_a_flagged_request_is_decoded_whole():
    mw = make_mw()
    request = flagged()
    not_found = response(request, gzip.compress(b"gone</main>more"), status=404)
    assert mw.process_response(request, not_found).body == b"gone</main>more"


def test_unknown_encoding_is_left_to_scrapy():
    mw = make_mw()
    request = flagged()
    resp = response(request, b"\x00\x01", b"compress")
    assert mw.process_response(request, resp) is resp


def test_too_large_by_what_is_decoded():
    mw = make_mw(DOWNLOAD_MAXSIZE=100_000)
    request = flagged()
    body = gzip.compress(PAGE.replace(b"</main>", b"</nope>"))
    with pytest.raises(ResponseTooLarge, match="DOWNLOAD_MAXSIZE"):
        mw.process_response(request, response(request, body))


def test_truncated_body_is_retried_then_kept_as_a_failure_that_may_pass():
    mw = make_mw()
    request = flagged()
    cut = gzip.compress(PAGE)[:20]
    retry = mw.process_response(request, response(request, cut))
    assert isinstance(retry, Request) and retry.meta["retry_times"] == 1
    with pytest.raises(IncompleteBody, match="before its end"):
        mw.process_response(retry, response(retry, cut))
    assert mw.stats.get_value("plt/decode/incomplete") == 2


def test_mislabelled_body_is_read_as_what_it_is():
    mw = make_mw()
    request = flagged()
    out = mw.process_response(request, response(request, PAGE, b"gzip"))
    assert out.body == HEAD
    assert mw.stats.get_value("plt/decode/mislabelled") == 1


def headers(encoding: bytes, length: int) -> Headers:
    return Headers({"Content-Encoding": encoding, "Content-Length": str(length)})


@pytest.mark.parametrize("encoding", list(ENCODE))
def test_download_stops_once_the_marker_arrived(encoding):
    mw = make_mw()
    request = flagged()
    wire = ENCODE[encoding](PAGE)
    mw.headers_received(headers(encoding, len(wire)), len(wire), request, None)
    received = b""
    with pytest.raises(StopDownload) as stop:
        for i in range(0, len(wire), 1000):
            received += wire[i : i + 1000]
            mw.bytes_received(wire[i : i + 1000], request, None)
    assert stop.value.fail is False
    resp = response(request, received, encoding, flags=["download_stopped"])
    resp.headers[b"Content-Length"] = str(len(wire)).encode()
    assert mw.process_response(request, resp).body == HEAD
    assert mw.stats.get_value("plt/bytes/not_transferred") == len(wire) - len(received)
    assert mw.stats.get_value("plt/head/stopped") == 1


def test_without_stopping_the_stream_is_still_decoded_as_it_arrives():
    mw = make_mw(PLT_HEAD_STOP_TRANSFER=False)
    request = flagged()
    wire = gzip.compress(PAGE)
    mw.headers_received(headers(b"gzip", len(wire)), len(wire), request, None)
    for i in range(0, len(wire), 1000):
        mw.bytes_received(wire[i : i + 1000], request, None)
    assert mw.process_response(request, response(request, wire)).body == HEAD


def test_streamed_mislabelled_body_is_read_as_what_it_is():
    mw = make_mw()
    request = flagged()
    mw.headers_received(headers(b"gzip", len(PAGE)), len(PAGE), request, None)
    with pytest.raises(StopDownload):
        mw.bytes_received(PAGE[:1000], request, None)  # plain text, labelled gzip
    assert mw.process_response(request, response(request, PAGE[:1000])).body == HEAD
    assert mw.stats.get_value("plt/decode/mislabelled") == 1


def test_an_error_page_that_showed_the_marker_is_read_as_received():
    # A withdrawn product's 404 in the site's template: ended at </main>, still a 404.
    mw = make_mw()
    request = flagged()
    wire = gzip.compress(PAGE)
    mw.headers_received(headers(b"gzip", len(wire)), len(wire), request, None)
    with pytest.raises(StopDownload):
        mw.bytes_received(wire[:2000], request, None)
    out = mw.process_response(request, response(request, wire[:2000], status=404))
    assert (out.status, out.body) == (404, HEAD)


def test_stream_too_large_stops_the_download_and_fails():
    mw = make_mw(DOWNLOAD_MAXSIZE=100_000)
    request = flagged()
    wire = gzip.compress(PAGE.replace(b"</main>", b"</nope>"))
    mw.headers_received(headers(b"gzip", len(wire)), len(wire), request, None)
    with pytest.raises(StopDownload):
        for i in range(0, len(wire), 10_000):
            mw.bytes_received(wire[i : i + 10_000], request, None)
    with pytest.raises(ResponseTooLarge):
        mw.process_response(request, response(request, wire[: i + 10_000]))


def test_accept_encoding_asks_only_for_what_can_be_trimmed():
    mw = make_mw()
    request = Request("http://shop/")
    request.headers[b"Accept-Encoding"] = SCRAPY_ACCEPT_ENCODING
    mw.process_request(request)
    assert request.headers[b"Accept-Encoding"] == b"gzip, deflate, br, zstd"
    own = Request("http://shop/", headers={"Accept-Encoding": "gzip"})
    mw.process_request(own)
    assert own.headers[b"Accept-Encoding"] == b"gzip"


def test_disabled():
    with pytest.raises(NotConfigured):
        make_mw(PLT_HEAD_ONLY_ENABLED=False)


def test_a_page_whose_transfer_may_be_stopped_asks_for_its_own_connection():
    # A stopped download closes its connection: it must never go back to the pool.
    request = flagged()
    make_mw().process_request(request)
    assert request.headers[b"Connection"] == b"close"
    listing, kept = Request("http://shop/products?page=1"), flagged()
    make_mw().process_request(listing)
    make_mw(PLT_HEAD_STOP_TRANSFER=False).process_request(kept)
    assert b"Connection" not in listing.headers and b"Connection" not in kept.headers


def test_decoded_text_takes_its_charset_from_the_page_not_the_compressed_bytes():
    mw = make_mw()
    page = '<html><head><meta charset="utf-8"></head><main>Café</main>'.encode()
    for encoding in ENCODE:
        request = flagged()
        resp = HtmlResponse(
            request.url,
            body=ENCODE[encoding](page),
            headers={"Content-Encoding": encoding, "Content-Type": "text/html"},
            request=request,
        )
        out = mw.process_response(request, resp)
        assert "Café" in out.text and out.encoding == "utf-8"


def test_empty_bodies_pass_untouched_and_are_never_streamed():
    mw = make_mw()
    request = flagged()
    mw.headers_received(headers(b"gzip", 0), 0, request, None)
    assert not mw._streams
    for status in (200, 204, 304, 404):
        resp = response(request, b"", status=status)
        assert mw.process_response(request, resp) is resp
    head = Request("http://shop/product/x-1", method="HEAD", meta={"plt_head_until": "</main>"})
    mw.headers_received(headers(b"gzip", 100), 100, head, None)
    assert not mw._streams


def test_a_page_without_its_marker_is_not_held_while_it_downloads():
    mw = make_mw(PLT_HEAD_STREAM_MAX_BYTES=100_000)
    request = flagged()
    page = PAGE.replace(b"</main>", b"</nope>")
    wire = gzip.compress(page)
    mw.headers_received(headers(b"gzip", len(wire)), len(wire), request, None)
    for i in range(0, len(wire), 20_000):
        mw.bytes_received(wire[i : i + 20_000], request, None)
    assert mw._streams[request] is None  # dropped past the cap
    assert mw.process_response(request, response(request, wire)).body == page


def test_retries_follow_retry_enabled_and_dont_retry():
    cut = gzip.compress(PAGE)[:20]
    no_retry = flagged()
    no_retry.meta["dont_retry"] = True
    for mw, request in ((make_mw(RETRY_ENABLED=False), flagged()), (make_mw(), no_retry)):
        with pytest.raises(IncompleteBody):
            mw.process_response(request, response(request, cut))


def test_several_content_encodings_are_left_to_scrapy():
    mw = make_mw()
    request = flagged()
    resp = HtmlResponse(
        request.url,
        body=brotli.compress(gzip.compress(PAGE)),
        headers=Headers({"Content-Encoding": ["gzip", "br"]}),
        request=request,
    )
    assert mw.process_response(request, resp) is resp


def test_warnsize_from_meta_is_counted():
    mw = make_mw()
    request = Request("http://shop/x", meta={"download_warnsize": 1000})
    mw.process_response(request, response(request, gzip.compress(PAGE)))
    assert mw.stats.get_value("plt/decode/over_warnsize") == 1


def test_unlabelled_compressed_listing_is_decoded():
    mw = make_mw()
    request = Request("http://shop/products?page=1")
    out = mw.process_response(request, response(request, gzip.compress(b"<ul>x</ul>"), None))
    assert out.body == b"<ul>x</ul>"


def test_with_compression_disabled_nothing_is_asked_for():
    mw = make_mw(COMPRESSION_ENABLED=False)
    request = Request("http://shop/")
    mw.process_request(request)
    assert b"Accept-Encoding" not in request.headers


def test_without_brotli_the_request_does_not_ask_for_br(monkeypatch):
    monkeypatch.setattr("plt.codecs.brotli", None)
    mw = make_mw()
    request = Request("http://shop/")
    mw.process_request(request)
    assert request.headers[b"Accept-Encoding"] == b"gzip, deflate, zstd"


# -- end to end, against the demo retailer ------------------------------------

CUT_AND_MISLABELLED = dataclasses.replace(
    FAULTY_SHOP, products=120, encodings="br", truncated_rate=0.2, mislabelled_rate=0.1
)


@pytest.fixture(scope="module")
def faulty_br_shop(tmp_path_factory):
    with ShopProcess(CUT_AND_MISLABELLED) as process:
        truth = process.write_ground_truth(tmp_path_factory.mktemp("truth") / "truth.jsonl")
        yield process, read_items(truth)


def test_cut_bodies_are_retried_and_mislabelled_ones_read(faulty_br_shop, tmp_path):
    process, truth = faulty_br_shop
    proc = run_crawl(tmp_path, process.url)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = compare(read_items(tmp_path / "items.jsonl"), truth)
    assert result.exact, result.summary()
    (stats,) = runs(tmp_path)
    assert stats["plt/decode/incomplete"] > 0
    assert stats["plt/decode/mislabelled"] > 0
    assert stats.get("plt/product/too_large", 0) == 0
    assert stats["plt/head/stopped"] > 0


def test_a_cut_body_that_outlasts_the_retries_is_fetched_by_the_next_run(tmp_path):
    # No other fault: with no retries, only the cut bodies may fail.
    config = dataclasses.replace(
        CUT_AND_MISLABELLED.without_faults(), products=30, truncated_rate=0.2
    )
    with ShopProcess(config) as process:
        truth = read_items(process.write_ground_truth(tmp_path / "truth.jsonl"))
        jobdir = tmp_path / "job"
        first = run_crawl(jobdir, process.url, "RETRY_TIMES=0")
        assert first.returncode == 3, first.stderr[-3000:]
        second = run_crawl(jobdir, process.url, "RETRY_TIMES=0")
    assert second.returncode == 0, second.stderr[-3000:]
    result = compare(read_items(jobdir / "items.jsonl"), truth)
    assert result.exact, result.summary()
    assert runs(jobdir)[0]["plt/decode/incomplete"] > 0


@pytest.mark.parametrize("stop", ["True", "False"], ids=["stop", "whole"])
def test_peak_memory_on_br_and_zstd_stays_near_gzip(tmp_path, stop):
    """Whole 1.5 MB pages, 16 at a time: br and zstd are trimmed like gzip."""
    peaks = {}
    for encoding in ("gzip", "br", "zstd"):
        config = ShopConfig(products=240, seed=3, encodings=encoding).without_faults()
        with ShopProcess(config) as process:
            jobdir = tmp_path / encoding
            proc = run_crawl(
                jobdir,
                process.url,
                "CONCURRENT_REQUESTS=16",
                "CONCURRENT_REQUESTS_PER_DOMAIN=16",
                f"PLT_HEAD_STOP_TRANSFER={stop}",
            )
        assert proc.returncode == 0, proc.stderr[-3000:]
        (stats,) = runs(jobdir)
        assert stats["plt/bytes/decoded"] < 240 * 3_000  # the product blocks only
        # The kernel's peak (ru_maxrss), not a sampled one: no spike can slip by.
        peaks[encoding] = json.loads((jobdir / "memory-report.json").read_text())["ru_maxrss_mb"]
    # Generous: one page decoded whole per request would add 16 x 1.5 MB and more.
    for encoding in ("br", "zstd"):
        assert peaks[encoding] < peaks["gzip"] * 1.25, peaks
