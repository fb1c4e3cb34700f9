"""The demo shop's HTTP server (aiohttp.web), serving the retailer contract.

Routes:
    GET /products?page=N          listing page (a missing ``page`` means page 1)
    GET /product/<anything>-<id>  product page; only the trailing id is checked
    GET /api/stock/<col_num>      stock JSON of any colour of any listed product
    GET /_shop/stats              JSON counters, for tests and benchmarks

Everything is derived from the ShopConfig. The faults that pass (a 503 or a 429 on
a first request, 403 walls, redirects, a wrong or garbled first page) depend on
how often a resource was asked for: plt.shop.faults decides them.

Product pages are sent in the first of ``encodings`` the client accepts, as a CDN
picks them; the bulk is compressed once at start for gzip, deflate and zstd.
Latency and bandwidth are plt.shop.transport's.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from plt.shop.catalog import COL_BASE, MAX_COLOURS, Catalog, ShopConfig
from plt.shop.cli import is_loopback
from plt.shop.faults import Faults
from plt.shop.pages import (
    PREFIX_BYTES,
    PageBody,
    render_listing,
    render_product_prefix,
    render_stock,
)
from plt.shop.tls import self_signed_context
from plt.shop.transport import Transport, negotiate

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
                "requests", "listing", "product", "stock", "error",
                "not_found_404", "gzip_responses", "deflate_responses", "br_responses",
                "zstd_responses", "truncated", "mislabelled", "product_bytes_sent",
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
        self.faults = Faults(self.catalog, self.counters)
        self.transport = Transport(config, self.counters)
        self._encoders = {
            "identity": self.body.identity,
            "gzip": self.body.gzip,
            "deflate": self.body.deflate,
            "zstd": self.body.zstd,
            "br": self.body.brotli,
        }

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

    async def _fail(self, request: web.Request, exc: web.HTTPException | None) -> None:
        """Raise ``exc``, if any, after the response's latency."""
        if exc is not None:
            await self.transport.wait(request)
            raise exc

    def _mark_served(self, kind: str, slot: int) -> None:
        served = self._served[kind]
        if served[slot]:
            self.counters[f"{kind}_refetches"] += 1
        if served[slot] < 255:
            served[slot] += 1
        self.counters[kind] += 1

    async def listing(self, request: web.Request) -> web.Response:
        raw = request.query.get("page", "1")
        page = int(raw) if _DIGITS.fullmatch(raw) else 0
        products = self.catalog.listing_page(page)
        if products is None:
            raise web.HTTPNotFound(text="No such listing page\n")
        await self._fail(request, self.faults.listing(page))
        body = render_listing(self.catalog, page, products)
        self._mark_served("listing", page - 1)
        await self.transport.wait(request)
        return await self.transport.send(request, (body,), "text/html")

    async def product(self, request: web.Request) -> web.StreamResponse:
        match = _PRODUCT_SLUG.fullmatch(request.match_info["slug"])
        product = self.catalog.product_by_id(int(match[2])) if match else None
        if product is None:
            raise web.HTTPNotFound(text="No such product\n")
        await self._fail(request, self.faults.product(product, request.match_info["slug"]))
        shown, bad_price = self.faults.page_of(product)
        prefix = render_product_prefix(shown, bad_price)
        key = product.product_id
        encoding = negotiate(request.headers.get("Accept-Encoding", ""), self.config.encoding_list)
        if self.catalog.has_fault("mislabelled", "product", key, self.config.mislabelled_rate):
            encoding, parts, label = "identity", self.body.identity(prefix), "gzip"
            self.counters["mislabelled"] += 1
        else:
            label, parts = encoding, self._encoders[encoding](prefix)
            if encoding != "identity" and self.faults.truncated_now(product):
                # A compressed stream cut inside the product block, framed as complete.
                parts = (parts[0][: min(100, len(parts[0]) // 2)],)
                self.counters["truncated"] += 1
        self._mark_served("product", product.index)
        if encoding != "identity":
            self.counters[f"{encoding}_responses"] += 1
        await self.transport.wait(request)
        self.counters["product_bytes_sent"] += sum(len(part) for part in parts)
        headers = {"Vary": "Accept-Encoding"}
        if label != "identity":
            headers["Content-Encoding"] = label
        return await self.transport.send(request, parts, "text/html", headers)

    async def stock(self, request: web.Request) -> web.Response:
        raw = request.match_info["col_num"]
        col_num = int(raw) if _DIGITS.fullmatch(raw) else 0
        product = self.catalog.product_by_col_num(col_num)
        await self._fail(request, self.faults.stock(col_num, product))
        assert product is not None
        body = render_stock(self.catalog, product, col_num)
        self._mark_served("stock", product.index * MAX_COLOURS + (col_num - COL_BASE) % 10)
        if product.stock_mode == "bad":
            self.counters["stock_bad_json"] += 1
        elif product.stock_mode == "none":
            self.counters["stock_no_subproducts"] += 1
        await self.transport.wait(request)
        return await self.transport.send(request, (body,), "application/json")

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
    hits_file: Path | None = None,
) -> None:
    """Serve until SIGTERM or SIGINT; ``on_ready(url)`` runs once the port is bound.

    With ``hits_file``, the faults' request counts are read from it once the port is
    bound (so a shop that held the port before has written them) and written to it
    before the port is let go.
    """
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
        ssl_context = self_signed_context(host) if config.tls else None
        site = web.TCPSite(runner, host, port, backlog=1024, ssl_context=ssl_context)
        await site.start()
        if hits_file is not None:
            shop.faults.load(hits_file)
        bound_host, bound_port = runner.addresses[0][:2]
        scheme = "https" if config.tls else "http"
        url = (
            f"{scheme}://{'[' + bound_host + ']' if ':' in bound_host else bound_host}:{bound_port}"
        )
        logger.info(
            "Demo shop on %s: %d products, %d listing pages, %d-byte product pages",
            url, shop.catalog.total_listed, shop.catalog.pages,
            len(shop.body.bulk) + PREFIX_BYTES,
        )  # fmt: skip
        if on_ready is not None:
            on_ready(url)
        await stop.wait()
        logger.info("Stopping; served %s", json.dumps(shop.counters))
        if hits_file is not None:
            try:
                shop.faults.save(hits_file)
            except OSError as exc:
                logger.error("Cannot write %s: %s", hits_file, exc)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await runner.cleanup()
