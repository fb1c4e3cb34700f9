"""Tests of the demo retailer (plt.shop): it must serve the retailer contract exactly."""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import json
import ssl
import urllib.error
import urllib.request
import zlib
from typing import Any

import brotli
import pytest
from parsel import Selector

from plt.codecs import zstd
from plt.decoding import IncompleteBody, decode
from plt.shop.catalog import Catalog, ShopConfig
from plt.shop.cli import add_shop_arguments, config_from_args, config_to_argv
from plt.shop.pages import (
    PREFIX_BYTES,
    PageBody,
    brotli_raw_header,
    format_price,
    render_product_prefix,
)
from plt.shop.process import ShopProcess, ShopProcessError
from plt.shop.truth import expected_counts, expected_item, expected_items
from tests.conftest import FAULTY_SHOP
from tests.helpers import fetch, find

# The end-to-end tests' faulty shop, smaller: 200 products show every case.
SMALL = dataclasses.replace(FAULTY_SHOP, products=200, page_bytes=20_000, sold_out_rate=0.08)


def fetch_retrying(url: str, encoding: str | None = None) -> tuple[int, dict[str, str], bytes]:
    status, headers, body = fetch(url, encoding)
    if status == 503:
        status, headers, body = fetch(url, encoding)
    return status, headers, body


def parse_price(text: str | None) -> float | None:
    return None if text is None else float(text.strip().lstrip("£").replace(",", ""))


def parse_product(body: bytes, url: str) -> dict[str, Any]:
    """The contract's item fields (without stock and date), as a crawler reads them."""
    main = Selector(text=body.decode()).css("main.product")
    active = main.attrib.get("data-active-col-num")
    return {
        "product_id": int(main.attrib["data-product-id"]),
        "url": url,
        "name": main.css("h1.product-name::text").get(),
        "active_col_num": int(active) if active else None,
        "all_col_nums": [int(c) for c in main.css("li.colour::attr(data-col-num)").getall()],
        "old_price": parse_price(main.css("div.prices span.price-was::text").get()),
        "current_price": parse_price(main.css("div.prices span.price-now::text").get()),
        "currency": "GBP",  # every price on the site is in pounds
        "image_urls_full": main.css("img.gallery-image::attr(data-full)").getall(),
    }


def stock_list(body: bytes) -> list[dict[str, Any]] | None:
    try:
        return json.loads(body)["subProducts"]
    except (ValueError, KeyError):
        return None


@pytest.fixture(scope="module")
def shop() -> Any:
    with ShopProcess(SMALL) as process:
        yield process


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog(SMALL)


def test_config_validation_and_no_faults() -> None:
    with pytest.raises(ValueError):
        ShopConfig(products=-1)
    with pytest.raises(ValueError):
        ShopConfig(bad_stock_rate=1.5)
    with pytest.raises(ValueError):
        ShopConfig(per_page=0)
    clean = SMALL.without_faults()
    assert clean.transient_error_rate == clean.withdrawn_rate == clean.bad_stock_rate == 0
    assert clean.missing_active_rate == clean.no_subproducts_rate == 0
    assert (clean.sold_out_rate, clean.discount_rate) == (SMALL.sold_out_rate, SMALL.discount_rate)


def test_cli_options_round_trip() -> None:
    parser = argparse.ArgumentParser()
    add_shop_arguments(parser)
    config = dataclasses.replace(SMALL, seed=-3, latency_ms=2.5)
    assert config_from_args(parser.parse_args(config_to_argv(config))) == config
    opts = parser.parse_args([*config_to_argv(config), "--no-faults"])
    assert config_from_args(opts) == config.without_faults()
    for bad in (["--products", "-1"], ["--withdrawn-rate", "2"], ["--host", "10.1.2.3"]):
        with pytest.raises(SystemExit):
            parser.parse_args(bad)


def test_determinism_and_ids(catalog: Catalog) -> None:
    items = list(expected_items(catalog, "http://x"))
    assert items == list(expected_items(Catalog(SMALL), "http://x"))
    other = list(expected_items(Catalog(dataclasses.replace(SMALL, seed=8)), "http://x"))
    assert items != other
    ids = [p.product_id for p in catalog.products()]
    assert ids == sorted(set(ids)) and ids != list(range(1, len(ids) + 1))
    cols = [c for p in catalog.products() for c in p.col_nums]
    assert len(cols) == len(set(cols))
    for product in catalog.products():
        assert product.slug.endswith(f"-{product.product_id}")
        assert catalog.product_by_id(product.product_id) == product
        assert all(catalog.product_by_col_num(c) == product for c in product.col_nums)
    assert catalog.product_by_id(ids[-1] + 1000) is None


