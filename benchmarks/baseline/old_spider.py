"""The old product spider: the obvious way to crawl the retailer, kept as the baseline.

Run it with its own settings (old_settings.py beside this file), never PLT's::

    cd "$(mktemp -d)" && SCRAPY_SETTINGS_MODULE=old_settings \\
        PYTHONPATH=/path/to/benchmarks/baseline \\
        scrapy runspider /path/to/benchmarks/baseline/old_spider.py \\
        -a shop_url=http://127.0.0.1:PORT -O items.jsonl

It is transcribed as the original team wrote it. The one change is
``async def start()`` in place of ``start_requests()``, which Scrapy >= 2.16 no
longer calls. Each anti-pattern below is kept on purpose, because its cost is
what the benchmark measures:

* A blocking ``requests.get`` of listing page 1 in ``__init__`` to read the
  total count. Page 1 is fetched twice (here and again by Scrapy), nothing
  else runs while it is read, and importing requests adds about 2 MiB of RSS
  for one call.
* Every listing page queued at once in ``start()``: 419 Request objects in
  the scheduler before the first response. Scrapy 2.19 keeps start requests
  in their own FIFO queue and sends every other request first, so here the
  product frontier stays at the 48 products of each listing page in flight
  (up to 16 x 48) rather than growing through the crawl. The cost is the
  up-front queue and bursts of 768 product requests.
* A full ``response.text`` and Selector parse of every 1.5 MB product page,
  with no trimming. Each page is decompressed (1.5 MB of bytes), decoded into
  a 1.4 MiB str and parsed into an lxml tree of the whole page (about
  5.5 MiB), reviews and JSON blobs included, although the item comes from its
  first few KB. The parse alone is about 11 ms of CPU per page here, close
  to half of the old spider's ~24 ms per product, and each page being
  parsed holds about 7 MiB.
* The whole item carried in ``meta`` to the stock request: every product
  waiting for its stock answer keeps its item alive in the scheduler.
* A fixed dummy stock URL (``/api/stock/0``) for products without an active
  colour. The dupefilter drops every request for it after the first, and the
  first answers 404, so every product without ``data-active-col-num`` is
  lost without an error: about 1% of the catalogue, 191 of 20,103 products
  in the original report.
* The stock answer's ``response.text`` kept in the item for a pipeline that
  ``json.loads`` it: the raw text travels through the item pipeline and is
  decoded twice (bytes to str, str to objects).
* Stock Scrapy otherwise: the default scheduler with memory queues, the
  default dupefilter, and the JSON lines feed (``-O items.jsonl``) written by
  Scrapy's JsonLinesItemExporter with the standard json module.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import requests
import scrapy
from parsel import Selector
from scrapy.http import Response

PER_PAGE = 48
DUMMY_STOCK_PATH = "/api/stock/0"
_NUMBER = re.compile(r"[\d,]+(?:\.\d+)?")


def to_number(text: str | None) -> float | None:
    if not text:
        return None
    match = _NUMBER.search(text)
    return float(match.group().replace(",", "")) if match else None


class OldProductSpider(scrapy.Spider):
    name = "old_product"

    def __init__(self, shop_url: str = "http://127.0.0.1:8800", *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.shop_url = shop_url.rstrip("/")
        self.crawl_date = datetime.now(UTC).isoformat()
        # Blocking: read the total count before the crawl starts.
        first = requests.get(f"{self.shop_url}/products?page=1", timeout=60)
        first.raise_for_status()
        total_text = Selector(text=first.text).css("span.total-count::text").get()
        self.total = int(to_number(total_text) or 0)
        self.pages = max(1, -(-self.total // PER_PAGE))

    async def start(self) -> AsyncIterator[scrapy.Request]:
        # Every listing page at once.
        for page in range(1, self.pages + 1):
            yield scrapy.Request(f"{self.shop_url}/products?page={page}", callback=self.parse)

    def parse(self, response: Response) -> Any:
        for href in response.css("li.product-tile a.product-link::attr(href)").getall():
            yield response.follow(href, callback=self.parse_product)

    def parse_product(self, response: Response) -> Any:
        # The whole 1.5 MB page: response.text, then an lxml tree of all of it.
        sel = Selector(text=response.text)
        main = sel.css("main.product")
        active = main.attrib.get("data-active-col-num")
        now = None if main.css("div.prices .sold-out") else main.css("span.price-now::text").get()
        item = {
            "product_id": int(main.attrib["data-product-id"]),
            "url": response.url,
            "date": self.crawl_date,
            "name": (main.css("h1.product-name::text").get() or "").strip(),
            "active_col_num": int(active) if active else None,
            "all_col_nums": [int(c) for c in main.css("li.colour::attr(data-col-num)").getall()],
            "old_price": to_number(main.css("span.price-was::text").get()),
            "current_price": to_number(now),
            "currency": "GBP",
            "image_urls_full": main.css("img.gallery-image::attr(data-full)").getall(),
        }
        # No active colour: a fixed dummy URL, which the dupefilter drops after the first.
        stock_path = f"/api/stock/{active}" if active else DUMMY_STOCK_PATH
        yield scrapy.Request(
            self.shop_url + stock_path, callback=self.parse_stock, meta={"item": item}
        )

    def parse_stock(self, response: Response) -> Any:
        item = response.meta["item"]
        item["stock_text"] = response.text
        yield item


class StockJsonPipeline:
    """Turns the stock answer's text into ``stock_jsons``."""

    def process_item(self, item: dict[str, Any]) -> dict[str, Any]:
        text = item.pop("stock_text")
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        item["stock_jsons"] = data.get("subProducts") if isinstance(data, dict) else None
        return item
