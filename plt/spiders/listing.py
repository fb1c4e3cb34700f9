"""The listing chain of the product spider: one listing page at a time.

A listing page queues the next page first, then its products, and listing pages
rank below product and stock requests, so the frontier stays about one listing
page deep however large the retailer. The first page also gives the listing's
total, kept in the job for the progress of later runs, and is the crawl's check
that SHOP_URL names a retailer of the contract.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

import scrapy
from scrapy.http import Response

from plt.middlewares.redirects import SAME_QUERY_KEY
from plt.parsing import PER_PAGE, page_count, parse_listing

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

# Higher runs first: finish the products in hand before opening the next page.
LISTING_PRIORITY = 0
PRODUCT_PRIORITY = 10
STOCK_PRIORITY = 20
# Job meta: the first listing page was no listing, so the next run asks for it anew.
FIRST_LISTING_FAILED = "first_listing_failed"
# Job meta: the listing's total count.
LISTING_TOTAL_META = "listing_total"


class ListingChain:
    """A mixin of ProductSpider, which gives it the names declared here."""

    crawler: Crawler
    job: Any  # the job state
    ledger: Any
    shop_url: str
    request_failed: Callable[..., AsyncIterator[Any]]
    product_request: Callable[[str, int], scrapy.Request]
    not_a_listing: Callable[[scrapy.Request | None, str, str], None]

    def listing_request(self, page: int, pages: int | None = None) -> scrapy.Request:
        cb_kwargs: dict[str, Any] = {"page": page}
        if pages is not None:
            cb_kwargs["pages"] = pages
        return scrapy.Request(
            urljoin(self.shop_url, f"/products?page={page}"),
            callback=self.parse_listing,
            errback=self.request_failed,
            cb_kwargs=cb_kwargs,
            priority=LISTING_PRIORITY,
            meta={SAME_QUERY_KEY: True},
        )

    async def parse_listing(
        self, response: Response, page: int, pages: int | None = None
    ) -> AsyncIterator[Any]:
        """A listing page: its products, then the next page.

        @shop_url /products?page=1
        @cb_kwargs {"page": 1}
        @returns requests 49 49
        @listing_page
        """
        listing = parse_listing(response.selector)
        if page == 1:
            if listing.total is None and not listing.product_ids:
                what = f"{response.status}, no product tiles, no total count"
                self.not_a_listing(response.request, response.url, what)
            if self.job.is_open and self.job.get_meta(FIRST_LISTING_FAILED):
                self.job.set_meta(FIRST_LISTING_FAILED, False)
        if pages is None:
            if listing.total is None:
                logger.error("No total count on %s; following the next links", response.url)
                self.crawler.stats.inc_value("plt/listing/no_total")
            else:
                pages = page_count(listing.total, len(listing.product_ids) or PER_PAGE)
                self.crawler.stats.set_value("plt/products/total", listing.total)
                if self.job.is_open:  # kept for the progress of later runs
                    self.job.set_meta(LISTING_TOTAL_META, listing.total)
                self.ledger.announce(listing.total, pages)
                logger.info("%d products on %d listing pages", listing.total, pages)
        # The next page first: stored whatever becomes of this one.
        if listing.has_next or (pages is not None and page < pages):
            yield self.listing_request(page + 1, pages)
        self.ledger.show(listing.product_ids)
        self.crawler.stats.inc_value("plt/listing/pages")
        for href, product_id in zip(listing.product_urls, listing.product_ids, strict=True):
            yield self.product_request(response.urljoin(href), product_id)
