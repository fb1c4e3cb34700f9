"""The demo shop's options: one frozen ShopConfig whose fields are the single list.

Field metadata drives the command line (plt.shop.cli): ``kind`` selects the
validator, ``fault`` marks the options that ``--no-faults`` turns off.
"""

from __future__ import annotations

import dataclasses
import math
import zlib
from dataclasses import dataclass, field
from typing import Any

ID_STRIDE = 5
COUNT, POSITIVE, ANY_INT, RATE = "count", "positive", "int", "rate"
ENCODINGS, FLAG, IDS = "encodings", "flag", "ids"
KNOWN_ENCODINGS = ("br", "zstd", "gzip", "deflate")
# Every failure of a real retailer at once, at rates a full-size crawl meets each of
# them with (a test preset: ``dataclasses.replace(config, **EVERY_FAULT)``).
EVERY_FAULT: dict[str, float | int] = {
    "truncated_rate": 0.01,
    "listing_wall_rate": 0.2,
    "product_wall_rate": 0.05,
    "forbidden_rate": 0.001,
    "throttle_rate": 0.02,
    "noncanonical_link_rate": 0.02,
    "redirect_loop_rate": 0.01,
    "listing_reset_rate": 0.05,
    "wrong_id_rate": 0.01,
    "bad_price_rate": 0.01,
    "stock_down_requests": 100,
}


def _opt(default: Any, kind: str, help: str, fault: bool = False) -> Any:
    return field(default=default, metadata={"kind": kind, "help": help, "fault": fault})


def product_id_at(seed: int, index: int) -> int:
    """The id of the product at listing position ``index``: one per stride slot."""
    offset = zlib.crc32(f"{seed}:slot:{index}".encode()) % ID_STRIDE
    return 1 + ID_STRIDE * index + offset


def parse_ids(text: str) -> list[int]:
    """``"123, 456"`` -> ``[123, 456]``; ValueError for anything but positive integers."""
    ids = []
    for token in text.split(","):
        token = token.strip()
        if not token:
            continue
        if not token.isdigit() or int(token) < 1:
            raise ValueError(f"not a product id: {token!r}")
        ids.append(int(token))
    return ids


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
    listing_wall_rate: float = _opt(
        0.0, RATE, "fraction of listing pages walled (403) for their first --wall-hits requests",
        fault=True,
    )  # fmt: skip
    product_wall_rate: float = _opt(
        0.0, RATE, "fraction of product pages walled (403) for their first --wall-hits requests",
        fault=True,
    )  # fmt: skip
    wall_listing_page: int = _opt(
        0, COUNT, "this listing page is walled (403) for its first --wall-hits requests (0: none)",
        fault=True,
    )  # fmt: skip
    wall_hits: int = _opt(
        2, POSITIVE, "requests a 403 wall or a redirect loop answers before it lifts"
    )
    forbidden_rate: float = _opt(
        0.0, RATE, "fraction of products whose page always answers 403", fault=True
    )
    forbidden_ids: str = _opt(
        "", IDS, "comma-separated product ids whose page always answers 403", fault=True
    )
    throttle_rate: float = _opt(
        0.0, RATE, "fraction of URLs whose first request answers 429 with Retry-After", fault=True
    )
    retry_after_s: int = _opt(1, COUNT, "the Retry-After of a 429, in seconds")
    noncanonical_link_rate: float = _opt(
        0.0, RATE, "fraction of listing links to a non-canonical product URL (301 to canonical)",
        fault=True,
    )  # fmt: skip
    redirect_loop_rate: float = _opt(
        0.0, RATE, "fraction of product pages that redirect in a loop for --wall-hits requests",
        fault=True,
    )  # fmt: skip
    listing_reset_rate: float = _opt(
        0.0, RATE, "fraction of listing pages after page 1 whose first request redirects to page 1",
        fault=True,
    )  # fmt: skip
    wrong_id_rate: float = _opt(
        0.0, RATE, "fraction of product pages whose first answer shows the next listed product",
        fault=True,
    )  # fmt: skip
    bad_price_rate: float = _opt(
        0.0, RATE, "fraction of product pages whose first answer has a price that does not parse",
        fault=True,
    )  # fmt: skip
    stock_down_requests: int = _opt(
        0, COUNT, "the stock API answers 503 to its first N requests", fault=True
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
        pages = max(1, math.ceil(self.products / self.per_page))
        if self.wall_listing_page > pages:
            raise ValueError(f"wall_listing_page must be within [0, {pages}] (the listing pages)")
        self.forbidden_id_list  # noqa: B018  (raises ValueError for a bad list)

    @property
    def encoding_list(self) -> list[str]:
        return [e.strip() for e in self.encodings.split(",") if e.strip()]

    @property
    def forbidden_id_list(self) -> list[int]:
        """The ids of ``forbidden_ids``; each must be a listed product's."""
        try:
            ids = parse_ids(self.forbidden_ids)
        except ValueError as exc:
            raise ValueError(f"forbidden_ids: {exc}") from None
        for pid in ids:
            index = (pid - 1) // ID_STRIDE
            if index >= self.products or product_id_at(self.seed, index) != pid:
                first = ", ".join(str(product_id_at(self.seed, i)) for i in range(3))
                raise ValueError(
                    f"forbidden_ids: {pid} is not a listed product's id (the first are {first})"
                )
        return ids

    def without_faults(self) -> ShopConfig:
        """The same shop with every fault off (its rate, count, page or id list zero)."""
        zeroed = {
            f.name: type(f.default)() for f in dataclasses.fields(self) if f.metadata["fault"]
        }
        return dataclasses.replace(self, **zeroed)
