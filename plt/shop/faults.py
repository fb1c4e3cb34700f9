"""Which fault a request to the demo shop meets, and the counters of those served.

Each fault picks its resources with a seeded draw (``Catalog.has_fault``), so the
same URLs misbehave whatever the order of requests. A fault that lasts for a
resource's first N requests counts the requests of that resource that reach it;
the faults of one resource come one after another, in this order, each once the
one before it has lifted:

- listing page: 403 wall (``wall_hits`` requests), 429 (one), 503 (one),
  302 to page 1 (one; pages after the first).
- product page: 301 from a non-canonical URL to the canonical one (always),
  403 forbidden (always), 403 wall (``wall_hits``), 429 (one), 503 (one),
  404 withdrawn (always), 302 to a URL that redirects back (``wall_hits``),
  another product's page (one), a price that does not parse (one), a body cut
  short (one). A product meets at most one of the two faults that can outlast
  a run (the wall and the loop): stacked, they would take more runs than a
  crawl's attempts (PLT_JOB_MAX_ATTEMPTS), and the product could not be told
  from one that must be given up (``expected_failures``).
- stock API: 503 for its first ``stock_down_requests`` requests (any URL), 429
  (one), 503 (one).

Per-resource state is kept only for resources a fault chose, so the shop stays
cheap per request. It can outlive the process (``--hits-file``): a shop started
again for the next run of a job goes on where the last one stopped, so a wall
that answered once answers once more, not twice.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path
from typing import Any

from aiohttp import web

from plt.shop.catalog import Catalog, Product

logger = logging.getLogger(__name__)

COUNTERS = (
    "transient_503", "listing_wall_403", "product_wall_403", "forbidden_403", "throttled_429",
    "canonical_301", "redirect_loop_302", "listing_reset_302", "wrong_id", "bad_price",
    "stock_down_503",
)  # fmt: skip
_WALL_PAGE = (
    "<!DOCTYPE html>\n<html><head><title>Access denied</title></head><body>\n"
    "<h1>Access denied</h1><p>Your request looks automated. Please try again later.</p>\n"
    "</body></html>\n"
)


class Faults:
    """The fault decisions of one shop; ``counters`` is the shop's counter dict."""

    def __init__(self, catalog: Catalog, counters: dict[str, int]) -> None:
        self.catalog = catalog
        self.config = catalog.config
        self.counters = counters
        counters.update(dict.fromkeys(COUNTERS, 0))
        self._hits: dict[tuple[str, str, int], int] = {}
        self._stock_requests = 0

    def _first(self, fault: str, kind: str, key: int, rate: float, hits: int = 1) -> bool:
        """Whether this request is among the first ``hits`` of a resource the fault chose."""
        if not self.catalog.has_fault(fault, kind, key, rate):
            return False
        return self._count_hit(fault, kind, key) < hits

    def _count_hit(self, fault: str, kind: str, key: int) -> int:
        """The number of earlier requests of this resource that reached this fault."""
        seen = self._hits.get((fault, kind, key), 0)
        self._hits[(fault, kind, key)] = seen + 1
        return seen

    def _served(self, counter: str, exc: web.HTTPException) -> web.HTTPException:
        self.counters[counter] += 1
        return exc

    def _wall(self, kind: str) -> web.HTTPException:
        return self._served(
            f"{kind}_wall_403", web.HTTPForbidden(text=_WALL_PAGE, content_type="text/html")
        )

    def _throttled_or_transient(self, kind: str, key: int) -> web.HTTPException | None:
        cfg = self.config
        if self._first("throttle", kind, key, cfg.throttle_rate):
            headers = {"Retry-After": str(cfg.retry_after_s)}
            exc = web.HTTPTooManyRequests(headers=headers, text="Too many requests\n")
            return self._served("throttled_429", exc)
        if self._first("transient", kind, key, cfg.transient_error_rate):
            exc = web.HTTPServiceUnavailable(text="Temporarily unavailable, retry\n")
            return self._served("transient_503", exc)
        return None

    def listing(self, page: int) -> web.HTTPException | None:
        """The error or redirect a listing page answers with this time, if any."""
        cfg = self.config
        walled = page == cfg.wall_listing_page or self.catalog.has_fault(
            "wall", "listing", page, cfg.listing_wall_rate
        )
        if walled and self._count_hit("wall", "listing", page) < cfg.wall_hits:
            return self._wall("listing")
        exc = self._throttled_or_transient("listing", page)
        if (
            exc is None
            and page > 1
            and self._first("reset", "listing", page, cfg.listing_reset_rate)
        ):
            # An expired session: the shop starts the visitor over.
            exc = self._served("listing_reset_302", web.HTTPFound("/products?page=1"))
        return exc

    def product(self, product: Product, slug: str) -> web.HTTPException | None:
        """The error or redirect a product page answers with this time, if any."""
        cfg, pid = self.config, product.product_id
        if slug != product.slug:
            return self._served("canonical_301", web.HTTPMovedPermanently(product.path))
        if self.catalog.is_forbidden(product):
            return self._served("forbidden_403", web.HTTPForbidden(text="Forbidden\n"))
        if self._first("wall", "product", pid, cfg.product_wall_rate, cfg.wall_hits):
            return self._wall("product")
        exc = self._throttled_or_transient("product", pid)
        if exc is not None:
            return exc
        if product.withdrawn:
            return web.HTTPNotFound(text="This product is no longer available\n")
        walled = self.catalog.has_fault("wall", "product", pid, cfg.product_wall_rate)
        if not walled and self._first(
            "loop", "product", pid, cfg.redirect_loop_rate, cfg.wall_hits
        ):
            # The alias answers 301 back to this URL: A -> B -> A.
            alias = self.catalog.alias_path(product)
            return self._served("redirect_loop_302", web.HTTPFound(alias))
        return None

    def page_of(self, product: Product) -> tuple[Product, bool]:
        """The product whose block the page shows this time, and whether its price is garbled."""
        cfg, pid = self.config, product.product_id
        if self._first("wrong_id", "product", pid, cfg.wrong_id_rate):
            other = self.catalog.shown_instead(product)
            if other is not None:
                self.counters["wrong_id"] += 1
                return other, False
        if self._first("bad_price", "product", pid, cfg.bad_price_rate):
            self.counters["bad_price"] += 1
            return product, True
        return product, False

    def truncated_now(self, product: Product) -> bool:
        """Whether a product page chosen for truncation is asked for the first time."""
        key = product.product_id
        return self._first("truncated", "product", key, self.config.truncated_rate)

    def save(self, path: Path) -> None:
        """Write the request counts, atomically, with the options they belong to."""
        doc: dict[str, Any] = {
            "config": dataclasses.asdict(self.config),
            "stock_requests": self._stock_requests,
            "hits": [[*key, n] for key, n in self._hits.items()],
        }
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(doc), encoding="utf-8")
        os.replace(tmp, path)

    def load(self, path: Path) -> None:
        """Go on from the counts in ``path``, if it holds those of a shop with these options."""
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            if doc["config"] != dataclasses.asdict(self.config):
                logger.warning("%s is another shop's: starting its request counts afresh", path)
                return
            hits = {(f, kind, int(key)): int(n) for f, kind, key, n in doc["hits"]}
            stock_requests = int(doc["stock_requests"])
        except FileNotFoundError:
            return
        except (OSError, ValueError, TypeError, KeyError) as exc:
            logger.warning("Cannot read %s (%s): starting its request counts afresh", path, exc)
            return
        self._hits, self._stock_requests = hits, stock_requests

    def stock(self, col_num: int, product: Product | None) -> web.HTTPException | None:
        """The error a stock request answers with this time, if any (404 for no product)."""
        if self._stock_requests < self.config.stock_down_requests:
            self._stock_requests += 1
            exc = web.HTTPServiceUnavailable(text="Stock service unavailable\n")
            return self._served("stock_down_503", exc)
        if product is None:
            return web.HTTPNotFound(text="No such colour\n")
        return self._throttled_or_transient("stock", col_num)
