"""The exported item: the retailer contract's fields, in the contract's order.

A product page gives every field but ``date`` (plt.parsing.parse_product) and
the stock API gives ``stock_jsons``; the spider sets ``date``.
"""

from __future__ import annotations

from typing import Any

ITEM_FIELDS = (
    "product_id",
    "url",
    "date",
    "name",
    "active_col_num",
    "all_col_nums",
    "old_price",
    "current_price",
    "currency",
    "image_urls_full",
    "stock_jsons",
)


def make_item(fields: dict[str, Any], stock: list[Any] | None) -> dict[str, Any]:
    """The exported item, fields in the contract's order."""
    item = {name: fields.get(name) for name in ITEM_FIELDS}
    item["stock_jsons"] = stock
    return item
