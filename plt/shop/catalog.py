"""The demo shop's catalogue: products derived on demand from a seed.

Nothing per product is stored: a product is rebuilt from
``random.Random(f"plt-shop:{seed}:{product_id}")`` whenever it is needed, so a
100,000-product shop starts instantly and stays small. Product ids are spread
over ``[1, ID_STRIDE * products]`` (one id per stride slot, at a seeded offset)
so that an id is never simply a listing index.

The catalogue also says which products a fault picks for good (a forbidden
product, a non-canonical listing link, the page a wrong-id answer shows);
plt.shop.faults decides, request by request, the faults that pass, and
plt.shop.truth what a correct crawl exports and gives up.
"""

from __future__ import annotations

import logging
import math
import random
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from plt.shop import words
from plt.shop.options import (
    ANY_INT,
    COUNT,
    ENCODINGS,
    FLAG,
    ID_STRIDE,
    IDS,
    KNOWN_ENCODINGS,
    POSITIVE,
    RATE,
    ShopConfig,
    product_id_at,
)

logger = logging.getLogger(__name__)

COL_BASE = 100_000  # col_num = COL_BASE + product_id * 10 + k, as in the contract's example
MAX_COLOURS = 4
MAX_IMAGES = 6
CURRENCY = "GBP"

# ShopConfig and the options' kinds (plt.shop.options) are re-exported from here.
__all__ = [
    "ANY_INT", "COL_BASE", "COUNT", "CURRENCY", "ENCODINGS", "FLAG", "IDS", "ID_STRIDE",
    "KNOWN_ENCODINGS", "MAX_COLOURS", "MAX_IMAGES", "POSITIVE", "RATE", "Catalog", "Product",
    "ShopConfig", "cents_to_float",
]  # fmt: skip


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
        self.forbidden_ids = frozenset(config.forbidden_id_list)

    # Ids and lookups

    def product_id_at(self, index: int) -> int:
        return product_id_at(self.config.seed, index)

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

    def is_forbidden(self, product: Product) -> bool:
        """Whether a product's page always answers 403 (it can never be exported)."""
        pid = product.product_id
        return pid in self.forbidden_ids or self.has_fault(
            "forbidden", "product", pid, self.config.forbidden_rate
        )

    def is_exportable(self, product: Product) -> bool:
        return not product.withdrawn and not self.is_forbidden(product)

    def listing_path(self, product: Product) -> str:
        """The link a listing page shows: canonical, or another slug that redirects to it."""
        rate = self.config.noncanonical_link_rate
        if self.has_fault("noncanonical", "product", product.product_id, rate):
            return self.alias_path(product)
        return product.path

    @staticmethod
    def alias_path(product: Product) -> str:
        """A non-canonical URL of a product (same id, another slug)."""
        return f"/product/item-{product.product_id}"

    def shown_instead(self, product: Product) -> Product | None:
        """The product whose block a wrong-id page shows: the next exportable one in listing order.

        Never a withdrawn or forbidden product, so that a crawl that exports what the
        page shows under the page's own id still matches the ground truth.
        """
        for step in range(1, self.total_listed):
            other = self.product_at((product.index + step) % self.total_listed)
            if self.is_exportable(other):
                return other
        return None

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

    def products(self) -> Iterator[Product]:
        """Every listed product, in listing (= product id) order."""
        return (self.product_at(i) for i in range(self.total_listed))
