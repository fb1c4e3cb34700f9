"""Pure extraction functions for the retailer's three page kinds.

They take bytes or text and return plain data, so the spider stays thin and
each rule of the retailer contract is unit-tested without a crawl.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import ujson
from parsel import Selector

PER_PAGE = 48
_NUMBER = re.compile(r"[\d,]+(?:\.\d+)?")


class StockError(ValueError):
    """The stock answer cannot give `subProducts`; `kind` names why, for the stats."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class ListingPage:
    total: int | None
    product_urls: list[str]
    product_ids: list[int]
    has_next: bool


def parse_number(text: str | None) -> float | None:
    """`'£1,049.99'` → `1049.99`; None when there is no number."""
    if not text:
        return None
    match = _NUMBER.search(text)
    if match is None:
        return None
    return float(match.group().replace(",", ""))


def page_count(total: int, per_page: int = PER_PAGE) -> int:
    return max(1, math.ceil(total / per_page))


def parse_listing(selector: Selector) -> ListingPage:
    total_text = selector.css("span.total-count::text").get()
    total = parse_number(total_text)
    urls: list[str] = []
    ids: list[int] = []
    for tile in selector.css("li.product-tile"):
        href = tile.css("a.product-link::attr(href)").get()
        product_id = tile.attrib.get("data-product-id")
        if href and product_id and product_id.isdigit():
            urls.append(href)
            ids.append(int(product_id))
    has_next = bool(selector.css("nav.pagination a.next"))
    return ListingPage(
        total=int(total) if total is not None else None,
        product_urls=urls,
        product_ids=ids,
        has_next=has_next,
    )


def _int_or_none(value: str | None) -> int | None:
    value = (value or "").strip()
    return int(value) if value.isdigit() else None


def parse_product(selector: Selector, url: str) -> dict[str, Any] | None:
    """The item's product-page fields, or None when the page has no product block."""
    main = selector.css("main.product")
    if not main:
        return None
    main = main[0]
    product_id = _int_or_none(main.attrib.get("data-product-id"))
    if product_id is None:
        return None
    sold_out = bool(main.css("div.prices .sold-out"))
    return {
        "product_id": product_id,
        "url": url,
        "name": (main.css("h1.product-name::text").get() or "").strip(),
        "active_col_num": _int_or_none(main.attrib.get("data-active-col-num")),
        "all_col_nums": [
            int(c) for c in main.css("li.colour::attr(data-col-num)").getall() if c.isdigit()
        ],
        "old_price": parse_number(main.css("span.price-was::text").get()),
        "current_price": None if sold_out else parse_number(main.css("span.price-now::text").get()),
        "currency": "GBP",
        "image_urls_full": main.css("img.gallery-image::attr(data-full)").getall(),
    }


def stock_col_num(product: dict[str, Any]) -> int | None:
    """The colour whose stock is looked up: the active one, else the first listed."""
    if product["active_col_num"] is not None:
        return product["active_col_num"]
    colours = product["all_col_nums"]
    return colours[0] if colours else None


def parse_stock(body: bytes) -> list[Any]:
    try:
        data = ujson.loads(body)
    except ValueError as exc:
        raise StockError("invalid_json", f"stock answer is not JSON: {exc}") from None
    sub_products = data.get("subProducts") if isinstance(data, dict) else None
    if not isinstance(sub_products, list):
        raise StockError("no_subproducts", "stock answer has no subProducts list")
    return sub_products