def test_small_shop_covers_every_case(catalog: Catalog) -> None:
    summary = expected_counts(catalog)
    assert summary["listed"] == 200 and summary["listing_pages"] == 5
    for key in ("withdrawn", "sold_out", "discounted", "missing_active"):
        assert summary[key] > 0, key
    assert summary["stock_bad_json"] > 0 and summary["stock_no_subproducts"] > 0
    assert any(p.price_cents >= 100_000 for p in catalog.products())
    assert format_price(104_999) == "&pound;1,049.99" and format_price(2_999) == "&pound;29.99"


def test_listing_pages(shop: ShopProcess, catalog: Catalog) -> None:
    seen = []
    for page in range(1, 6):
        status, _, body = fetch_retrying(f"{shop.url}/products?page={page}")
        assert status == 200
        sel = Selector(text=body.decode())
        assert sel.css("p.results span.total-count::text").get() == "200"
        tiles = sel.css("ul.product-grid li.product-tile")
        assert len(tiles) == (48 if page < 5 else 8)
        for tile in tiles:
            pid = int(tile.attrib["data-product-id"])
            href = tile.css("a.product-link::attr(href)").get()
            assert href == catalog.product_by_id(pid).path
            assert tile.css("span.price::text").get()
            seen.append(pid)
        next_href = sel.css("a.next::attr(href)").get()
        assert next_href == (f"/products?page={page + 1}" if page < 5 else None)
    assert seen == [p.product_id for p in catalog.products()]  # withdrawn ones included
    for bad in ("6", "0", "-1", "abc", "01", "2.0"):
        assert fetch(f"{shop.url}/products?page={bad}")[0] == 404, bad


def test_product_page_shape(shop: ShopProcess, catalog: Catalog) -> None:
    product = next(
        p for p in catalog.products() if p.old_price_cents and not p.withdrawn and not p.sold_out
    )
    status, headers, body = fetch_retrying(shop.url + product.path)
    assert status == 200 and "Content-Encoding" not in headers
    assert int(headers["Content-Length"]) == len(body)
    assert abs(len(body) - SMALL.page_bytes) < 0.05 * SMALL.page_bytes
    prefix, _, bulk = body.partition(b"</main>")
    assert b'<span class="price-now">&pound;' in prefix
    assert bulk and b'<script type="application/json"' in bulk and b"review" in bulk
    sel = Selector(text=body.decode())
    assert sel.css('link[rel="canonical"]::attr(href)').get() == product.path
    item = parse_product(body, shop.url + product.path)
    assert item == {k: v for k, v in expected_item(catalog, product, shop.url).items() if k in item}
    assert item["old_price"] > item["current_price"]
    sold_out = find(catalog, withdrawn=False, sold_out=True)
    status, _, body = fetch_retrying(shop.url + sold_out.path)
    main = Selector(text=body.decode()).css("main.product")
    assert main.css("span.sold-out::text").get() == "Sold out" and not main.css(".price-now")
    missing = find(catalog, withdrawn=False, show_active=False)
    status, _, body = fetch_retrying(shop.url + missing.path)
    assert status == 200 and b"data-active-col-num" not in body
    # Only the trailing id matters; unknown ids are 404.
    assert fetch_retrying(f"{shop.url}/product/anything-{product.product_id}")[0] == 200
    for path in ("/product/x-999999", f"/product/{product.product_id}", "/product/x-0", "/nope"):
        assert fetch(shop.url + path)[0] == 404, path


def test_gzip_member(shop: ShopProcess, catalog: Catalog) -> None:
    product = find(catalog, withdrawn=False)
    _, _, identity = fetch_retrying(shop.url + product.path)
    status, headers, wire = fetch_retrying(shop.url + product.path, "gzip, deflate")
    assert status == 200 and headers["Content-Encoding"] == "gzip"
    assert int(headers["Content-Length"]) == len(wire) < len(identity)
    assert gzip.decompress(wire) == identity
    stream = zlib.decompressobj(wbits=47)
    assert stream.decompress(wire) == identity and stream.eof and not stream.unused_data


def test_page_body_concatenation() -> None:
    body = PageBody.build(50_000, 3)
    for product in Catalog(SMALL).products():
        prefix = render_product_prefix(product)
        assert gzip.decompress(b"".join(body.gzip(prefix))) == body.pad(prefix) + body.bulk
        assert body.crc32(prefix) == zlib.crc32(prefix + body.bulk)


