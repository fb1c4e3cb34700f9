from __future__ import annotations

import pytest
from parsel import Selector

from plt.parsing import (
    StockError,
    page_count,
    parse_listing,
    parse_number,
    parse_product,
    parse_stock,
    stock_col_num,
)
from tests.conftest import data_file


def selector(name: str) -> Selector:
    return Selector(text=data_file(name).decode())


@pytest.mark.parametrize(
    ("text", "expected"),
    [("£29.99", 29.99), ("£1,049.99", 1049.99), ("20,103", 20103.0), ("", None), (None, None)],
)
def test_parse_number(text, expected):
    assert parse_number(text) == expected


def test_page_count():
    assert page_count(20_103) == 419
    assert page_count(48) == 1
    assert page_count(49) == 2
    assert page_count(0) == 1


def test_listing_first_page():
    listing = parse_listing(selector("listing-1.html"))
    assert listing.total == 20_103
    assert listing.product_ids == [17, 23]
    assert listing.product_urls == ["/product/denim-slim-ankle-17", "/product/linen-shirt-23"]
    assert listing.has_next


def test_listing_last_page_has_no_next():
    assert not parse_listing(selector("listing-last.html")).has_next


def test_product_fields():
    fields = parse_product(selector("product-17.html"), "http://shop/product/denim-slim-ankle-17")
    assert fields == {
        "product_id": 17,
        "url": "http://shop/product/denim-slim-ankle-17",
        "name": "Denim Slim Ankle",
        "active_col_num": 100170,
        "all_col_nums": [100170, 100171],
        "old_price": 1049.99,
        "current_price": 749.99,
        "currency": "GBP",
        "image_urls_full": [
            "https://img.example/17/0_full.jpg",
            "https://img.example/17/1_full.jpg",
        ],
    }
    assert stock_col_num(fields) == 100170


def test_sold_out_without_active_colour_uses_first_colour():
    fields = parse_product(selector("product-sold-out-no-active.html"), "u")
    assert fields["current_price"] is None
    assert fields["old_price"] is None
    assert fields["active_col_num"] is None
    assert fields["image_urls_full"] == []
    assert stock_col_num(fields) == 100990


def test_page_without_product_block():
    assert parse_product(Selector(text="<html><body>gone</body></html>"), "u") is None


def test_stock_sub_products():
    stock = parse_stock(data_file("stock-100170.json"))
    assert [s["sku"] for s in stock] == ["100170-S", "100170-M"]


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (b'{"colNum": 1, "subPro', "invalid_json"),
        (b'{"colNum": 1}', "no_subproducts"),
        (b"[1, 2]", "no_subproducts"),
        (b'{"subProducts": null}', "no_subproducts"),
    ],
)
def test_stock_errors(body, kind):
    with pytest.raises(StockError) as info:
        parse_stock(body)
    assert info.value.kind == kind
