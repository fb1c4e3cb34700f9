"""The retailer's products: listing -> product page -> stock API.

Memory stays flat because nothing that grows with the crawl lives in the
process: listing pages are chained one at a time and rank below product and
stock requests, so the frontier is about one listing page deep; requests carry
only ids in ``cb_kwargs``; the product-page fields wait for their stock answer
in the job state on disk; and product pages arrive trimmed to their product
block (see plt.middlewares.headonly). The listing pages' part is
plt.spiders.listing's; the item's fields and their order are plt.items'.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urljoin

import scrapy
from scrapy.exceptions import CloseSpider
from scrapy.http import Response
from scrapy.settings import BaseSettings
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.python.failure import Failure

from plt.config import check_retailer
from plt.items import make_item
from plt.job.ledger import KEPT, Ledger
from plt.job.policy import MAY_PASS, Verdict, classify, classify_status
from plt.job.scheduler import DEDUPE_SCOPE_KEY, LEASE_KEY
from plt.job.store import JobStore, job_store
from plt.middlewares.headonly import ResponseTooLarge
from plt.parsing import StockError, parse_product, parse_stock, stock_col_num
from plt.spiders.listing import (
    FIRST_LISTING_FAILED,
    LISTING_TOTAL_META,
    PRODUCT_PRIORITY,
    STOCK_PRIORITY,
    ListingChain,
)

logger = logging.getLogger(__name__)

PRODUCT_BLOCK_END = "</main>"
# Close reason when the first listing page is no listing (exit status 4).
NOT_A_LISTING = "not_a_listing"
# Job meta: products withdrawn (404 or 410).
WITHDRAWN_META = "withdrawn"


class ProductSpider(ListingChain, scrapy.Spider):
    name = "product"

    @classmethod
    def update_settings(cls, settings: BaseSettings) -> None:
        # Scrapy calls this when the crawler is created, before anything runs:
        # a missing or malformed retailer URL is a ConfigError here.
        super().update_settings(settings)
        check_retailer(settings)

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> ProductSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.ledger = Ledger.for_crawler(crawler)
        spider._crawl_date = None
        return spider

    # Read when used: add-ons set the job store (PLT_JOB_STORE) and the
    # embedded demo retailer's SHOP_URL after the spider is created.
    @property
    def job(self) -> JobStore:
        return job_store(self.crawler)

    @property
    def shop_url(self) -> str:
        return self.settings.get("SHOP_URL") or ""

    @property
    def stock_api_url(self) -> str:
        return self.settings.get("STOCK_API_URL") or self.shop_url

    async def start(self) -> AsyncIterator[Any]:
        if not self.shop_url:
            logger.error("SHOP_URL is not set and PLT_EMBEDDED_SHOP is off: nothing to crawl")
            raise CloseSpider("no_shop_url")
        self.restore_job_figures()
        # On a resumed job this request is a duplicate and is dropped: the
        # frontier comes back from the job state instead. Unless the last run found
        # no listing there: then it is asked for again, at today's SHOP_URL.
        again = self.job.is_open and bool(self.job.get_meta(FIRST_LISTING_FAILED))
        request = self.listing_request(1)
        yield request.replace(dont_filter=True) if again else request

    # -- request factories ----------------------------------------------------

    def product_request(self, url: str, product_id: int) -> scrapy.Request:
        return scrapy.Request(
            url,
            callback=self.parse_product,
            errback=self.request_failed,
            cb_kwargs={"product_id": product_id},
            priority=PRODUCT_PRIORITY,
            meta={
                "plt_head_until": PRODUCT_BLOCK_END,
                "deltafetch_key": str(product_id),
                "handle_httpstatus_list": [404, 410],
            },
        )

    def stock_request(self, product_id: int, col_num: int) -> scrapy.Request:
        return scrapy.Request(
            urljoin(self.stock_api_url, f"/api/stock/{col_num}"),
            callback=self.parse_stock,
            errback=self.stock_failed,
            cb_kwargs={"product_id": product_id, "col_num": col_num},
            priority=STOCK_PRIORITY,
            # Two products may share a stock URL (a shared colour, a redirect):
            # each still needs its own answer.
            meta={DEDUPE_SCOPE_KEY: str(product_id)},
        )

    # -- callbacks --------------------------------------------------------------

    async def parse_product(self, response: Response, product_id: int) -> AsyncIterator[Any]:
        """A product page, trimmed to its product block: the stock request.

        @shop_url /product/cropped-cotton-midi-trainers-4
        @cb_kwargs {"product_id": 4}
        @returns requests 1 1
        @returns items 0 0
        @pending_item
        """
        stats = self.crawler.stats
        if response.status in (404, 410):
            stats.inc_value("plt/product/withdrawn")
            self.ledger.failed(response.request, classify_status(response.status))
            if self.job.is_open:
                self.job.set_meta(WITHDRAWN_META, (self.job.get_meta(WITHDRAWN_META) or 0) + 1)
            return
        if self.job.is_open and self.job.is_exported(product_id):
            # A page leased when a run died, whose product was exported since.
            stats.inc_value("plt/product/already_exported")
            return
        fields = parse_product(response.selector, response.url)
        if fields is None:
            stats.inc_value("plt/product/no_product_block")
            self.ledger.failed(response.request, Verdict(MAY_PASS, "no_product_block"))
            return
        if fields["product_id"] != product_id:
            # Another product's page: the one asked for stays to do. The page
            # is exported under its own id only if that product is not in the
            # job already, with its stock looked up for it.
            stats.inc_value("plt/product/id_changed")
            shown = fields["product_id"]
            detail = f"the page shows product {shown}, not {product_id}"
            self.ledger.failed(response.request, Verdict(MAY_PASS, "id_changed"), detail)
            if self.ledger.seen(shown):
                stats.inc_value("plt/product/id_changed_seen")
                return
            product_id = shown
            # The item's url is the product's own page, not the one asked for.
            if canonical := response.css("link[rel=canonical]::attr(href)").get():
                fields["url"] = response.urljoin(canonical)
        fields["date"] = self.crawl_date()
        if fields["active_col_num"] is None:
            stats.inc_value("plt/product/no_active_colour")
        col_num = stock_col_num(fields)
        if col_num is None:
            stats.inc_value("plt/product/no_colours")
            yield make_item(fields, None)
            return
        self.job.put_pending(product_id, fields)
        yield self.stock_request(product_id, col_num)

    async def parse_stock(
        self, response: Response, product_id: int, col_num: int
    ) -> AsyncIterator[Any]:
        """The stock answer completes the item waiting in the job state.

        @stock_url /api/stock/100041
        @cb_kwargs {"product_id": 4, "col_num": 100041}
        @with_pending_item
        @returns items 1 1
        @scrapes product_id url date name all_col_nums currency stock_jsons
        """
        try:
            stock = parse_stock(response.body)
        except StockError as exc:
            self.crawler.stats.inc_value(f"plt/stock/{exc.kind}")
            logger.debug("Stock of product %d (%s): %s", product_id, response.url, exc)
            stock = None
        item = self._complete(product_id, stock)
        if item is not None:
            yield item

    # -- errbacks ---------------------------------------------------------------

    async def stock_failed(self, failure: Failure) -> AsyncIterator[Any]:
        """A stock call failed: kept for the next run if it may pass (the partial
        item waits in the job state); else the product is exported without stock."""
        product_id = failure.request.cb_kwargs["product_id"]
        if self.ledger.failed(failure.request, failure) == KEPT:
            self.crawler.stats.inc_value("plt/stock/kept")
            return
        self.crawler.stats.inc_value("plt/stock/failed")
        logger.warning("Stock lookup failed for product %d: %s", product_id, failure.value)
        item = self._complete(product_id, None)
        if item is not None:
            yield item

    async def request_failed(self, failure: Failure) -> AsyncIterator[Any]:
        """A listing or product page failed after its retries: the ledger decides.

        A failed listing page never cuts off the pages after it: once the page
        count is known, the next page is queued whatever becomes of this one.
        """
        request = failure.request
        kind = "product" if "product_id" in request.cb_kwargs else "listing"
        stats = self.crawler.stats
        verdict = classify(failure)
        if failure.check(ResponseTooLarge):
            stats.inc_value(f"plt/{kind}/too_large")
        elif failure.check(HttpError):
            stats.inc_value(f"plt/{kind}/http_{failure.value.response.status}")
        else:
            stats.inc_value(f"plt/{kind}/failed")
        first = kind == "listing" and request.cb_kwargs.get("page") == 1
        if first and not verdict.may_pass:
            too_large = failure.check(ResponseTooLarge)
            what = "too large" if too_large else f"HTTP {failure.value.response.status}"
            self.not_a_listing(request, request.url, what)
        if self.ledger.failed(request, failure) == KEPT and first and not failure.check(HttpError):
            # The first page failing to connect is most often a mistyped host.
            logger.error("%s failed: Is SHOP_URL (%s) right?", request.url, self.shop_url)
        page, pages = request.cb_kwargs.get("page"), request.cb_kwargs.get("pages")
        if kind == "listing" and isinstance(pages, int) and isinstance(page, int) and page < pages:
            yield self.listing_request(page + 1, pages)

    # -- helpers ----------------------------------------------------------------

    def not_a_listing(self, request: scrapy.Request | None, url: str, what: str) -> None:
        """The first listing page is no listing: a wrong SHOP_URL, an anti-bot page,
        a changed template. Nothing can be crawled, so the crawl stops unfinished.
        Its request is given up and the job remembers it, so the next run asks for
        the first page again, at the SHOP_URL it is given then."""
        lease_id = request.meta.get(LEASE_KEY) if request is not None else None
        if self.job.is_open:
            self.job.set_meta(FIRST_LISTING_FAILED, True)
            if lease_id is not None:
                self.job.settle(lease_id)
        self.crawler.stats.set_value("plt/listing/not_a_listing", url)
        logger.error(
            "The first listing page %(url)s is not a listing of the retailer contract "
            "(%(what)s). Check SHOP_URL (%(shop)s); the job is not finished, and the same "
            "command tries again.",
            {"url": url, "what": what, "shop": self.shop_url},
        )
        raise CloseSpider(NOT_A_LISTING)

    def restore_job_figures(self) -> None:
        """What earlier runs of the job did, for a progress that counts the whole job."""
        job, stats = self.job, self.crawler.stats
        if not job.is_open:
            return
        total = job.get_meta(LISTING_TOTAL_META)
        if total is not None and stats.get_value("plt/products/total") is None:
            stats.set_value("plt/products/total", total)
        done = job.exported_count() + (job.get_meta(WITHDRAWN_META) or 0)
        stats.set_value("plt/products/done_before", done)

    def crawl_date(self) -> str:
        """The job's start, ISO 8601 UTC, the same for every item of the job."""
        if self._crawl_date is None:
            self._crawl_date = self.job.get_meta("started_at")
        return self._crawl_date

    def _complete(self, product_id: int, stock: list[Any] | None) -> dict[str, Any] | None:
        fields = self.job.get_pending(product_id)
        if fields is None:
            # Happens only if the job state was edited by hand.
            self.crawler.stats.inc_value("plt/stock/no_pending_item")
            logger.warning("No partial item for product %d; stock answer ignored", product_id)
            return None
        return make_item(fields, stock)