def test_stock_api(shop: ShopProcess, catalog: Catalog) -> None:
    product = find(catalog, stock_mode="ok", sold_out=False)
    for col in product.col_nums:
        status, headers, body = fetch_retrying(f"{shop.url}/api/stock/{col}")
        doc = json.loads(body)
        assert status == 200 and headers["Content-Type"].startswith("application/json")
        assert doc["colNum"] == col and len(doc) > 2
        assert doc["subProducts"] == catalog.sub_products(product, col)
        for entry in doc["subProducts"]:
            assert set(entry) == {"sku", "size", "stockLevel", "price"}
    bad = find(catalog, stock_mode="bad")
    status, _, body = fetch_retrying(f"{shop.url}/api/stock/{bad.col_nums[-1]}")
    assert status == 200 and stock_list(body) is None
    with pytest.raises(ValueError):
        json.loads(body)
    none = find(catalog, stock_mode="none")
    status, _, body = fetch_retrying(f"{shop.url}/api/stock/{none.col_nums[0]}")
    assert status == 200 and "subProducts" not in json.loads(body)
    one_colour = next(p for p in catalog.products() if len(p.col_nums) == 1)
    for col in (one_colour.col_nums[0] + 1, 5, 99_999_999, "abc"):
        assert fetch(f"{shop.url}/api/stock/{col}")[0] == 404, col


def test_transient_errors_and_stats() -> None:
    config = ShopConfig(products=60, page_bytes=5_000, transient_error_rate=1.0, withdrawn_rate=0)
    catalog = Catalog(config)
    product = catalog.product_at(3)
    with ShopProcess(config) as shop:
        for path in ("/products?page=2", product.path, f"/api/stock/{product.col_nums[0]}"):
            assert [fetch(shop.url + path)[0] for _ in range(3)] == [503, 200, 200], path
        stats = shop.stats()
    assert stats["transient_503"] == 3 and stats["error"] == 3
    assert stats["listing"] == stats["product"] == stats["stock"] == 2
    assert stats["listing_refetches"] == stats["product_refetches"] == 1
    assert stats["requests"] == 9


def test_full_crawl_matches_ground_truth(tmp_path: Any) -> None:
    catalog = Catalog(SMALL)
    with ShopProcess(SMALL) as shop:
        items, first_statuses, next_url = [], {}, f"{shop.url}/products?page=1"
        while next_url:
            status, _, body = fetch_retrying(next_url)
            sel = Selector(text=body.decode())
            links = sel.css("a.product-link::attr(href)").getall()
            for href in links:
                first_statuses[href] = fetch(shop.url + href)[0]
                status, _, page = fetch_retrying(shop.url + href)
                if status == 404:
                    continue
                item = parse_product(page, shop.url + href)
                col = item["active_col_num"] or item["all_col_nums"][0]
                item["stock_jsons"] = stock_list(fetch_retrying(f"{shop.url}/api/stock/{col}")[2])
                items.append(item)
            nxt = sel.css("a.next::attr(href)").get()
            next_url = shop.url + nxt if nxt else None
        stats = shop.stats()
        truth_file = shop.write_ground_truth(tmp_path / "truth.jsonl")
        expected = list(expected_items(catalog, shop.url))
    truth = [json.loads(line) for line in truth_file.read_text().splitlines()]
    assert truth == expected
    assert sorted(items, key=lambda i: i["product_id"]) == expected
    assert any(i["active_col_num"] is None for i in expected)
    assert any(i["stock_jsons"] is None for i in expected)
    # A transient URL fails exactly once, whatever the order of requests.
    for product in catalog.products():
        transient = catalog.is_transient("product", product.product_id)
        assert first_statuses[product.path] == (
            503 if transient else 404 if product.withdrawn else 200
        )
    retried = sum(
        catalog.is_transient("product", p.product_id) for p in catalog.products() if not p.withdrawn
    )
    assert stats["product"] == len(expected) * 2 - retried


def test_default_size_shop() -> None:
    config = ShopConfig()
    with ShopProcess(config) as shop:
        _, _, body = fetch_retrying(f"{shop.url}/products?page=419")
        sel = Selector(text=body.decode())
        assert sel.css("span.total-count::text").get() == "20,103"
        assert len(sel.css("li.product-tile")) == 20103 - 418 * 48 and not sel.css("a.next")
        assert fetch(f"{shop.url}/products?page=420")[0] == 404
        product = find(Catalog(config), withdrawn=False)
        _, _, identity = fetch_retrying(shop.url + product.path)
        _, headers, wire = fetch_retrying(shop.url + product.path, "gzip")
    assert abs(len(identity) - 1_500_000) < 15_000
    assert headers["Content-Encoding"] == "gzip" and 0.2 < len(wire) / len(identity) < 0.4
    assert gzip.decompress(wire) == identity
    stream = zlib.decompressobj(wbits=47)
    assert stream.decompress(wire) == identity and stream.eof


