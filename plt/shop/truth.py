"""The demo shop's ground truth: what a correct crawl exports and gives up.

Made from the catalogue alone, never from a crawl, so that ``plt.verify`` checks
a crawl's items against an answer the crawler had no part in. ``url`` is the
canonical absolute URL: the URL of the page read (Scrapy's ``response.url``),
which is the canonical one after a non-canonical link's redirect.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from plt.shop.catalog import CURRENCY, Catalog, Product, cents_to_float


def expected_item(catalog: Catalog, product: Product, base_url: str) -> dict[str, Any]:
    """The item a correct crawl exports for a product (without ``date``)."""
    stock = None
    if product.stock_mode == "ok":
        stock = catalog.sub_products(product, product.stock_col_num)
    return {
        "product_id": product.product_id,
        "url": base_url.rstrip("/") + product.path,
        "name": product.name,
        "active_col_num": product.active_col_num if product.show_active else None,
        "all_col_nums": list(product.col_nums),
        "old_price": (
            None if product.old_price_cents is None else cents_to_float(product.old_price_cents)
        ),
        "current_price": None if product.sold_out else cents_to_float(product.price_cents),
        "currency": CURRENCY,
        "image_urls_full": product.image_urls_full,
        "stock_jsons": stock,
    }


def expected_items(catalog: Catalog, base_url: str) -> Iterator[dict[str, Any]]:
    """Items of a correct full crawl, in product id order; not the withdrawn or forbidden."""
    for product in catalog.products():
        if catalog.is_exportable(product):
            yield expected_item(catalog, product, base_url)


def expected_failures(catalog: Catalog, base_url: str) -> Iterator[dict[str, Any]]:
    """Products a correct crawl must give up (their page always answers 403), by id."""
    for product in catalog.products():
        if catalog.is_forbidden(product):
            url = base_url.rstrip("/") + product.path
            yield {"product_id": product.product_id, "url": url, "reason": "forbidden"}


def expected_counts(catalog: Catalog) -> dict[str, int]:
    """Counts a crawl's stats can be checked against (walks every product)."""
    counts = dict.fromkeys(
        ("withdrawn", "forbidden", "items", "sold_out", "discounted", "missing_active",
         "stock_bad_json", "stock_no_subproducts"),
        0,
    )  # fmt: skip
    for p in catalog.products():
        if catalog.is_forbidden(p):  # a 403 before any other answer, withdrawn or not
            counts["forbidden"] += 1
            continue
        counts["withdrawn"] += p.withdrawn
        if p.withdrawn:
            continue
        counts["items"] += 1
        counts["sold_out"] += p.sold_out
        counts["discounted"] += p.old_price_cents is not None
        counts["missing_active"] += not p.show_active
        counts["stock_bad_json"] += p.stock_mode == "bad"
        counts["stock_no_subproducts"] += p.stock_mode == "none"
    return {"listed": catalog.total_listed, "listing_pages": catalog.pages, **counts}
