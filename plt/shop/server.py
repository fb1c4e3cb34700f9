"""The demo shop's HTTP server (aiohttp.web), serving the retailer contract.

Routes:
    GET /products?page=N          listing page (a missing ``page`` means page 1)
    GET /product/<anything>-<id>  product page; only the trailing id is checked
    GET /api/stock/<col_num>      stock JSON of any colour of any listed product
    GET /_shop/stats              JSON counters, for tests and benchmarks

Everything is derived from the ShopConfig, except the transient 503s: a resource
chosen by ``Catalog.is_transient`` answers 503 to its first request only.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import signal
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from plt.shop.catalog import COL_BASE, MAX_COLOURS, Catalog, ShopConfig
from plt.shop.cli import is_loopback
from plt.shop.pages import (
    PREFIX_ESTIMATE,
    PageBody,
    render_listing,
    render_product_prefix,
    render_stock,
)

logger = logging.getLogger(__name__)

_DIGITS = re.compile(r"[1-9][0-9]{0,17}")  # canonical positive integers only
_PRODUCT_SLUG = re.compile(r"(.+)-([1-9][0-9]{0,17})")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ShopServer:
    """Request handlers and counters of one demo shop."""

    def __init__(self, config: ShopConfig) -> None:
        self.config = config
        self.catalog = Catalog(config)
        self.body = PageBody.build(config.page_bytes, config.seed)
        self.counters: dict[str, int] = dict.fromkeys(
            (
                "requests", "listing", "product", "stock", "error", "transient_503",
                "not_found_404", "gzip_responses", "product_bytes_sent",
                "listing_refetches", "product_refetches", "stock_refetches",
                "stock_bad_json", "stock_no_subproducts", "aborted",
            ),
            0,
        )  # fmt: skip
        # One saturating counter per resource: enough to count re-fetches, and small
        # (under 0.5 MB for 100,000 products).
        self._served = {
            "listing": bytearray(self.catalog.pages),
            "product": bytearray(self.catalog.total_listed),
            "stock": bytearray(self.catalog.total_listed * MAX_COLOURS),
        }
        self._attempts: dict[tuple[str, int], int] = {}  # only transient resources
        self._delay = config.latency_ms / 1000.0

    def make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._count_middleware])
        app.router.add_get("/products", self.listing, allow_head=False)
        app.router.add_get("/product/{slug}", self.product, allow_head=False)
        app.router.add_get("/api/stock/{col_num}", self.stock, allow_head=False)
        app.router.add_get("/_shop/stats", self.stats, allow_head=False)
        return app

    @web.middleware
    async def _count_middleware(self, request: web.Request, handler: Handler) -> Any:
        if request.path != "/_shop/stats":
            self.counters["requests"] += 1
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status >= 400:
                self.counters["error"] += 1
                if exc.status == 404:
                    self.counters["not_found_404"] += 1
            raise

    async def _first_attempt_fails(self, kind: str, key: int) -> None:
        if not self.catalog.is_transient(kind, key):
            return
        attempts = self._attempts.get((kind, key), 0)
        self._attempts[(kind, key)] = attempts + 1
        if attempts == 0:
            self.counters["transient_503"] += 1
            await self._sleep()
            raise web.HTTPServiceUnavailable(text="Temporarily unavailable, retry\n")

    def _mark_served(self, kind: str, slot: int) -> None:
        served = self._served[kind]
        if served[slot]:
            self.counters[f"{kind}_refetches"] += 1
        if served[slot] < 255:
            served[slot] += 1
        self.counters[kind] += 1

    async def _sleep(self) -> None:
        if self._delay > 0:
            await asyncio.sleep(self._delay)

    async def listing(self, request: web.Request) -> web.Response:
        raw = request.query.get("page", "1")
        page = int(raw) if _DIGITS.fullmatch(raw) else 0
        products = self.catalog.listing_page(page)
        if products is None:
            raise web.HTTPNotFound(text="No such listing page\n")
        await self._first_attempt_fails("listing", page)
        body = render_listing(self.catalog, page, products)
        self._mark_served("listing", page - 1)
        await self._sleep()
        return web.Response(body=body, content_type="text/html", charset="utf-8")

    async def product(self, request: web.Request) -> web.StreamResponse:
        match = _PRODUCT_SLUG.fullmatch(request.match_info["slug"])
        product = self.catalog.product_by_id(int(match[2])) if match else None
        if product is None:
            raise web.HTTPNotFound(text="No such product\n")
        await self._first_attempt_fails("product", product.product_id)
        if product.withdrawn:
            await self._sleep()
            raise web.HTTPNotFound(text="This product is no longer available\n")
        prefix = render_product_prefix(product)
        use_gzip = "gzip" in request.headers.get("Accept-Encoding", "").lower()
        parts = self.body.gzip(prefix) if use_gzip else self.body.identity(prefix)
        size = sum(len(part) for part in parts)
        self._mark_served("product", product.index)
        self.counters["gzip_responses"] += use_gzip
        self.counters["product_bytes_sent"] += size
        await self._sleep()
        # Sent in parts so the shared bulk is never copied per response.
        response = web.StreamResponse(headers={"Vary": "Accept-Encoding"})
        response.content_type = "text/html"
        response.charset = "utf-8"
        response.content_length = size
        if use_gzip:
            response.headers["Content-Encoding"] = "gzip"
        try:
            await response.prepare(request)
            for part in parts:
                await response.write(part)
        except ConnectionError:
            # The client went away mid-page (say, a crawl being stopped): not a shop error.
            self.counters["aborted"] += 1
            logger.debug("Client left during %s", request.path)
        return response  # aiohttp finishes it, quietly if the connection is gone

    async def stock(self, request: web.Request) -> web.Response:
        raw = request.match_info["col_num"]
        col_num = int(raw) if _DIGITS.fullmatch(raw) else 0
        product = self.catalog.product_by_col_num(col_num)
        if product is None:
            raise web.HTTPNotFound(text="No such colour\n")
        await self._first_attempt_fails("stock", col_num)
        body = render_stock(self.catalog, product, col_num)
        self._mark_served("stock", product.index * MAX_COLOURS + (col_num - COL_BASE) % 10)
        if product.stock_mode == "bad":
            self.counters["stock_bad_json"] += 1
        elif product.stock_mode == "none":
            self.counters["stock_no_subproducts"] += 1
        await self._sleep()
        return web.Response(body=body, content_type="application/json")

    async def stats(self, request: web.Request) -> web.Response:
        doc = {**self.counters, "products": self.catalog.total_listed, "pages": self.catalog.pages}
        return web.json_response(doc)


async def serve(
    config: ShopConfig,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    access_log: bool = False,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve until SIGTERM or SIGINT; ``on_ready(url)`` runs once the port is bound."""
    if not is_loopback(host):
        raise ValueError(f"the demo shop binds loopback addresses only, not {host!r}")
    shop = ShopServer(config)
    runner = web.AppRunner(
        shop.make_app(), access_log=logger if access_log else None, handle_signals=False
    )
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        # A large backlog: crawlers open many connections at once.
        site = web.TCPSite(runner, host, port, backlog=1024)
        await site.start()
        bound_host, bound_port = runner.addresses[0][:2]
        url = f"http://{'[' + bound_host + ']' if ':' in bound_host else bound_host}:{bound_port}"
        logger.info(
            "Demo shop on %s: %d products, %d listing pages, %d-byte product pages",
            url, shop.catalog.total_listed, shop.catalog.pages,
            len(shop.body.bulk) + PREFIX_ESTIMATE,
        )  # fmt: skip
        if on_ready is not None:
            on_ready(url)
        await stop.wait()
        logger.info("Stopping; served %s", json.dumps(shop.counters))
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await runner.cleanup()