def test_start_failure_reports_stderr() -> None:
    with pytest.raises(ShopProcessError, match="not a loopback address"):
        ShopProcess(SMALL, host="10.1.2.3").start()


def test_page_body_encodings_decode_to_the_page() -> None:
    body = PageBody.build(50_000, 3)
    for product in Catalog(SMALL).products():
        prefix = render_product_prefix(product)
        page = body.pad(prefix) + body.bulk
        assert page.startswith(prefix) and len(body.pad(prefix)) == PREFIX_BYTES
        assert b"".join(body.identity(prefix)) == page
        assert zlib.decompress(b"".join(body.deflate(prefix))) == page
        assert zstd.decompress(b"".join(body.zstd(prefix))) == page
        raw, tail = body.brotli(prefix)  # the block raw, the bulk compressed once
        assert tail is body.bulk_brotli and brotli.decompress(raw + tail) == page


def test_brotli_raw_header_and_a_block_too_long_to_pad() -> None:
    assert brotli.decompress(brotli_raw_header(5) + b"hello" + b"\x03") == b"hello"
    body = PageBody.build(50_000, 3)
    long_prefix = b"<main>" + b"x" * PREFIX_BYTES + b"</main>\n"
    assert body.pad(long_prefix) == long_prefix
    (whole,) = body.brotli(long_prefix)  # compressed per response instead
    assert brotli.decompress(whole) == long_prefix + body.bulk


@pytest.mark.parametrize("encoding", ["br", "zstd", "gzip", "deflate"])
def test_product_page_in_each_encoding(shop: ShopProcess, catalog: Catalog, encoding: str) -> None:
    product = find(catalog, withdrawn=False)
    _, _, identity = fetch_retrying(shop.url + product.path)
    status, headers, wire = fetch_retrying(shop.url + product.path, encoding)
    assert status == 200 and headers["Content-Encoding"] == encoding
    assert decode(wire, encoding.encode()).result() == identity


def test_a_cdn_prefers_br(shop: ShopProcess, catalog: Catalog) -> None:
    product = find(catalog, withdrawn=False)
    _, headers, _ = fetch_retrying(shop.url + product.path, "gzip, deflate, br, zstd")
    assert headers["Content-Encoding"] == "br"


def test_truncated_first_answer_and_mislabelled_pages() -> None:
    config = ShopConfig(products=10, page_bytes=20_000, truncated_rate=1.0, withdrawn_rate=0)
    product = Catalog(config).product_at(0)
    with ShopProcess(config) as shop:
        _, headers, cut = fetch(shop.url + product.path, "gzip")
        _, _, whole = fetch(shop.url + product.path, "gzip")
        stats = shop.stats()
    assert int(headers["Content-Length"]) == len(cut) <= 100
    with pytest.raises(IncompleteBody):
        decode(cut, b"gzip", b"</main>")
    assert decode(whole, b"gzip", b"</main>").found
    assert stats["truncated"] == 1
    config = ShopConfig(products=10, page_bytes=20_000, mislabelled_rate=1.0, withdrawn_rate=0)
    with ShopProcess(config) as shop:
        _, headers, body = fetch(shop.url + product.path, "gzip")
    assert headers["Content-Encoding"] == "gzip" and body.startswith(b"<!DOCTYPE html>")


def test_https_and_a_paced_page_arrive_whole() -> None:
    config = ShopConfig(products=10, page_bytes=20_000, tls=True, bandwidth_kbit=100_000.0)
    product = Catalog(config).product_at(1)
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
    )
    with ShopProcess(config) as shop:
        assert shop.url.startswith("https://127.0.0.1:")
        with opener.open(shop.url + product.path, timeout=30) as response:
            body = response.read()
        peer = ssl.get_server_certificate(("127.0.0.1", int(shop.url.rsplit(":", 1)[1])))
    assert body.startswith(b"<!DOCTYPE html>") and len(body) > 15_000
    assert "BEGIN CERTIFICATE" in peer


def test_unknown_encoding_option_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown"):
        ShopConfig(encodings="gzip,lzma")
    parser = argparse.ArgumentParser()
    add_shop_arguments(parser)
    with pytest.raises(SystemExit):
        parser.parse_args(["--encodings", "lzma"])
