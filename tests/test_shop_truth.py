from __future__ import annotations

import dataclasses

import pytest

from plt.shop.catalog import Catalog
from plt.shop.truth import expected_counts, expected_failures, expected_item, expected_items
from tests.conftest import FAULTY_SHOP
from tests.helpers import find

CONFIG = dataclasses.replace(FAULTY_SHOP, products=200, sold_out_rate=0.08, forbidden_rate=0.03)
FIELDS = (
    "product_id", "url", "name", "active_col_num", "all_col_nums", "old_price",
    "current_price", "currency", "image_urls_full", "stock_jsons",
)  # fmt: skip


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog(CONFIG)


def test_an_item_has_the_contracts_fields_and_the_canonical_url(catalog: Catalog) -> None:
    product = find(catalog, sold_out=False, show_active=True, stock_mode="ok")
    item = expected_item(catalog, product, "http://127.0.0.1:8800/")
    assert tuple(item) == FIELDS  # every field but date, which the crawl sets
    assert item["url"] == f"http://127.0.0.1:8800/product/{product.slug}"
    assert item["active_col_num"] == product.active_col_num
    assert item["current_price"] == product.price_cents / 100 and item["currency"] == "GBP"
    assert item["stock_jsons"] == catalog.sub_products(product, product.active_col_num)


def test_what_a_page_does_not_show_is_none(catalog: Catalog) -> None:
    no_active = expected_item(catalog, find(catalog, show_active=False, stock_mode="ok"), "")
    assert no_active["active_col_num"] is None
    # Its stock is looked up for its first colour.
    assert no_active["stock_jsons"][0]["sku"].startswith(f"{no_active['all_col_nums'][0]}-")
    assert expected_item(catalog, find(catalog, sold_out=True), "")["current_price"] is None
    for mode in ("bad", "none"):
        assert expected_item(catalog, find(catalog, stock_mode=mode), "")["stock_jsons"] is None


def test_items_leave_out_the_withdrawn_and_the_forbidden(catalog: Catalog) -> None:
    ids = [item["product_id"] for item in expected_items(catalog, "http://x")]
    assert ids == sorted(ids)
    assert ids == [p.product_id for p in catalog.products() if catalog.is_exportable(p)]
    forbidden = [p for p in catalog.products() if catalog.is_forbidden(p)]
    assert forbidden and not {p.product_id for p in forbidden} & set(ids)
    assert any(p.withdrawn for p in catalog.products())


def test_failures_are_the_forbidden_products(catalog: Catalog) -> None:
    failures = list(expected_failures(catalog, "http://x/"))
    forbidden = [p for p in catalog.products() if catalog.is_forbidden(p)]
    assert failures == [
        {"product_id": p.product_id, "url": "http://x" + p.path, "reason": "forbidden"}
        for p in forbidden
    ]


def test_counts_add_up(catalog: Catalog) -> None:
    counts = expected_counts(catalog)
    assert counts["listed"] == 200 and counts["listing_pages"] == catalog.pages
    assert counts["withdrawn"] + counts["forbidden"] + counts["items"] == 200
    assert counts["items"] == len(list(expected_items(catalog, "http://x")))
    assert counts["forbidden"] == len(list(expected_failures(catalog, "http://x")))
