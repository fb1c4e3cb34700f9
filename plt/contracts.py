"""Scrapy contracts for the product spider's callbacks.

``@shop_url`` and ``@stock_url`` resolve a path against SHOP_URL and
STOCK_API_URL, so the same contracts check the embedded demo retailer, a
``scrapy shop`` server or the real site. The others check what the built-in
contracts cannot: the memory rules of the requests a callback yields, and the
partial items kept in the job state.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urljoin

from scrapy import Request
from scrapy.contracts import Contract
from scrapy.exceptions import ContractFail
from scrapy.http import Response


class _SpiderContract(Contract):
    def __init__(self, method: Any, *args: Any) -> None:
        super().__init__(method, *args)
        self.spider = method.__self__


class ShopUrlContract(_SpiderContract):
    """``@shop_url /products?page=1``: a URL of the retailer."""

    name = "shop_url"

    def adjust_request_args(self, args: dict[str, Any]) -> dict[str, Any]:
        args["url"] = urljoin(self.spider.shop_url, self.args[0])
        return args


class StockUrlContract(_SpiderContract):
    """``@stock_url /api/stock/100170``: a URL of the stock API."""

    name = "stock_url"

    def adjust_request_args(self, args: dict[str, Any]) -> dict[str, Any]:
        args["url"] = urljoin(self.spider.stock_api_url, self.args[0])
        return args


class ListingPageContract(_SpiderContract):
    """``@listing_page``: the page's products outrank the next listing page and
    every request carries only small ids, never item data."""

    name = "listing_page"

    def post_process(self, output: list[Any]) -> None:
        requests = [r for r in output if isinstance(r, Request)]
        listings = [r for r in requests if "page" in r.cb_kwargs]
        products = [r for r in requests if "product_id" in r.cb_kwargs]
        if len(listings) != 1 or listings[0].cb_kwargs.get("pages") is None:
            raise ContractFail("expected one next-page request carrying the page count")
        if any(p.priority <= listings[0].priority for p in products):
            raise ContractFail("product requests must outrank the next listing page")
        for request in requests:
            if not all(isinstance(v, int) for v in request.cb_kwargs.values()):
                raise ContractFail(f"cb_kwargs must carry only ids: {request.cb_kwargs}")


class PendingItemContract(_SpiderContract):
    """``@pending_item``: the product page's fields wait in the job state, not
    in the stock request, which carries only ids."""

    name = "pending_item"

    def post_process(self, output: list[Any]) -> None:
        for request in output:
            product_id = request.cb_kwargs["product_id"]
            if set(request.cb_kwargs) != {"product_id", "col_num"}:
                raise ContractFail(f"stock request carries more than ids: {request.cb_kwargs}")
            fields = self.spider.job.get_pending(product_id)
            if not fields or fields["product_id"] != product_id:
                raise ContractFail(f"no partial item for product {product_id} in the job state")


class WithPendingItemContract(_SpiderContract):
    """``@with_pending_item``: before the stock callback runs, put the partial
    item its product page would have left in the job state."""

    name = "with_pending_item"

    def pre_process(self, response: Response) -> None:
        kwargs = response.request.cb_kwargs
        self.spider.job.put_pending(
            kwargs["product_id"],
            {
                "product_id": kwargs["product_id"],
                "url": urljoin(self.spider.shop_url, f"/product/p-{kwargs['product_id']}"),
                "date": self.spider.crawl_date(),
                "name": "contract check",
                "active_col_num": kwargs["col_num"],
                "all_col_nums": [kwargs["col_num"]],
                "old_price": None,
                "current_price": 1.0,
                "currency": "GBP",
                "image_urls_full": [],
            },
        )
