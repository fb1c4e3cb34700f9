"""A second spider for the job layer: items straight from the retailer's listing pages.

Each product tile of a listing page is one item, as the page shows it: its
``sku`` (the item id, PLT_JOB_ITEM_ID_FIELD), name, price and link. There is
no product page and no stock API, so one response yields many items whose ids
its request does not carry. Each listing page queues the next one before its
items, as in the product spider, so a page that fails never cuts off the rest.

It is not in the project's SPIDER_MODULES: the tests crawl it with
``-s SPIDER_MODULES=tests.listingspider``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import scrapy
from scrapy.exceptions import CloseSpider
from scrapy.http import Response
from scrapy.settings import BaseSettings
from twisted.python.failure import Failure

from plt.config import check_retailer
from plt.job.ledger import Ledger
from plt.parsing import PER_PAGE, page_count, parse_number

ID_FIELD = "sku"
# One request kind, so one rank; named as the product spider names its ranks.
LISTING_PRIORITY = 0


@dataclass
class ListingItem:
    """A product as a listing page shows it."""

    sku: int
    name: str
    price: float | None  # None: sold out
    url: str


class ListingSpider(scrapy.Spider):
    name = "listing"
    custom_settings = {"PLT_JOB_ITEM_ID_FIELD": ID_FIELD}

    @classmethod
    def update_settings(cls, settings: BaseSettings) -> None:
        super().update_settings(settings)
        check_retailer(settings)

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> ListingSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.ledger = Ledger.for_crawler(crawler)
        return spider

    @property
    def shop_url(self) -> str:
        return self.settings.get("SHOP_URL") or ""

    async def start(self) -> AsyncIterator[Any]:
        if not self.shop_url:
            raise CloseSpider("no_shop_url")
        # On a resumed job a duplicate, dropped: the frontier comes from the job state.
        yield self.listing_request(1)

    # -- request factories ----------------------------------------------------

    def listing_request(self, page: int, pages: int | None = None) -> scrapy.Request:
        cb_kwargs: dict[str, Any] = {"page": page}
        if pages is not None:
            cb_kwargs["pages"] = pages
        return scrapy.Request(
            urljoin(self.shop_url, f"/products?page={page}"),
            callback=self.parse_listing,
            errback=self.listing_failed,
            cb_kwargs=cb_kwargs,
            priority=LISTING_PRIORITY,
        )

    # -- callbacks --------------------------------------------------------------

    async def parse_listing(
        self, response: Response, page: int, pages: int | None = None
    ) -> AsyncIterator[Any]:
        tiles = response.css("li.product-tile")
        items = [item for tile in tiles if (item := listing_item(response, tile))]
        if pages is None:
            total = parse_number(response.css("span.total-count::text").get())
            if total is not None:
                pages = page_count(int(total), len(items) or PER_PAGE)
                self.ledger.announce(int(total), pages)
        has_next = bool(response.css("nav.pagination a.next"))
        if has_next or (pages is not None and page < pages):
            yield self.listing_request(page + 1, pages)
        self.ledger.show([item.sku for item in items])
        for item in items:
            yield item

    async def listing_failed(self, failure: Failure) -> AsyncIterator[Any]:
        """The ledger decides; a failed page never cuts off the pages after it."""
        request = failure.request
        self.ledger.failed(request, failure)
        page, pages = request.cb_kwargs.get("page"), request.cb_kwargs.get("pages")
        if isinstance(pages, int) and isinstance(page, int) and page < pages:
            yield self.listing_request(page + 1, pages)


def listing_item(response: Response, tile: Any) -> ListingItem | None:
    """A tile's item; None for a tile without an id or a link."""
    sku = tile.attrib.get("data-product-id") or ""
    href = tile.css("a.product-link::attr(href)").get()
    if not sku.isdigit() or not href:
        return None
    return ListingItem(
        sku=int(sku),
        name=(tile.css("a.product-link::text").get() or "").strip(),
        price=parse_number(tile.css("span.price::text").get()),
        url=response.urljoin(href),
    )
