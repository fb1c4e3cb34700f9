"""HTML and JSON bodies of the demo shop, and the precompressed product page bulk.

A product page is a small per-product prefix (everything up to ``</main>``) followed
by one shared bulk of reviews and JSON blobs. The bulk is built and deflated once;
a gzip response is ``header + deflate(prefix, full flush) + deflated bulk + trailer``.
A full flush ends the prefix's deflate blocks on a byte boundary without ending the
stream, so appending the bulk's independently compressed blocks gives one valid
deflate stream and one gzip member.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import random
import struct
import zlib

import brotli

from plt.shop import words

try:
    from backports import zstd
except ImportError:  # Python 3.14 and later
    from compression import zstd  # type: ignore[import-not-found,no-redef]
from plt.shop.catalog import CURRENCY, Catalog, Product, cents_to_float

logger = logging.getLogger(__name__)

# mtime 0, no flags, OS unknown: the header carries nothing per response.
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
COMPRESS_LEVEL = 6
PREFIX_ESTIMATE = 1_200  # typical prefix size, so prefix + bulk comes out near page_bytes
_BULK_TAIL = b"</body>\n</html>\n"
ZLIB_HEADER = b"\x78\x9c"  # deflate, 32 KiB window, default level
BROTLI_QUALITY = 1  # per response, ~6 ms for a 1.5 MB page; CDNs use 4-5 on the fly


def format_price(cents: int) -> str:
    return f"&pound;{cents // 100:,}.{cents % 100:02d}"


def render_listing(catalog: Catalog, page: int, products: list[Product]) -> bytes:
    tiles = []
    for p in products:
        price = "Sold out" if p.sold_out else format_price(p.price_cents)
        href = catalog.listing_path(p)
        tiles.append(
            f'  <li class="product-tile" data-product-id="{p.product_id}">\n'
            f'    <a class="product-link" href="{href}">{html.escape(p.name)}</a>\n'
            f'    <span class="price">{price}</span>\n'
            "  </li>\n"
        )
    links = []
    if page > 1:
        links.append(f'<a class="prev" rel="prev" href="/products?page={page - 1}">Previous</a>')
    if page < catalog.pages:
        links.append(f'<a class="next" rel="next" href="/products?page={page + 1}">Next</a>')
    body = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>All products - page {page} | PLT Demo Shop</title>\n</head>\n<body>\n"
        "<h1>All products</h1>\n"
        f'<p class="results">Showing {len(products)} of '
        f'<span class="total-count">{catalog.total_listed:,}</span> products</p>\n'
        f'<ul class="product-grid">\n{"".join(tiles)}</ul>\n'
        f'<nav class="pagination">{" ".join(links)}</nav>\n</body>\n</html>\n'
    )
    return body.encode()


def render_product_prefix(product: Product, bad_price: bool = False) -> bytes:
    """The page up to ``</main>``; ``bad_price`` puts a price text that does not parse."""
    p = product
    name = html.escape(p.name)
    active = f' data-active-col-num="{p.active_col_num}"' if p.show_active else ""
    prices = []
    if p.old_price_cents is not None:
        prices.append(f'    <span class="price-was">{format_price(p.old_price_cents)}</span>\n')
    if bad_price:
        prices.append('    <span class="price-now">&pound;,</span>\n')
    elif p.sold_out:
        prices.append('    <span class="sold-out">Sold out</span>\n')
    else:
        prices.append(f'    <span class="price-now">{format_price(p.price_cents)}</span>\n')
    colours = "".join(f'    <li class="colour" data-col-num="{c}"></li>\n' for c in p.col_nums)
    images = "".join(
        f'    <img class="gallery-image" data-full="{url}" src="{url}?w=200">\n'
        for url in p.image_urls_full
    )
    page = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{name} | PLT Demo Shop</title>\n"
        f'<link rel="canonical" href="{p.path}">\n</head>\n<body>\n'
        '<header class="site-header"><a href="/products?page=1">All products</a></header>\n'
        f'<main class="product" data-product-id="{p.product_id}"{active}>\n'
        f'  <h1 class="product-name">{name}</h1>\n'
        f'  <div class="prices">\n{"".join(prices)}  </div>\n'
        f'  <ul class="colours">\n{colours}  </ul>\n'
        f'  <div class="gallery">\n{images}  </div>\n'
        "</main>\n"
    )
    return page.encode()


def render_stock(catalog: Catalog, product: Product, col_num: int) -> bytes:
    """The stock API body for one colour: valid, truncated, or without subProducts."""
    doc: dict[str, object] = {
        "colNum": col_num,
        "productId": product.product_id,
        "currency": CURRENCY,
        "colourName": words.COLOUR_NAMES[(col_num * 7) % len(words.COLOUR_NAMES)],
    }
    if product.stock_mode == "none":
        doc["error"] = {"code": "STOCK_UNAVAILABLE", "message": "Stock is being updated"}
    else:
        doc["subProducts"] = catalog.sub_products(product, col_num)
    doc["delivery"] = {"standard": 3.99, "freeOver": cents_to_float(5000), "days": [2, 4]}
    body = json.dumps(doc).encode()
    if product.stock_mode == "bad":
        # An unclosed top-level object never parses.
        body = body[: len(body) // 2]
    return body


def build_bulk(page_bytes: int, seed: int) -> bytes:
    """Reviews and JSON blobs filling a page up to about ``page_bytes``."""
    rng = random.Random(f"plt-shop:{seed}:bulk")
    target = max(page_bytes - PREFIX_ESTIMATE - len(_BULK_TAIL), 0)
    parts = ['<section class="reviews">\n']
    size = len(parts[0])
    # Half reviews, half JSON blobs with inline thumbnails: deflates to about 30%, like
    # the real site's 1.5 MB -> 0.45 MB.
    while size < target * 0.5:
        text = " ".join(rng.choices(words.REVIEW_WORDS, k=rng.randint(20, 90)))
        piece = (
            f'<article class="review" data-rating="{rng.randint(1, 5)}">'
            f'<h3 class="review-title">{" ".join(rng.choices(words.REVIEW_WORDS, k=4))}</h3>'
            f'<p class="review-author">{rng.choice(words.FIRST_NAMES)}, '
            f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}</p>"
            f'<p class="review-body">{text}.</p></article>\n'
        )
        parts.append(piece)
        size += len(piece)
    parts.append("</section>\n")
    size += len(parts[-1])
    blob = 0
    while True:
        entries = [
            {
                "id": rng.randrange(10**9),
                "ref": f"{rng.getrandbits(48):012x}",
                # Inline thumbnails are what keep real pages from compressing much further.
                "thumb": base64.b64encode(rng.randbytes(36)).decode(),
                "score": round(rng.random(), 4),
                "colour": rng.choice(words.COLOUR_NAMES),
                "tags": rng.sample(words.REVIEW_WORDS, 3),
            }
            for _ in range(5)
        ]
        piece = (
            f'<script type="application/json" id="blob-{blob}">'
            f"{json.dumps({'recommendations': entries})}</script>\n"
        )
        if size + len(piece) > target:
            break
        parts.append(piece)
        size += len(piece)
        blob += 1
    # Pad to the exact target so small pages come out near page_bytes too.
    if target - size >= 10:
        text = " ".join(rng.choices(words.REVIEW_WORDS, k=(target - size) // 3))
        parts.append("<!-- " + text[: target - size - 10] + " -->\n")
    return "".join(parts).encode() + _BULK_TAIL


def _crc_shift_tables(data: bytes) -> tuple[list[int], ...]:
    """Byte tables of the linear map c -> crc32(data, c) ^ crc32(data).

    With them, crc32(prefix + data) costs four lookups instead of a pass over data.
    """
    base = zlib.crc32(data)
    basis = [zlib.crc32(data, 1 << bit) ^ base for bit in range(32)]
    tables = []
    for byte in range(4):
        table = [0] * 256
        for value in range(1, 256):
            low = value & -value
            table[value] = table[value ^ low] ^ basis[8 * byte + low.bit_length() - 1]
        tables.append(table)
    return tuple(tables)


class PageBody:
    """The shared bulk of every product page, kept raw and deflated."""

    def __init__(self, bulk: bytes) -> None:
        self.bulk = bulk
        comp = zlib.compressobj(COMPRESS_LEVEL, zlib.DEFLATED, -15)
        self.bulk_deflated = comp.compress(bulk) + comp.flush(zlib.Z_FINISH)
        self.bulk_crc = zlib.crc32(bulk)
        self._t0, self._t1, self._t2, self._t3 = _crc_shift_tables(bulk)
        # zstd frames concatenate: a per-response frame for the prefix, then this one.
        self.bulk_zstd = zstd.compress(bulk)

    @classmethod
    def build(cls, page_bytes: int, seed: int) -> PageBody:
        return cls(build_bulk(page_bytes, seed))

    def crc32(self, prefix: bytes) -> int:
        """CRC-32 of ``prefix + bulk``."""
        c = zlib.crc32(prefix)
        shifted = self._t0[c & 255] ^ self._t1[(c >> 8) & 255]
        shifted ^= self._t2[(c >> 16) & 255] ^ self._t3[c >> 24]
        return shifted ^ self.bulk_crc

    def identity(self, prefix: bytes) -> tuple[bytes, ...]:
        return prefix, self.bulk

    def gzip(self, prefix: bytes) -> tuple[bytes, ...]:
        """One gzip member holding ``prefix + bulk``, as parts to send in order."""
        size = (len(prefix) + len(self.bulk)) & 0xFFFFFFFF
        trailer = struct.pack("<II", self.crc32(prefix), size)
        return GZIP_HEADER + self._deflate_prefix(prefix), self.bulk_deflated, trailer

    def deflate(self, prefix: bytes) -> tuple[bytes, ...]:
        """One zlib stream (HTTP's "deflate") holding ``prefix + bulk``."""
        adler = zlib.adler32(self.bulk, zlib.adler32(prefix))
        return (
            ZLIB_HEADER + self._deflate_prefix(prefix),
            self.bulk_deflated,
            struct.pack(">I", adler),
        )

    def zstd(self, prefix: bytes) -> tuple[bytes, ...]:
        return zstd.compress(prefix), self.bulk_zstd

    def brotli(self, prefix: bytes) -> tuple[bytes, ...]:
        """Compressed per response: brotli streams do not concatenate. Slow: run it in a thread."""
        return (brotli.compress(prefix + self.bulk, quality=BROTLI_QUALITY),)

    @staticmethod
    def _deflate_prefix(prefix: bytes) -> bytes:
        comp = zlib.compressobj(COMPRESS_LEVEL, zlib.DEFLATED, -15)
        return comp.compress(prefix) + comp.flush(zlib.Z_FULL_FLUSH)
