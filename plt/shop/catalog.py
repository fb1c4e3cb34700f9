"""The demo shop's catalogue: products derived on demand from a seed.

Nothing per product is stored: a product is rebuilt from
``random.Random(f"plt-shop:{seed}:{product_id}")`` whenever it is needed, so a
100,000-product shop starts instantly and stays small. Product ids are spread
over ``[1, ID_STRIDE * products]`` (one id per stride slot, at a seeded offset)
so that an id is never simply a listing index.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import random
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from plt.shop import words

logger = logging.getLogger(__name__)

ID_STRIDE = 5
COL_BASE = 100_000  # col_num = COL_BASE + product_id * 10 + k, as in the contract's example
MAX_COLOURS = 4
MAX_IMAGES = 6
CURRENCY = "GBP"

# Field metadata drives the command line (plt.shop.cli): kind selects the validator,
# fault marks the rates that --no-faults zeroes.
COUNT, POSITIVE, ANY_INT, RATE = "count", "positive", "int", "rate"
ENCODINGS, FLAG = "encodings", "flag"
KNOWN_ENCODINGS = ("br", "zstd", "gzip", "deflate")


def _opt(default: Any, kind: str, help: str, fault: bool = False) -> Any:
    return field(default=default, metadata={"kind": kind, "help": help, "fault": fault})


@dataclass(frozen=True)
class ShopConfig:
    """Everything that shapes what the demo shop serves."""

    products: int = _opt(20103, COUNT, "number of listed products")
    seed: int = _opt(1, ANY_INT, "seed of all generated data")
    page_bytes: int = _opt(1_500_000, COUNT, "approximate decompressed product page size")
    per_page: int = _opt(48, POSITIVE, "product tiles per listing page")
    transient_error_rate: float = _opt(
        0.01, RATE, "fraction of URLs whose first request answers 503", fault=True
    )
    withdrawn_rate: float = _opt(
        0.005, RATE, "fraction of listed products whose page is 404", fault=True
    )
    sold_out_rate: float = _opt(0.05, RATE, "fraction of products sold out")
    discount_rate: float = _opt(0.3, RATE, "fraction of products discounted")
    missing_active_rate: float = _opt(
        0.01, RATE, "fraction of products without data-active-col-num", fault=True
    )
    bad_stock_rate: float = _opt(
        0.005, RATE, "fraction of products whose stock body is broken JSON", fault=True
    )
    no_subproducts_rate: float = _opt(
        0.002, RATE, "fraction of products whose stock JSON lacks subProducts", fault=True
    )
    truncated_rate: float = _opt(
        0.0, RATE, "fraction of product URLs whose first answer is cut short", fault=True
    )
    mislabelled_rate: float = _opt(
        0.0, RATE, "fraction of product pages sent plain but labelled gzip", fault=True
    )
    encodings: str = _opt(
        "br,zstd,gzip,deflate",
        ENCODINGS,
        "content encodings of product pages in order of preference, as a CDN picks them",
    )
    latency_ms: float = _opt(0.0, COUNT, "delay added to every response, in milliseconds")
    bandwidth_kbit: float = _opt(0.0, COUNT, "send rate of each connection, kbit/s (0: no limit)")
    tls: bool = _opt(False, FLAG, "serve HTTPS with a certificate made at start")

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value, kind = getattr(self, f.name), f.metadata["kind"]
            if kind == COUNT and value < 0:
                raise ValueError(f"{f.name} must be >= 0, got {value!r}")
            if kind == POSITIVE and value < 1:
                raise ValueError(f"{f.name} must be >= 1, got {value!r}")
            if kind == RATE and not 0.0 <= value <= 1.0:
                raise ValueError(f"{f.name} must be within [0, 1], got {value!r}")
            if kind == ENCODINGS:
                unknown = set(self.encoding_list) - set(KNOWN_ENCODINGS)
                if unknown:
                    known = ", ".join(KNOWN_ENCODINGS)
                    raise ValueError(f"{f.name}: unknown {sorted(unknown)}; known: {known}")

    @property
    def encoding_list(self) -> list[str]:
        return [e.strip() for e in self.encodings.split(",") if e.strip()]

    def without_faults(self) -> ShopConfig:
        """The same shop with every fault rate set to 0."""
        zeroed = {f.name: 0.0 for f in dataclasses.fields(self) if f.metadata["fault"]}
        return dataclasses.replace(self, **zeroed)


@dataclass(frozen=True, slots=True)
class Product:
    index: int  # position in listing order
    product_id: int
    name: str
    slug: str
    col_nums: tuple[int, ...]
    active_col_num: int  # always set; show_active says whether the page carries it
    show_active: bool
    price_cents: int  # current (or, when sold out, last) selling price
    old_price_cents: int | None
    sold_out: bool
    image_count: int
    withdrawn: bool
    stock_mode: str  # "ok", "bad" (broken JSON) or "none" (no subProducts)
    sizes: tuple[str, ...]

    @property
    def path(self) -> str:
        return f"/product/{self.slug}"

    @property
    def image_urls_full(self) -> list[str]:
        pid = self.product_id
        return [f"https://img.example/{pid}/{k}_full.jpg" for k in range(self.image_count)]

    @property
    def stock_col_num(self) -> int:
        """The colour a correct crawl asks the stock API about."""
        return self.active_col_num if self.show_active else self.col_nums[0]


def cents_to_float(cents: int) -> float:
    # int / int is correctly rounded, so this equals float("1049.99") parsed from a page.
    return cents / 100


class Catalog:
    """Deterministic product data for one ShopConfig."""

    def __init__(self, config: ShopConfig) -> None:
        self.config = config
        self.total_listed = config.products
        # Page 1 exists even in an empty shop, so a crawl has somewhere to start.
        self.pages = max(1, math.ceil(config.products / config.per_page))

    # Ids and lookups

    def product_id_at(self, index: int) -> int:
        offset = zlib.crc32(f"{self.config.seed}:slot:{index}".encode()) % ID_STRIDE
        return 1 + ID_STRIDE * index + offset

    def index_of(self, product_id: int) -> int | None:
        index = (product_id - 1) // ID_STRIDE
        if 0 <= index < self.total_listed and self.product_id_at(index) == product_id:
            return index
        return None

    def product_by_id(self, product_id: int) -> Product | None:
        index = self.index_of(product_id)
        return None if index is None else self.product_at(index)

    def product_by_col_num(self, col_num: int) -> Product | None:
        """The product owning a colour number, whether or not it is the active one."""
        product_id, k = divmod(col_num - COL_BASE, 10)
        if col_num < COL_BASE or k >= MAX_COLOURS:
            return None
        product = self.product_by_id(product_id)
        if product is None or k >= len(product.col_nums):
            return None
        return product

    def listing_page(self, page: int) -> list[Product] | None:
        """Products on listing page ``page`` (1-based), None past the last page."""
        if not 1 <= page <= self.pages:
            return None
        start = (page - 1) * self.config.per_page
        stop = min(start + self.config.per_page, self.total_listed)
        return [self.product_at(i) for i in range(start, stop)]

    def is_transient(self, kind: str, key: int) -> bool:
        """Whether the first request for this resource answers 503 (independent of order)."""
        return self.has_fault("transient", kind, key, self.config.transient_error_rate)

    def has_fault(self, fault: str, kind: str, key: int, rate: float) -> bool:
        """A seeded draw per fault and resource, independent of request order."""
        if rate <= 0.0:
            return False
        digest = zlib.crc32(f"{self.config.seed}:{fault}:{kind}:{key}".encode())
        return digest / 2**32 < rate

    # Product data

    def product_at(self, index: int) -> Product:
        cfg = self.config
        pid = self.product_id_at(index)
        rng = random.Random(f"plt-shop:{cfg.seed}:{pid}")
        garment, scale = rng.choice(words.GARMENTS)
        name = " ".join(
            (rng.choice(words.ADJECTIVES), rng.choice(words.MATERIALS), rng.choice(words.STYLES))
        )
        name = f"{name} {garment}"
        n_colours = rng.randint(1, MAX_COLOURS)
        col_nums = tuple(COL_BASE + pid * 10 + k for k in range(n_colours))
        active = col_nums[rng.randrange(n_colours)]
        image_count = rng.randint(1, MAX_IMAGES)
        # A few prices above 999 exercise the thousands separator.
        pounds = rng.randint(1000, 2400) if rng.random() < 0.04 else rng.randint(4, 320)
        price = pounds * 100 + rng.choice((99, 99, 99, 49, 0))
        discount_draw, cut = rng.random(), rng.uniform(0.4, 0.9)
        old_price = None
        if discount_draw < cfg.discount_rate:
            old_price, price = price, min(int(pounds * cut), pounds - 1) * 100 + 99
        # Every draw happens whatever the rates, so one rate never reshuffles the others.
        sold_out = rng.random() < cfg.sold_out_rate
        withdrawn = rng.random() < cfg.withdrawn_rate
        show_active = rng.random() >= cfg.missing_active_rate
        stock_draw = rng.random()
        if stock_draw < cfg.bad_stock_rate:
            stock_mode = "bad"
        elif stock_draw < cfg.bad_stock_rate + cfg.no_subproducts_rate:
            stock_mode = "none"
        else:
            stock_mode = "ok"
        sizes = words.SIZES[scale]
        if len(sizes) > 3:
            first = rng.randrange(len(sizes) - 2)
            sizes = sizes[first : first + rng.randint(3, len(sizes) - first)]
        slug = "-".join(name.lower().split()) + f"-{pid}"
        return Product(
            index, pid, name, slug, col_nums, active, show_active, price, old_price,
            sold_out, image_count, withdrawn, stock_mode, sizes,
        )  # fmt: skip

    def sub_products(self, product: Product, col_num: int) -> list[dict[str, Any]]:
        """The stock API's subProducts for one colour of a product."""
        rng = random.Random(f"plt-shop:{self.config.seed}:stock:{col_num}")
        price = cents_to_float(product.price_cents)
        levels = [rng.randint(1, 60) if rng.random() >= 0.2 else 0 for _ in product.sizes]
        return [
            {
                "sku": f"{col_num}-{size.replace(' ', '')}",
                "size": size,
                "stockLevel": 0 if product.sold_out else level,
                "price": price,
            }
            for size, level in zip(product.sizes, levels, strict=True)
        ]

    # Ground truth

    def expected_item(self, product: Product, base_url: str) -> dict[str, Any]:
        """The item a correct crawl exports for a product (without ``date``)."""
        stock = None
        if product.stock_mode == "ok":
            stock = self.sub_products(product, product.stock_col_num)
        return {
            "product_id": product.product_id,
            "url": base_url.rstrip("/") + product.path,
            "name": product.name,
            "active_col_num": product.active_col_num if product.show_active else None,
            "all_col_nums": list(product.col_nums),
            "old_price": (
                None if product.old_price_cents is None else cents_to_float(product.old_price_cents)
            ),
            "current_price": None if product.sold_out else cents_to_float(product.price_cents),
            "currency": CURRENCY,
            "image_urls_full": product.image_urls_full,
            "stock_jsons": stock,
        }

    def products(self) -> Iterator[Product]:
        """Every listed product, in listing (= product id) order."""
        return (self.product_at(i) for i in range(self.total_listed))

    def expected_items(self, base_url: str) -> Iterator[dict[str, Any]]:
        """Items of a correct full crawl, in product id order; withdrawn products excluded."""
        for product in self.products():
            if not product.withdrawn:
                yield self.expected_item(product, base_url)

    def summary(self) -> dict[str, int]:
        """Counts a crawl's stats can be checked against (walks every product)."""
        counts = {
            "listed": self.total_listed,
            "listing_pages": self.pages,
            "withdrawn": 0,
            "items": 0,
            "sold_out": 0,
            "discounted": 0,
            "missing_active": 0,
            "stock_bad_json": 0,
            "stock_no_subproducts": 0,
        }
        for p in self.products():
            counts["withdrawn"] += p.withdrawn
            if p.withdrawn:
                continue
            counts["items"] += 1
            counts["sold_out"] += p.sold_out
            counts["discounted"] += p.old_price_cents is not None
            counts["missing_active"] += not p.show_active
            counts["stock_bad_json"] += p.stock_mode == "bad"
            counts["stock_no_subproducts"] += p.stock_mode == "none"
        return counts
