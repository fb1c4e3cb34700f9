"""Small helpers shared by test modules."""

from __future__ import annotations

import asyncio
import subprocess
import urllib.error
import urllib.request
from collections import deque
from collections.abc import AsyncIterator, Iterable
from types import SimpleNamespace
from typing import Any
from unittest import mock

from scrapy import Request
from scrapy.http import HtmlResponse, Response
from scrapy.utils.test import get_crawler

from plt.shop.catalog import Catalog, Product
from plt.spiders.product import ProductSpider
from tests.conftest import data_file


def collect(agen: AsyncIterator[Any]) -> list[Any]:
    """Everything an async generator (a callback, an errback) yields."""

    async def drain() -> list[Any]:
        return [x async for x in agen]

    return asyncio.run(drain())


def product_spider() -> ProductSpider:
    """A product spider whose job state is open (in memory) and whose stats are open."""
    settings = {"SHOP_URL": "http://shop.test:8800", "STOCK_API_URL": "http://stock.test"}
    crawler = get_crawler(ProductSpider, settings)
    crawler.stats.open_spider()
    spider = ProductSpider.from_crawler(crawler)
    spider.job.open()
    return spider


def html(request: Request, name: str, status: int = 200) -> HtmlResponse:
    """The page of tests/data/``name``, as the answer to ``request``."""
    return HtmlResponse(request.url, body=data_file(name), status=status, request=request)


def empty_page(request: Request, status: int = 200) -> HtmlResponse:
    """A page with neither product tiles nor a total count: an anti-bot page, say."""
    body = b"<html><body><p>Please verify you are a human.</p></body></html>"
    return HtmlResponse(request.url, body=body, status=status, request=request)


def spider_output(mw: Any, response: Response, outputs: Iterable[Any]) -> list[Any]:
    """What a spider middleware's process_spider_output lets through of ``outputs``."""

    async def result() -> AsyncIterator[Any]:
        for obj in outputs:
            yield obj

    return collect(mw.process_spider_output(response, result()))


def terminate(proc: subprocess.Popen[Any] | None, timeout: float) -> None:
    """SIGTERM a server, SIGKILL it if it has not exited after ``timeout`` seconds."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


LOOPBACK_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no proxies


def fetch(
    url: str, encoding: str | None = None, *, opener: urllib.request.OpenerDirector | None = None
) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of a GET, error statuses included."""
    request = urllib.request.Request(url)
    if encoding:
        request.add_header("Accept-Encoding", encoding)
    try:
        with (opener or LOOPBACK_OPENER).open(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, dict(exc.headers), exc.read()


class FakeSlot:
    """A download slot: its concurrency and its queue."""

    def __init__(self, concurrency: int) -> None:
        self.concurrency = concurrency
        self.queue: deque[Any] = deque()


class FakeDownloader:
    """Two slots and one request in flight; records the slots whose queue was started."""

    def __init__(self, total: int, per_slot: int) -> None:
        self.total_concurrency = total
        self.slots = {"shop.example": FakeSlot(per_slot), "api.example": FakeSlot(per_slot)}
        self.active: set[Any] = {"a request in flight"}
        self.processed: list[FakeSlot] = []

    def _process_queue(self, slot: FakeSlot) -> None:
        self.processed.append(slot)


class FakeEngine:
    """The parts of Scrapy's engine that the memory governor reaches."""

    def __init__(self, total: int, per_slot: int) -> None:
        self.downloader = FakeDownloader(total, per_slot)
        self.paused = False
        self._slot = SimpleNamespace(nextcall=mock.Mock())

    def pause(self) -> None:
        self.paused = True

    def unpause(self) -> None:
        self.paused = False


def find(catalog: Catalog, **wanted: Any) -> Product:
    """The demo retailer's first product with the attributes ``wanted``."""
    for product in catalog.products():
        if all(getattr(product, k) == v for k, v in wanted.items()):
            return product
    raise AssertionError(f"no product with {wanted}")
